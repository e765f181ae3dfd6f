package crdt

import (
	"errors"
	"fmt"
	"slices"
)

// errCorrupt marks updates that are well-formed bytes but describe an impossible document (a
// reference to content that does not exist, overlapping structs and the like).
var errCorrupt = errors.New("crdt: inconsistent update")

// structStore holds every struct of a document, per client sorted by clock with no gaps.
type structStore struct {
	clients map[uint64][]abstractStruct
	// pendingStructs are structs that could not be integrated yet because something they depend on
	// is missing; pendingMissing says, per client, the lowest clock that is waited for.
	pending        *pendingStructs
	pendingDs      *DeleteSet
	pendingUpdates int
}

func newStructStore() *structStore {
	return &structStore{clients: make(map[uint64][]abstractStruct)}
}

// getState returns the next expected clock of client.
func (s *structStore) getState(client uint64) int {
	structs := s.clients[client]
	if len(structs) == 0 {
		return 0
	}
	last := structs[len(structs)-1]
	return last.id().Clock + last.length()
}

// stateVector returns client → next expected clock for every known client.
func (s *structStore) stateVector() map[uint64]int {
	sv := make(map[uint64]int, len(s.clients))
	for client, structs := range s.clients {
		if len(structs) == 0 {
			continue
		}
		last := structs[len(structs)-1]
		sv[client] = last.id().Clock + last.length()
	}
	return sv
}

func (s *structStore) addStruct(st abstractStruct) error {
	id := st.id()
	structs := s.clients[id.Client]
	if len(structs) > 0 {
		last := structs[len(structs)-1]
		if last.id().Clock+last.length() != id.Clock {
			return fmt.Errorf("%w: struct %v does not follow clock %d", errCorrupt, id, last.id().Clock+last.length())
		}
	} else if id.Clock != 0 {
		return fmt.Errorf("%w: first struct of client %d starts at clock %d", errCorrupt, id.Client, id.Clock)
	}
	s.clients[id.Client] = append(structs, st)
	return nil
}

// findIndexSS returns the index of the struct containing clock. Callers guarantee that the clock is
// covered; -1 is returned otherwise.
func findIndexSS(structs []abstractStruct, clock int) int {
	left, right := 0, len(structs)-1
	if right < 0 {
		return -1
	}
	mid := structs[right]
	midClock := mid.id().Clock
	if midClock == clock {
		return right
	}
	// Pivot guess assuming evenly sized structs: most lookups are near the end.
	if lastEnd := midClock + mid.length(); lastEnd > 0 && clock < lastEnd {
		midIndex := int(uint64(clock) * uint64(right) / uint64(lastEnd))
		for left <= right {
			mid = structs[midIndex]
			midClock = mid.id().Clock
			if midClock <= clock {
				if clock < midClock+mid.length() {
					return midIndex
				}
				left = midIndex + 1
			} else {
				right = midIndex - 1
			}
			midIndex = (left + right) / 2
		}
	}
	return -1
}

// find returns the struct that contains id, or nil.
func (s *structStore) find(id ID) abstractStruct {
	structs := s.clients[id.Client]
	i := findIndexSS(structs, id.Clock)
	if i < 0 {
		return nil
	}
	return structs[i]
}

// findIndexCleanStart returns the index of the struct that starts exactly at clock, splitting the
// item containing it if necessary, or -1 when clock is not covered.
func (s *structStore) findIndexCleanStart(tx *Transaction, client uint64, clock int) int {
	structs := s.clients[client]
	i := findIndexSS(structs, clock)
	if i < 0 {
		return -1
	}
	if item, ok := structs[i].(*Item); ok && item.ID.Clock < clock {
		right := splitItem(tx, item, clock-item.ID.Clock)
		s.clients[client] = slices.Insert(structs, i+1, abstractStruct(right))
		return i + 1
	}
	return i
}

// getItemCleanStart returns the struct that starts exactly at id (an *Item or a *GC), splitting the
// item containing it if necessary, or nil when id is not covered.
func (s *structStore) getItemCleanStart(tx *Transaction, id ID) abstractStruct {
	i := s.findIndexCleanStart(tx, id.Client, id.Clock)
	if i < 0 {
		return nil
	}
	return s.clients[id.Client][i]
}

// getItemCleanEnd returns the item that ends exactly at id, splitting if necessary. The struct at
// id may be a GC, in which case it is returned unchanged.
func (s *structStore) getItemCleanEnd(tx *Transaction, id ID) abstractStruct {
	structs := s.clients[id.Client]
	i := findIndexSS(structs, id.Clock)
	if i < 0 {
		return nil
	}
	st := structs[i]
	item, ok := st.(*Item)
	if !ok {
		return st
	}
	if id.Clock != item.ID.Clock+item.Length-1 {
		right := splitItem(tx, item, id.Clock-item.ID.Clock+1)
		s.clients[id.Client] = slices.Insert(structs, i+1, abstractStruct(right))
	}
	return item
}

// replaceStruct swaps the struct at st's position for newStruct (same id and length).
func (s *structStore) replaceStruct(st, newStruct abstractStruct) {
	id := st.id()
	structs := s.clients[id.Client]
	if i := findIndexSS(structs, id.Clock); i >= 0 {
		structs[i] = newStruct
	}
}

// iterateStructs calls f for every struct of client that overlaps [clock, clock+length), splitting
// items at both ends so that the range is covered exactly.
func (s *structStore) iterateStructs(tx *Transaction, client uint64, clock, length int, f func(abstractStruct)) {
	if length == 0 {
		return
	}
	end := clock + length
	structs := s.clients[client]
	index := findIndexSS(structs, clock)
	if index < 0 {
		return
	}
	st := structs[index]
	if it, ok := st.(*Item); ok && it.ID.Clock < clock {
		right := splitItem(tx, it, clock-it.ID.Clock)
		structs = slices.Insert(structs, index+1, abstractStruct(right))
		s.clients[client] = structs
		index++
		st = right
	}
	for index < len(structs) {
		st = structs[index]
		id := st.id()
		if id.Clock >= end {
			break
		}
		if it, ok := st.(*Item); ok && end < id.Clock+it.Length {
			right := splitItem(tx, it, end-id.Clock)
			structs = slices.Insert(structs, index+1, abstractStruct(right))
			s.clients[client] = structs
		}
		f(st)
		index++
	}
}
