package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ysync/ysync/internal/jsonreply"
	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/shareddoc"
)

func writeJSON(w http.ResponseWriter, status int, v any) { jsonreply.Write(w, status, v) }

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness: store ping failed", "err", err)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
	if warn := s.clusterWarning(); warn != "" {
		_, _ = w.Write([]byte(warn + "\n"))
	}
}

// sessionJSON is a session in the admin API.
type sessionJSON struct {
	ID          string    `json:"id"`
	Doc         string    `json:"doc"`
	User        string    `json:"user"`
	Remote      string    `json:"remote"`
	ConnectedAt time.Time `json:"connected_at"`
	Protocol    string    `json:"protocol"`
	// Node is the cluster node serving the session (cluster mode).
	Node string `json:"node,omitempty"`
}

// roomJSON is a loaded document in the admin API.
type roomJSON struct {
	Name            string        `json:"name"`
	Users           []string      `json:"users"`
	Sessions        []sessionJSON `json:"sessions"`
	Bytes           int           `json:"bytes"`
	StateVector     string        `json:"state_vector"`
	AwarenessStates int           `json:"awareness_states"`
	PendingUpdates  int           `json:"pending_updates"`
	// Nodes are the cluster nodes that have the document loaded (cluster mode).
	Nodes []string `json:"nodes,omitempty"`
}

func room(in shareddoc.Info) roomJSON {
	out := roomJSON{
		Name:            in.Name,
		Users:           []string{},
		Sessions:        []sessionJSON{},
		Bytes:           in.Bytes,
		StateVector:     in.StateVector,
		AwarenessStates: in.AwarenessStates,
		PendingUpdates:  in.PendingUpdates,
	}
	for _, si := range in.Sessions {
		out.Sessions = append(out.Sessions, sessionJSON{ID: si.ID, Doc: in.Name, User: si.User, Remote: si.Remote, ConnectedAt: si.ConnectedAt, Protocol: protocolOf(si)})
		if !slices.Contains(out.Users, si.User) {
			out.Users = append(out.Users, si.User)
		}
	}
	return out
}

func (s *Server) handleRooms(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if s.clusterView(r) {
		writeJSON(w, http.StatusOK, s.clusterRooms(ctx))
		return
	}
	writeJSON(w, http.StatusOK, s.localRooms(ctx))
}

// localRooms describes the documents loaded on this node.
func (s *Server) localRooms(ctx context.Context) []roomJSON {
	rooms := []roomJSON{}
	for _, name := range s.reg.List() {
		d := s.reg.Get(name)
		if d == nil {
			continue
		}
		in, err := d.Info(ctx)
		if err != nil {
			continue // unloaded meanwhile
		}
		rooms = append(rooms, room(in))
	}
	return rooms
}

func (s *Server) handleRoom(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	d := s.reg.Get(name)
	if d == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("room %q is not loaded", name))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	in, err := d.Info(ctx)
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("room %q is not loaded", name))
		return
	}
	writeJSON(w, http.StatusOK, room(in))
}

func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request) {
	if s.clusterView(r) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		writeJSON(w, http.StatusOK, s.clusterSessions(ctx))
		return
	}
	writeJSON(w, http.StatusOK, s.localSessions())
}

// localSessions lists this node's sessions, oldest first.
func (s *Server) localSessions() []sessionJSON {
	s.mu.Lock()
	out := make([]sessionJSON, 0, len(s.sessions))
	for _, c := range s.sessions {
		in := c.Info()
		out = append(out, sessionJSON{ID: in.ID, Doc: c.Doc(), User: in.User, Remote: in.Remote, ConnectedAt: in.ConnectedAt, Protocol: c.Protocol()})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b sessionJSON) int {
		if c := a.ConnectedAt.Compare(b.ConnectedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func (s *Server) handleDeleteSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	c := s.sessions[id]
	s.mu.Unlock()
	if c == nil {
		if s.clusterView(r) {
			s.deleteRemoteSession(w, r, id)
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("session %q not found", id))
		return
	}
	c.Kick(session.DisconnectTerminated)
	w.WriteHeader(http.StatusNoContent)
}
