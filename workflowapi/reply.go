package workflowapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/ysync/ysync/internal/jsonreply"
	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/workflow"
)

// Error types of this layer, next to workflow's own (workflow.ErrorValidation, ...).
const (
	errorNotFound    = "not_found"
	errorBadRequest  = "bad_request"
	errorUnavailable = "unavailable"
	errorTimeout     = "timeout"
	errorConflict    = "conflict"
	errorTooLarge    = "too_large"
)

const unavailableMsg = "workflows need PostgreSQL: start the server with --database-url"

// rpcError turns a workflow.Error (or anything else) into the error of a reply.
func rpcError(err error) *session.RPCError {
	var we *workflow.Error
	if errors.As(err, &we) {
		return &session.RPCError{Type: we.Type, Errors: we.Errors}
	}
	return session.NewRPCError(workflow.ErrorInternal, "internal error")
}

// Reply bodies of the workflow routes are those of the application channel without the id:
// {"ok": true, "result": ...} or {"ok": false, "error": {"type": ..., "errors": ...}}.
type apiReply struct {
	OK     bool              `json:"ok"`
	Result any               `json:"result,omitempty"`
	Error  *session.RPCError `json:"error,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) { jsonreply.Write(w, status, v) }

func writeResult(w http.ResponseWriter, status int, result any) {
	writeJSON(w, status, apiReply{OK: true, Result: result})
}

func writeAPIError(w http.ResponseWriter, e *session.RPCError) {
	writeJSON(w, statusOf(e.Type), apiReply{Error: e})
}

func statusOf(typ string) int {
	switch typ {
	case workflow.ErrorValidation, workflow.ErrorDeserialization:
		return http.StatusUnprocessableEntity
	case workflow.ErrorOptimisticLock, errorConflict:
		return http.StatusConflict
	case workflow.ErrorDeleted:
		return http.StatusGone
	case workflow.ErrorUnauthorized:
		return http.StatusForbidden
	case errorNotFound:
		return http.StatusNotFound
	case errorBadRequest:
		return http.StatusBadRequest
	case errorTooLarge:
		return http.StatusRequestEntityTooLarge
	case errorUnavailable:
		return http.StatusServiceUnavailable
	case errorTimeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// workflows returns the workflow domain, or answers 503 and returns nil.
func (a *API) workflows(w http.ResponseWriter) *Workflows {
	if a.cfg.Workflows == nil {
		writeAPIError(w, session.NewRPCError(errorUnavailable, unavailableMsg))
		return nil
	}
	return a.cfg.Workflows
}

// readBody reads a JSON request body of at most limit bytes into v; an empty body leaves v as
// it is unless required. Callers authenticate first. A body over the limit is answered 413, one
// that is not the expected JSON 400.
//
// Nesting depth: encoding/json refuses input nested deeper than 10,000 levels while it scans,
// before decoding anything, and without recursion of its own; every body here decodes into
// typed structs of fixed depth (no `any`, no json.RawMessage that is walked later), so a deeply
// nested body costs a bounded scan of at most limit bytes and nothing further down sees it.
// A lower explicit limit would add nothing; TestBodyLimitsAndDepth (server/httpguard_test.go)
// holds both facts.
func (a *API) readBody(w http.ResponseWriter, r *http.Request, v any, limit int64, required bool) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			count(a.cfg.Metrics.BodyTooLarge, 1)
			writeAPIError(w, session.NewRPCError(errorTooLarge, fmt.Sprintf("request body over %d bytes", tooBig.Limit)))
			return false
		}
		writeAPIError(w, session.NewRPCError(errorBadRequest, "request body: "+err.Error()))
		return false
	}
	if len(body) == 0 && !required {
		return true
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeAPIError(w, session.NewRPCError(errorBadRequest, "request body is not the expected JSON: "+err.Error()))
		return false
	}
	return true
}

// failed answers with err, a *workflow.Error or another failure (logged: it is the server's).
func (a *API) failed(w http.ResponseWriter, op string, err error) {
	var we *workflow.Error
	if !errors.As(err, &we) {
		a.log.Error("workflow "+op, "err", err)
	}
	writeAPIError(w, rpcError(err))
}
