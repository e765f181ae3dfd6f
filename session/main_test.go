package session_test

import (
	"testing"

	"github.com/ysync/ysync/internal/leaktest"
)

// TestMain fails the package when goroutines outlive the tests: every session's reader and
// writer, and every document, must be gone once the tests closed them.
func TestMain(m *testing.M) { leaktest.Main(m) }
