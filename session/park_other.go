//go:build !linux

package session

import (
	"bufio"
	"time"
)

// parkState without parking: the reader blocks in ReadMessage (park.go needs epoll).
type parkState struct {
	br       *bufio.Reader
	ping     func(string) error
	deadline int64
	busy     bool
	on       bool
}

func (k *connCore) startParking() {}
func (k *connCore) stopParking()  {}
func (k *connCore) idleStep() int { return stepRead }
func (k *connCore) wake()         {}

func (k *connCore) interruptLinger(time.Time) {}
