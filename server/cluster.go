package server

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ysync/ysync/cluster"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

// Several processes on one database: the node registry in the database (so that a node without a
// relay warns when it is not alone), and cluster mode's hooks (docs/cluster.md).

// Timing of the node registry.
const (
	// nodeHeartbeatInterval is how often a node refreshes its row in cluster_nodes.
	nodeHeartbeatInterval = 5 * time.Second
	// nodeLiveWithin: a row refreshed this recently is a live node (three missed beats).
	nodeLiveWithin = 3 * nodeHeartbeatInterval
	// nodeForgetAfter: rows this old are deleted by whichever node beats next.
	nodeForgetAfter = 24 * time.Hour
)

// NodeRegistry is the database's record of the live nodes; store.Postgres implements it.
type NodeRegistry interface {
	HeartbeatNode(ctx context.Context, n store.Node, forgetAfter time.Duration) error
	LiveNodes(ctx context.Context, within time.Duration) ([]store.Node, error)
	RemoveNode(ctx context.Context, id string) error
}

// clusterState is the server's part of running beside other nodes.
type clusterState struct {
	nodeID  string
	nodes   NodeRegistry // nil when the store is not shared (memory)
	warning atomic.Pointer[string]
	check   chan struct{} // capacity 1: run a position check now
	stop    chan struct{}
	wg      sync.WaitGroup
}

// relay returns the cluster as the registry's relay, or nil.
func (c *Config) relay() shareddoc.Relay {
	if c.Cluster == nil {
		return nil
	}
	return c.Cluster
}

// positionCheckInterval is the registry's check interval: the default with a store that other
// processes may write (one that can be read by range and is not in memory), else none.
func (c *Config) positionCheckInterval(st Store) time.Duration {
	if c.PositionCheckInterval < 0 {
		return 0
	}
	if c.PositionCheckInterval > 0 {
		return c.PositionCheckInterval
	}
	if _, ok := st.(NodeRegistry); ok {
		return shareddoc.DefaultPositionCheckInterval
	}
	return 0
}

// startCluster runs the node registry and the cluster's hooks. Called at the end of New.
func (s *Server) startCluster() {
	cs := &s.cluster
	cs.check = make(chan struct{}, 1)
	cs.stop = make(chan struct{})
	cs.nodeID = s.cfg.NodeID
	if cs.nodeID == "" {
		cs.nodeID = newID()
	}
	if s.cfg.Cluster != nil {
		cs.nodeID = s.cfg.Cluster.NodeID()
		s.cfg.Cluster.Start(cluster.Hooks{
			Reconnected: s.checkPositionsSoon,
			NodeGone:    s.reg.NodeGone,
		})
	}
	cs.nodes, _ = s.store.(NodeRegistry)
	cs.wg.Add(1)
	go s.positionKicker()
	s.startRemoteSaves()
	s.startViews()
	if cs.nodes != nil {
		cs.wg.Add(1)
		go s.nodeHeartbeat()
	}
}

// stopCluster ends the goroutines of startCluster and deregisters the node. The cluster itself
// is closed by its owner after Shutdown.
func (s *Server) stopCluster(ctx context.Context) {
	cs := &s.cluster
	if cs.stop == nil {
		return
	}
	select {
	case <-cs.stop:
		return
	default:
	}
	close(cs.stop)
	cs.wg.Wait()
	if cs.nodes != nil {
		if err := cs.nodes.RemoveNode(ctx, cs.nodeID); err != nil {
			s.log.Warn("deregister node", "err", err)
		}
	}
}

// checkPositionsSoon asks for a position check now (coalesced): after Redis reconnects,
// messages may have been lost.
func (s *Server) checkPositionsSoon() {
	select {
	case s.cluster.check <- struct{}{}:
	default:
	}
}

func (s *Server) positionKicker() {
	defer s.cluster.wg.Done()
	for {
		select {
		case <-s.cluster.stop:
			return
		case <-s.cluster.check:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.reg.CheckPositions(ctx); err != nil {
			s.log.Warn("position check after reconnect failed", "err", err)
		}
		cancel()
	}
}

// nodeHeartbeat keeps this node's row in cluster_nodes fresh and warns while another live node
// shares the database without a common relay.
func (s *Server) nodeHeartbeat() {
	defer s.cluster.wg.Done()
	t := time.NewTicker(nodeHeartbeatInterval)
	defer t.Stop()
	warned := ""
	for {
		ctx, cancel := context.WithTimeout(context.Background(), nodeHeartbeatInterval)
		w, err := s.beatNode(ctx)
		cancel()
		if err != nil {
			s.log.Warn("node registry heartbeat failed", "err", err)
		} else {
			if w != "" && w != warned {
				s.log.Warn(w)
			}
			warned = w
			if w == "" {
				s.cluster.warning.Store(nil)
			} else {
				s.cluster.warning.Store(&w)
			}
		}
		select {
		case <-s.cluster.stop:
			return
		case <-t.C:
		}
	}
}

func (s *Server) beatNode(ctx context.Context) (warning string, err error) {
	relay := s.cfg.Cluster != nil
	if err := s.cluster.nodes.HeartbeatNode(ctx, store.Node{ID: s.cluster.nodeID, Info: s.cfg.NodeInfo, Relay: relay}, nodeForgetAfter); err != nil {
		return "", err
	}
	live, err := s.cluster.nodes.LiveNodes(ctx, nodeLiveWithin)
	if err != nil {
		return "", err
	}
	var polling []string
	for _, n := range live {
		if n.ID != s.cluster.nodeID && (!relay || !n.Relay) {
			polling = append(polling, fmt.Sprintf("%s (%s)", n.ID, n.Info))
		}
	}
	if len(polling) == 0 {
		return "", nil
	}
	return fmt.Sprintf("WARNING: other live nodes use this database without a shared Redis relay (--redis-url): %s. "+
		"Nothing is lost, but edits between them travel by polling the log only (every few seconds, not live).",
		strings.Join(polling, ", ")), nil
}

// clusterWarning is the readiness body's warning line, or "".
func (s *Server) clusterWarning() string {
	if w := s.cluster.warning.Load(); w != nil {
		return *w
	}
	return ""
}

// writeClusterMetrics writes the cluster's and the documents' relay counters.
func (s *Server) writeClusterMetrics(b io.Writer) {
	metric := func(name, typ, help string, v int64) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	cs := s.reg.ClusterStats()
	metric("ysync_cluster_remote_updates_received_total", "counter", "Update messages from other nodes handed to documents.", cs.RemoteReceived.Load())
	metric("ysync_cluster_remote_updates_applied_total", "counter", "Update messages from other nodes applied in order.", cs.RemoteApplied.Load())
	metric("ysync_cluster_remote_duplicates_total", "counter", "Update messages a document already had.", cs.RemoteDuplicates.Load())
	metric("ysync_cluster_remote_dropped_total", "counter", "Messages from other nodes dropped because a document's queue was full.", cs.RemoteDropped.Load())
	metric("ysync_cluster_remote_bad_total", "counter", "Updates or awareness from other nodes or the log that did not apply.", cs.RemoteBad.Load())
	metric("ysync_cluster_gaps_detected_total", "counter", "Update messages whose seq was beyond the document's contiguous prefix + 1.", cs.GapsDetected.Load())
	metric("ysync_cluster_log_fills_total", "counter", "Reads of the log to fill a gap.", cs.Fills.Load())
	metric("ysync_cluster_filled_from_log_total", "counter", "Updates applied from the log that no message brought.", cs.FilledFromLog.Load())
	metric("ysync_cluster_fill_reloads_total", "counter", "Fills that found the range compacted and reloaded the checkpoint.", cs.FillReloads.Load())
	metric("ysync_cluster_fill_errors_total", "counter", "Failed reads of the log.", cs.FillErrors.Load())
	metric("ysync_cluster_position_checks_total", "counter", "Position checks of the loaded documents against the log.", cs.PositionChecks.Load())
	metric("ysync_cluster_position_catchups_total", "counter", "Documents a position check found behind the log.", cs.PositionCatchups.Load())
	metric("ysync_cluster_remote_awareness_total", "counter", "Awareness messages from other nodes applied.", cs.RemoteAwareness.Load())
	c := s.cfg.Cluster
	if c == nil {
		return
	}
	st := c.Stats()
	metric("ysync_cluster_published_total", "counter", "Messages published to Redis.", st.Published.Load())
	metric("ysync_cluster_publish_dropped_total", "counter", "Messages not published (queue full or Redis failed).", st.PublishDropped.Load())
	metric("ysync_cluster_received_total", "counter", "Messages from other nodes received from Redis.", st.Received.Load())
	metric("ysync_cluster_malformed_total", "counter", "Messages from Redis that did not decode, dropped.", st.Malformed.Load())
	metric("ysync_cluster_redis_errors_total", "counter", "Failed Redis commands.", st.RedisErrors.Load())
	metric("ysync_cluster_redis_connected", "gauge", "1 while Redis answers.", st.Connected.Load())
	metric("ysync_cluster_redis_reconnects_total", "counter", "Times the relay reconnected (and checked positions).", st.Reconnects.Load())
	metric("ysync_cluster_heartbeats_seen_total", "counter", "Other nodes' heartbeats seen.", st.HeartbeatsSeen.Load())
	metric("ysync_cluster_nodes_gone_total", "counter", "Other nodes declared dead after their heartbeat expired.", st.NodesGone.Load())
	metric("ysync_cluster_nodes", "gauge", "Live nodes seen through Redis, this one included.", st.Nodes.Load())
}
