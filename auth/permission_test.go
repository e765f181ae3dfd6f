package auth

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

func TestPermission(t *testing.T) {
	t.Parallel()
	rules := []DocRule{
		{"*", Read},
		{"workflow:*", Write},
		{"workflow:locked-*", Read},
		{"workflow:locked-but-open", Write},
		{"team-a/*", Write},
		{"team-a/secret", None},
		{"exact", Write},
		{"mid*dle", Write}, // only a trailing "*" is a wildcard
	}
	tests := []struct {
		name string
		p    *Principal
		doc  string
		want Permission
	}{
		{"nil principal", nil, "x", None},
		{"no rules", &Principal{UserID: "u"}, "x", None},
		{"admin, no rules", &Principal{UserID: "u", Admin: true}, "anything", Admin},
		{"admin beats a none rule", &Principal{UserID: "u", Admin: true, Docs: []DocRule{{"x", None}}}, "x", Admin},
		{"star", &Principal{Docs: rules}, "random", Read},
		{"star matches the empty name", &Principal{Docs: rules}, "", Read},
		{"prefix beats star", &Principal{Docs: rules}, "workflow:123", Write},
		{"prefix needs its separator", &Principal{Docs: rules}, "workflow", Read},
		{"longer prefix wins", &Principal{Docs: rules}, "workflow:locked-1", Read},
		{"exact beats prefix", &Principal{Docs: rules}, "workflow:locked-but-open", Write},
		{"exact none carves out", &Principal{Docs: rules}, "team-a/secret", None},
		{"exact none is exact", &Principal{Docs: rules}, "team-a/secret2", Write},
		{"slash prefix", &Principal{Docs: rules}, "team-a/x/y", Write},
		{"slash prefix excludes the folder name", &Principal{Docs: rules}, "team-a", Read},
		{"exact", &Principal{Docs: rules}, "exact", Write},
		{"exact is not a prefix", &Principal{Docs: rules}, "exactly", Read},
		{"inner star is literal", &Principal{Docs: rules}, "middle", Read},
		{"inner star exact", &Principal{Docs: rules}, "mid*dle", Write},
		{"no star, no match", &Principal{Docs: []DocRule{{"workflow:*", Write}}}, "notes", None},
		{"prefix pattern matched exactly", &Principal{Docs: []DocRule{{"a*", Read}, {"a", Write}}}, "a*", Read},
		{"duplicate pattern: lower wins", &Principal{Docs: []DocRule{{"d", Write}, {"d", Read}}}, "d", Read},
		{"duplicate pattern: order does not matter", &Principal{Docs: []DocRule{{"d", Read}, {"d", Write}}}, "d", Read},
		{"rule cannot grant admin", &Principal{Docs: []DocRule{{"*", Admin}}}, "x", None},
		{"nonsense grants nothing", &Principal{Docs: []DocRule{{"*", Permission(-3)}}}, "x", None},
		{"empty pattern matches nothing", &Principal{Docs: []DocRule{{"", Write}}}, "", None},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.p.Permission(tt.doc); got != tt.want {
				t.Fatalf("Permission(%q) = %v, want %v", tt.doc, got, tt.want)
			}
		})
	}
}

func TestPermissionOrder(t *testing.T) {
	t.Parallel()
	if !(None < Read && Read < Write && Write < Admin) {
		t.Fatal("permissions are not ordered")
	}
	for _, p := range []Permission{None, Read, Write, Admin, 9} {
		if p.String() == "" {
			t.Errorf("%d has no name", int(p))
		}
	}
	for s, want := range map[string]Permission{"none": None, "read": Read, "write": Write} {
		if got, err := ParsePermission(s); err != nil || got != want {
			t.Errorf("ParsePermission(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"admin", "Write", "", "rw"} {
		if _, err := ParsePermission(s); err == nil {
			t.Errorf("ParsePermission(%q) accepted", s)
		}
	}
}

func TestExpired(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	tests := []struct {
		p    *Principal
		want bool
	}{
		{nil, false},
		{&Principal{}, false},
		{&Principal{ExpiresAt: now.Add(time.Second)}, false},
		{&Principal{ExpiresAt: now}, true},
		{&Principal{ExpiresAt: now.Add(-time.Second)}, true},
	}
	for i, tt := range tests {
		if got := tt.p.Expired(now); got != tt.want {
			t.Errorf("%d: Expired = %v, want %v", i, got, tt.want)
		}
	}
}

func TestAnonymous(t *testing.T) {
	t.Parallel()
	p, err := Anonymous.Authenticate(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Permission("any/doc:x") != Write || p.Admin {
		t.Fatalf("anonymous principal %+v", p)
	}
}

func TestTokenFromRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, authz, want string
	}{
		{"none", "/ws/doc", "", ""},
		{"query", "/ws/doc?token=abc.def.ghi", "", "abc.def.ghi"},
		{"query escaped", "/ws/workflow:1?token=a%2Bb", "", "a+b"},
		{"bearer", "/ws/doc", "Bearer abc", "abc"},
		{"bearer lower case", "/ws/doc", "bearer abc", "abc"},
		{"bearer spaces", "/ws/doc", "  Bearer   abc  ", "abc"},
		{"query wins", "/ws/doc?token=q", "Bearer h", "q"},
		{"empty query falls back", "/ws/doc?token=", "Bearer h", "h"},
		{"basic is not bearer", "/ws/doc", "Basic dXNlcjpwYXNz", ""},
		{"bearer alone", "/ws/doc", "Bearer", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", tt.url, nil)
			if tt.authz != "" {
				r.Header.Set("Authorization", tt.authz)
			}
			if got := TokenFromRequest(r); got != tt.want {
				t.Fatalf("TokenFromRequest = %q, want %q", got, tt.want)
			}
		})
	}
	if TokenFromRequest(nil) != "" {
		t.Fatal("nil request has a token")
	}
}
