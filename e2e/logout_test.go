package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestLogoutAtHydra, in Chromium against Ory Hydra with a client
// registered for RP-initiated and back-channel logout: a logout here
// goes through Hydra's /oauth2/sessions/logout and lands on the logout
// path's "signed out at the server" page (its state checked), and the
// next visit makes Hydra ask for a login again; a logout at Hydra itself
// ends the session here through Hydra's back-channel logout token.
func TestLogoutAtHydra(t *testing.T) {
	chromiumPath(t)
	srv := hydraServer(t, "code-logout")
	h := sharedHydra
	s := newSite(t, srv, 0, "")
	b := newBrowser(t)
	b.loginTo(t, s, "/in", "/in", true)

	fresh := h.freshLogins.Load()
	b.navigate(b.ctx, s.origin+"/oauth/logout")
	b.waitLocation(b.ctx, s.origin+"/oauth/logout?state=")
	if body := eval[string](b, b.ctx, "document.body.innerText"); !strings.Contains(body, "signed out of this site and at the authorization server") {
		t.Fatalf("back from Hydra's logout: %s", body)
	}
	b.navigate(b.ctx, s.origin+"/again") // (the consent stays remembered: no screen)
	b.waitLocation(b.ctx, s.origin+"/again")
	b.upstreamSaysValid(t, b.ctx)
	if h.freshLogins.Load() == fresh {
		t.Error("after the logout Hydra skipped its login: its session lived on")
	}

	// The user logs out at Hydra, not here: Hydra's back-channel logout
	// token ends the session.
	b.navigate(b.ctx, h.public+"/oauth2/sessions/logout")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.navigate(b.ctx, s.origin+"/oauth/session")
		body := eval[string](b, b.ctx, "document.body.innerText")
		if strings.Contains(body, `"authenticated":false`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the logout at Hydra the session lives on: %s\nhydra: %s", body, h.output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
