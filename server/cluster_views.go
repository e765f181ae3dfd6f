package server

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ysync/ysync/session"
)

// Cluster-wide admin views (cluster mode): every node keeps its rooms and sessions in Redis under
// one key with a TTL, refreshed every viewInterval; /api/rooms and /api/sessions merge them
// (this node's own entries are always live; the others' at most viewInterval old), ?local=1
// shows only this node. DELETE /api/sessions/{id} of another node's session goes to that node
// over a Redis channel.

const (
	viewInterval = 3 * time.Second
	viewTTL      = 3 * viewInterval
	// maxKickMessage bounds a message of the kick channel (a session id).
	maxKickMessage = 256
)

// nodeView is one node's entry.
type nodeView struct {
	Node     string        `json:"node"`
	Rooms    []roomJSON    `json:"rooms"`
	Sessions []sessionJSON `json:"sessions"`
}

// clusterView reports whether a request asks for the whole cluster.
func (s *Server) clusterView(r *http.Request) bool {
	return s.cfg.Cluster != nil && r.URL.Query().Get("local") != "1"
}

func (s *Server) viewKey(node string) string { return s.cfg.Cluster.Key("view", node) }

// startViews runs the view publisher and the kick listener (cluster mode).
func (s *Server) startViews() {
	if s.cfg.Cluster == nil {
		return
	}
	s.cluster.wg.Add(2)
	go s.publishViews()
	go s.listenKicks()
}

func (s *Server) publishViews() {
	defer s.cluster.wg.Done()
	rdb := s.cfg.Cluster.Client()
	t := time.NewTicker(viewInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), viewInterval)
		v := s.localView(ctx)
		if data, err := json.Marshal(v); err == nil {
			if err := rdb.Set(ctx, s.viewKey(v.Node), data, viewTTL).Err(); err != nil {
				s.log.Debug("publish admin view", "err", err)
			}
		}
		cancel()
		select {
		case <-s.cluster.stop:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = rdb.Del(ctx, s.viewKey(s.cluster.nodeID)).Err()
			cancel()
			return
		case <-t.C:
		}
	}
}

func (s *Server) localView(ctx context.Context) nodeView {
	v := nodeView{Node: s.cluster.nodeID, Rooms: s.localRooms(ctx), Sessions: s.localSessions()}
	for i := range v.Rooms {
		v.Rooms[i].Nodes = []string{v.Node}
		for j := range v.Rooms[i].Sessions {
			v.Rooms[i].Sessions[j].Node = v.Node
		}
	}
	for i := range v.Sessions {
		v.Sessions[i].Node = v.Node
	}
	return v
}

// views returns every node's view: this node's live, the others' from Redis (a node whose
// entry does not decode is skipped).
func (s *Server) views(ctx context.Context) []nodeView {
	own := s.localView(ctx)
	out := []nodeView{own}
	rdb := s.cfg.Cluster.Client()
	prefix := s.viewKey("")
	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if strings.TrimPrefix(iter.Val(), prefix) != own.Node {
			keys = append(keys, iter.Val())
		}
	}
	if err := iter.Err(); err != nil || len(keys) == 0 {
		if err != nil {
			s.log.Warn("cluster view: list nodes", "err", err)
		}
		return out
	}
	vals, err := rdb.MGet(ctx, keys...).Result()
	if err != nil {
		s.log.Warn("cluster view: read nodes", "err", err)
		return out
	}
	for _, val := range vals {
		str, ok := val.(string)
		if !ok {
			continue // expired meanwhile
		}
		var v nodeView
		if json.Unmarshal([]byte(str), &v) != nil || v.Node == "" {
			continue
		}
		out = append(out, v)
	}
	return out
}

// clusterRooms merges the rooms of every node by name.
func (s *Server) clusterRooms(ctx context.Context) []roomJSON {
	byName := map[string]*roomJSON{}
	for _, v := range s.views(ctx) {
		for _, r := range v.Rooms {
			m := byName[r.Name]
			if m == nil {
				r := r
				r.Nodes = []string{v.Node}
				byName[r.Name] = &r
				continue
			}
			m.Nodes = append(m.Nodes, v.Node)
			m.Sessions = append(m.Sessions, r.Sessions...)
			for _, u := range r.Users {
				if !slices.Contains(m.Users, u) {
					m.Users = append(m.Users, u)
				}
			}
			m.Bytes = max(m.Bytes, r.Bytes)
			m.AwarenessStates = max(m.AwarenessStates, r.AwarenessStates)
			m.PendingUpdates += r.PendingUpdates
		}
	}
	out := make([]roomJSON, 0, len(byName))
	for _, r := range byName {
		slices.Sort(r.Nodes)
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b roomJSON) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// clusterSessions lists every node's sessions, oldest first.
func (s *Server) clusterSessions(ctx context.Context) []sessionJSON {
	out := []sessionJSON{}
	for _, v := range s.views(ctx) {
		out = append(out, v.Sessions...)
	}
	slices.SortFunc(out, func(a, b sessionJSON) int {
		return cmp.Or(a.ConnectedAt.Compare(b.ConnectedAt), strings.Compare(a.ID, b.ID))
	})
	return out
}

// deleteRemoteSession asks the node serving session id to close it: 202 when a node has it.
func (s *Server) deleteRemoteSession(w http.ResponseWriter, r *http.Request, id string) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	for _, v := range s.views(ctx) {
		for _, se := range v.Sessions {
			if se.ID != id {
				continue
			}
			if err := s.cfg.Cluster.Client().Publish(ctx, s.cfg.Cluster.Key("kick", v.Node), id).Err(); err != nil {
				writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("session %q is on node %s, which cannot be reached: %v", id, v.Node, err))
				return
			}
			writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "node": v.Node})
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("session %q not found on any node", id))
}

// listenKicks closes this node's sessions other nodes were asked to delete.
func (s *Server) listenKicks() {
	defer s.cluster.wg.Done()
	ps := s.cfg.Cluster.Client().Subscribe(context.Background(), s.cfg.Cluster.Key("kick", s.cluster.nodeID))
	defer ps.Close()
	msgs := ps.Channel(redis.WithChannelSize(64))
	for {
		select {
		case <-s.cluster.stop:
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			if len(m.Payload) > maxKickMessage {
				continue
			}
			s.mu.Lock()
			c := s.sessions[m.Payload]
			s.mu.Unlock()
			if c != nil {
				s.log.Info("closing session at another node's request", "session", m.Payload)
				c.Kick(session.DisconnectTerminated)
			}
		}
	}
}
