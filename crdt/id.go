package crdt

import "fmt"

// ID identifies one unit of content: the client that created it and that client's clock.
type ID struct {
	Client uint64
	Clock  int
}

func (id ID) String() string { return fmt.Sprintf("%d:%d", id.Client, id.Clock) }
