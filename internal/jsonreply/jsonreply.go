// Package jsonreply writes the JSON answers of ysync's HTTP routes, so that every route (server's
// and workflowapi's) answers in the same form: Content-Type application/json, indented.
package jsonreply

import (
	"encoding/json"
	"net/http"
)

// Write answers status with v as JSON. An encoding error is not reported: the status is sent.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
