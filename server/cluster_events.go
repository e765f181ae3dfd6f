package server

import (
	"github.com/ysync/ysync/workflow"
)

// startRemoteSaves runs workflowapi's RemoteSaves (workflow_saved to this node's editors of a
// workflow saved on another node) when the broker is bridged to other nodes. The subscription is
// live before it returns; the goroutine counts in s.cluster.wg and ends with s.cluster.stop.
func (s *Server) startRemoteSaves() {
	wf := s.cfg.Workflows
	if s.cfg.Cluster == nil || wf == nil || wf.Broker == nil || wf.Repo == nil {
		return
	}
	events, cancel := wf.Broker.Subscribe(workflow.TopicWorkflows)
	s.cluster.wg.Add(1)
	go func() {
		defer s.cluster.wg.Done()
		defer cancel()
		s.wf.RemoteSaves(s.cluster.stop, events)
	}()
}
