package implicitgrant

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TestOptions: the optional subdirectives change what they say they do.
func TestOptions(t *testing.T) {
	s := newTestSite(t, siteOptions{handler: func(h *Handler) {
		h.CookieName = "__Host-dash"
		h.LoginPath, h.LogoutPath, h.LogoutRedirect = "/auth/in", "/auth/out", "/bye"
		h.Unauthenticated = UnauthenticatedReject
		h.DefaultExpiresIn = caddy.Duration(20 * time.Minute)
		h.ExpiryLeeway = caddy.Duration(time.Minute)
	}})
	b := newBrowser(t)

	// reject: even a navigation gets 401: a page for a person, with a link
	// to the custom login path; JSON for a script.
	nav := b.Navigate(s.origin + "/page")
	if nav.StatusCode != http.StatusUnauthorized || !strings.Contains(bodyOf(nav), `href="/auth/in?return_to=%2Fpage"`) {
		t.Fatalf("unauthenticated reject: %d %s", nav.StatusCode, bodyOf(nav))
	}
	api, _ := http.NewRequest(http.MethodGet, s.origin+"/page", nil)
	api.Header.Set("Accept", "application/json")
	if resp := b.Do(api); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(bodyOf(resp), `"login_url":"/auth/in?return_to=`) {
		t.Fatalf("unauthenticated reject, API call: %d %s", resp.StatusCode, bodyOf(resp))
	}
	start := b.Navigate(s.origin + "/auth/in?return_to=%2Fpage")
	if start.StatusCode != http.StatusOK {
		t.Fatalf("login_path: %d", start.StatusCode)
	}
	cb := b.AuthorizeAt(b.AuthorizationRequest(start), true)
	v, _ := url.ParseQuery(cb.Fragment)
	v.Del("expires_in") // the server sends none: default_expires_in applies
	resp := b.RelayPost(s.origin+"/oauth/callback", v.Encode(), s.origin)
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "dash" { // __Host- goes with Secure on a plain-http loopback site
			session = c
		}
	}
	if resp.StatusCode != http.StatusOK || session == nil || session.MaxAge != 19*60 {
		t.Fatalf("custom cookie with 20m - 1m lifetime: %d %+v", resp.StatusCode, session)
	}
	if page := b.Navigate(s.origin + "/page"); page.StatusCode != http.StatusOK {
		t.Fatalf("with the session: %d", page.StatusCode)
	}
	if strings.Contains(s.upstream.last(t).Header.Get("Cookie"), "dash") {
		t.Error("the custom cookie reached the upstream")
	}
	out := b.Navigate(s.origin + "/auth/out")
	if out.StatusCode != http.StatusSeeOther || out.Header.Get("Location") != "/bye" {
		t.Errorf("logout_redirect: %d %q", out.StatusCode, out.Header.Get("Location"))
	}

	// redirect: a script's GET is sent to log in too.
	r := newTestSite(t, siteOptions{handler: func(h *Handler) { h.Unauthenticated = UnauthenticatedRedirect }})
	req, _ := http.NewRequest(http.MethodGet, r.origin+"/api/x", nil)
	req.Header.Set("Accept", "application/json")
	if resp := newBrowser(t).Do(req); resp.StatusCode != http.StatusFound {
		t.Errorf("unauthenticated redirect: %d", resp.StatusCode)
	}
}
