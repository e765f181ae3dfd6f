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

func (c *Client) startParking() {}
func (c *Client) stopParking()  {}
func (c *Client) idleStep() int { return stepRead }
func (c *Client) wake()         {}

func (c *Client) interruptLinger(time.Time) {}
