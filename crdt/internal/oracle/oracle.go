// Package oracle is a test-only client for scripts/oracle.mjs, the differential oracle that runs the
// reference yjs in Node: one long-lived `node scripts/oracle.mjs` process speaking JSON lines (one
// request object per line on stdin, one response object per line on stdout). The protocol itself
// is documented at the top of scripts/oracle.mjs.
package oracle

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// ErrUnavailable is returned by Check when node or the reference packages are missing.
var ErrUnavailable = errors.New("oracle unavailable")

// RepoRoot finds the repository root (the directory with go.mod) from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("oracle: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Check reports why the oracle cannot run (wrapping ErrUnavailable), or nil.
func Check(root string) error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("%w: node is not on PATH", ErrUnavailable)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "yjs", "package.json")); err != nil {
		return fmt.Errorf("%w: node_modules/yjs is missing (run npm ci)", ErrUnavailable)
	}
	if _, err := os.Stat(filepath.Join(root, "scripts", "oracle.mjs")); err != nil {
		return fmt.Errorf("%w: scripts/oracle.mjs is missing", ErrUnavailable)
	}
	return nil
}

// Oracle is one running oracle process. Calls are serialised.
type Oracle struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *tailBuffer
	closed bool
}

// Start runs `node scripts/oracle.mjs` in root.
func Start(root string) (*Oracle, error) {
	if err := Check(root); err != nil {
		return nil, err
	}
	cmd := exec.Command("node", filepath.Join("scripts", "oracle.mjs"))
	cmd.Dir = root
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	o := &Oracle{cmd: cmd, stdin: stdin, stdout: bufio.NewReaderSize(stdout, 1<<20), stderr: &tailBuffer{max: 8 << 10}}
	cmd.Stderr = o.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("oracle: start node: %w", err)
	}
	return o, nil
}

// Call sends req (marshalled as one JSON line) and decodes the response line into resp (if not
// nil). A response with a non-empty "error" field is returned as an error.
func (o *Oracle) Call(req any, resp any) error {
	raw, err := o.CallRaw(req)
	if err != nil {
		return err
	}
	var head struct {
		Error any `json:"error"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return fmt.Errorf("oracle: bad response %.200q: %w", raw, err)
	}
	if head.Error != nil && head.Error != "" && head.Error != false {
		return fmt.Errorf("oracle: %v", head.Error)
	}
	if resp == nil {
		return nil
	}
	if err := json.Unmarshal(raw, resp); err != nil {
		return fmt.Errorf("oracle: decode response: %w", err)
	}
	return nil
}

// CallRaw sends req and returns the raw response line.
func (o *Oracle) CallRaw(req any) ([]byte, error) {
	line, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("oracle: encode request: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, errors.New("oracle: closed")
	}
	line = append(line, '\n')
	if _, err := o.stdin.Write(line); err != nil {
		return nil, fmt.Errorf("oracle: write: %w (stderr: %s)", err, o.stderr.String())
	}
	for {
		resp, err := o.stdout.ReadBytes('\n')
		if err != nil {
			time.Sleep(50 * time.Millisecond) // let stderr drain
			return nil, fmt.Errorf("oracle: read: %w (stderr: %s)", err, o.stderr.String())
		}
		resp = bytes.TrimSpace(resp)
		if len(resp) == 0 || resp[0] != '{' {
			continue // stray output (a console.log in a dependency)
		}
		return resp, nil
	}
}

// Close ends the oracle process (sending {"cmd":"close"} first).
func (o *Oracle) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.mu.Unlock()
	_, _ = o.CallRawNoWait(map[string]any{"cmd": "close"})
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	_ = o.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- o.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		_ = o.cmd.Process.Kill()
		return <-done
	}
}

// CallRawNoWait writes req without waiting for a response.
func (o *Oracle) CallRawNoWait(req any) (int, error) {
	line, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stdin.Write(append(line, '\n'))
}

// Stderr returns the tail of the oracle's stderr.
func (o *Oracle) Stderr() string { return o.stderr.String() }

// B64 encodes bytes as standard base64 (the oracle's encoding of updates).
func B64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// UnB64 decodes standard base64, panicking on malformed input (oracle output is trusted).
func UnB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(fmt.Sprintf("oracle: bad base64 %.40q: %v", s, err))
	}
	return b
}

// UnB64All decodes a list of base64 strings.
func UnB64All(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = UnB64(s)
	}
	return out
}

type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
