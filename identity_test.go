package implicitgrant

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/implicitgrant/caddy-implicit-grant/authserver"
)

// TestOwnerOf: the cookie store's revocations read a packed identity's
// subject and login time.
func TestOwnerOf(t *testing.T) {
	login := time.Unix(1_800_000_000, 0)
	sub, issued := ownerOf(packIdentity(authserver.Identity{Subject: "alice"}, nil, login))
	if sub != "alice" || !issued.Equal(login) {
		t.Errorf("ownerOf = %q, %v; want alice, %v", sub, issued, login)
	}
	if sub, issued := ownerOf(packIdentity(authserver.Identity{Subject: "bob"}, nil, time.Time{})); sub != "bob" || !issued.IsZero() {
		t.Errorf("without a login time: %q, %v; want bob and the zero time", sub, issued)
	}
}

// TestAbsentClaimIsEmpty: a kept claim the user has none of is the empty
// string, so header_up sends an empty value, never "{http.auth.user.email}";
// a name that is not kept stays unknown.
func TestAbsentClaimIsEmpty(t *testing.T) {
	keep := []string{"sub", "email", "name"}
	get := placeholdersFor(packIdentity(authserver.Identity{Subject: "svc", Claims: map[string]any{"name": "Service"}}, keep, time.Time{}), &keep)
	for key, want := range map[string]string{"http.auth.user.id": "svc", "http.auth.user.name": "Service", "http.auth.user.email": ""} {
		if v, ok := get(key); !ok || v != want {
			t.Errorf("%s = %v, %v; want %q", key, v, ok, want)
		}
	}
	if _, ok := get("http.auth.user.groups"); ok {
		t.Error("a claim that is not kept is defined")
	}
	repl := caddy.NewReplacer()
	repl.Map(get)
	if got := repl.ReplaceAll("email={http.auth.user.email}", ""); got != "email=" {
		t.Errorf("header_up would send %q", got)
	}
}

// TestUpstreamGetsAnEmptyClaim: a session whose user has no email sends
// an empty {http.auth.user.email} upstream, not the placeholder's text.
func TestUpstreamGetsAnEmptyClaim(t *testing.T) {
	s := newTestSite(t, siteOptions{handler: func(h *Handler) { h.Validation = &Validation{Mode: validateNone} }})
	if page, _ := newBrowser(t).Login(s.origin, "/dash"); page.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", page.StatusCode)
	}
	if v := s.upstream.last(t).Header.Values("X-Seen-Email"); len(v) != 1 || v[0] != "" {
		t.Errorf("{http.auth.user.email} for a user without one: %q, want one empty value", v)
	}
}
