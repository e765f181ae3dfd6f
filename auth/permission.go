package auth

import (
	"fmt"
	"strings"
	"time"
)

// Permission is what a principal may do with one document. Levels are ordered: each includes the
// ones below it (Admin ⊇ Write ⊇ Read ⊇ None), so callers test with >=.
type Permission int

const (
	// None: the document may not be opened.
	None Permission = iota
	// Read: sync and awareness, no document edits.
	Read
	// Write: everything Read allows, plus edits (and save/reset RPCs).
	Write
	// Admin: Write on every document, plus the admin endpoints.
	Admin
)

func (p Permission) String() string {
	switch p {
	case None:
		return "none"
	case Read:
		return "read"
	case Write:
		return "write"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("Permission(%d)", int(p))
}

// ParsePermission reads the rule values a token's docs claim uses: "read", "write", and "none"
// (an explicit deny, useful to carve one document out of a wider prefix). Anything else, "admin"
// included, is an error: admin rights come from the principal's Admin flag, never from a rule.
func ParsePermission(s string) (Permission, error) {
	switch s {
	case "none":
		return None, nil
	case "read":
		return Read, nil
	case "write":
		return Write, nil
	}
	return None, fmt.Errorf("unknown permission %q (want read, write or none)", s)
}

// DocRule grants a permission on documents matching Pattern: either an exact document name, or a
// prefix followed by one trailing "*" ("workflow:*", "team-a/*"); "*" alone matches every document.
// A "*" anywhere but at the end is a literal character.
type DocRule struct {
	Pattern    string
	Permission Permission
}

// ValidPattern reports whether pattern can be used in a DocRule: non-empty and made of printable
// characters.
func ValidPattern(pattern string) bool {
	if pattern == "" || len(pattern) > 1024 {
		return false
	}
	for _, r := range pattern {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Principal is an authenticated identity.
type Principal struct {
	// UserID is stable and unique (a JWT's sub).
	UserID string
	// Name is for display and logs; may be empty.
	Name string
	// ExpiresAt is the moment after which the credentials are no longer accepted; the server closes
	// connections at that moment (4401). Zero means never.
	ExpiresAt time.Time
	// Admin grants Write on every document and access to the admin endpoints.
	Admin bool
	// Docs are the per-document rules; see Permission for how they combine.
	Docs []DocRule
}

// Expired reports whether the principal's credentials have run out at now.
func (p *Principal) Expired(now time.Time) bool {
	return p != nil && !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt)
}

// Permission returns what p may do with the document named doc. A nil principal has None. An
// admin has Admin (so Write) everywhere. Otherwise the most specific matching rule wins: an exact
// name beats any prefix, a longer prefix beats a shorter one, and "*" is the least specific of
// all; with no matching rule the answer is None. Two rules with the same pattern resolve to the
// lower permission, so a duplicate can only ever take rights away.
func (p *Principal) Permission(doc string) Permission {
	if p == nil {
		return None
	}
	if p.Admin {
		return Admin
	}
	best, bestRank := None, -1
	for _, r := range p.Docs {
		rank := matchRank(r.Pattern, doc)
		if rank < 0 {
			continue
		}
		perm := r.Permission
		if perm < None || perm > Write {
			perm = None // a rule can never grant Admin, and nonsense grants nothing
		}
		switch {
		case rank > bestRank:
			best, bestRank = perm, rank
		case rank == bestRank && perm < best:
			best = perm
		}
	}
	return best
}

// matchRank returns how specifically pattern matches doc: -1 for no match, the prefix length for
// a prefix pattern, and above any prefix length for an exact match.
func matchRank(pattern, doc string) int {
	if pattern == "" {
		return -1
	}
	if pattern == doc {
		return len(doc) + 1 // longer than any prefix of doc can be
	}
	prefix, ok := strings.CutSuffix(pattern, "*")
	if ok && strings.HasPrefix(doc, prefix) {
		return len(prefix)
	}
	return -1
}
