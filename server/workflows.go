package server

import (
	"context"
	"net/http"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/workflowapi"
)

// Workflows enables workflow documents (Config.Workflows): the routes and requests of package
// workflowapi, which owns the type.
type Workflows = workflowapi.Workflows

// WorkflowLocker is what a store implements to serialize one workflow's saves across processes
// (store.Postgres: an advisory lock); the server hands such a store to workflowapi.
type WorkflowLocker = workflowapi.Locker

// newWorkflowAPI builds the workflow adapter over the server's authentication, registry, store
// and counters (New, once s exists and before its routes are built).
func (s *Server) newWorkflowAPI() *workflowapi.API {
	locker, _ := s.store.(WorkflowLocker)
	return workflowapi.New(workflowapi.Config{
		Workflows:            s.cfg.Workflows,
		Auth:                 workflowAuth{s},
		Docs:                 workflowDocs{s},
		Locker:               locker,
		MaxWorkflowBodyBytes: s.cfg.Limits.MaxWorkflowBodyBytes,
		Metrics: workflowapi.Metrics{
			BodyTooLarge: &s.guard.bodyTooLarge,
			EventStreams: &s.guard.eventStreams,
			EventDropped: &s.guard.eventDropped,
		},
		Remote: s.remote,
		AfterSave: func(ctx context.Context, doc string, lockVersion int) {
			s.versionAfterSave(ctx, doc, lockVersion, "")
		},
		Logger: s.log,
	})
}

// workflowAuth is the server's authentication as workflowapi sees it (trust.go).
type workflowAuth struct{ s *Server }

func (a workflowAuth) Open() bool { return a.s.Open() }

func (a workflowAuth) AuthorizeDoc(w http.ResponseWriter, r *http.Request, doc string, need auth.Permission, tokenInQuery bool) (*auth.Principal, bool) {
	src := tokenHeader
	if tokenInQuery {
		src = tokenQueryOrHeader
	}
	return a.s.authorizeDoc(w, r, doc, need, src)
}

func (a workflowAuth) RequireAdmin(w http.ResponseWriter, r *http.Request) bool {
	admin := false
	a.s.requireAdmin(func(http.ResponseWriter, *http.Request) { admin = true })(w, r)
	return admin
}

// workflowDocs is the registry as workflowapi sees it; Hold refuses once the server drains.
type workflowDocs struct{ s *Server }

func (d workflowDocs) Get(name string) *shareddoc.Doc { return d.s.reg.Get(name) }

func (d workflowDocs) Hold(ctx context.Context, name string) (*shareddoc.Doc, func(), error) {
	return d.s.openDoc(ctx, name)
}

// openDoc loads the document (if it is not loaded) and keeps it loaded until release, without a
// session (shareddoc.Registry.Hold); shareddoc.ErrClosed once the server drains.
func (s *Server) openDoc(ctx context.Context, name string) (*shareddoc.Doc, func(), error) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		return nil, nil, shareddoc.ErrClosed
	}
	return s.reg.Hold(ctx, name)
}
