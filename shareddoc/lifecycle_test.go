package shareddoc

import (
	"io"
	"log/slog"
	"testing"
)

// TestDocStateTransitions pins the lifecycle diagram in lifecycle.go: every pair of states is
// either allowed or refused, and closed is final.
func TestDocStateTransitions(t *testing.T) {
	t.Parallel()
	allowed := map[[2]docState]bool{
		{stateLoading, stateLive}:       true,
		{stateLoading, stateClosed}:     true,
		{stateLive, stateUnloading}:     true,
		{stateLive, stateDraining}:      true,
		{stateLive, stateClosed}:        true,
		{stateUnloading, stateLive}:     true,
		{stateUnloading, stateDraining}: true,
		{stateUnloading, stateClosed}:   true,
		{stateDraining, stateClosed}:    true,
	}
	all := []docState{stateLoading, stateLive, stateUnloading, stateDraining, stateClosed}
	for _, from := range all {
		for _, to := range all {
			if from == to {
				continue
			}
			if got, want := from.canBecome(to), allowed[[2]docState{from, to}]; got != want {
				t.Errorf("%v → %v allowed = %v, want %v", from, to, got, want)
			}
		}
	}
	d := &Doc{log: slog.New(slog.NewTextHandler(io.Discard, nil)), state: stateClosed}
	if d.setState(stateLive) || d.state != stateClosed {
		t.Fatalf("closed document became %v", d.state)
	}
}
