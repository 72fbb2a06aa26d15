package implicitgrant

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/implicitgrant/caddy-implicit-grant/devprovider"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
)

// renewingSite: tokens live an hour and renew_before is two, so every
// session is inside the renewal window from the start.
func renewingSite(t *testing.T, mode ResponseMode, provider func(*devprovider.Provider)) *testSite {
	return newTestSite(t, siteOptions{provider: provider, handler: func(h *Handler) {
		h.RenewBefore = caddy.Duration(2 * time.Hour)
		h.ResponseMode = mode
	}})
}

// firstLogin logs b in at /dash (fragment mode) and returns its session.
func firstLogin(t *testing.T, b *testbrowser.Browser, s *testSite) string {
	t.Helper()
	authorize := b.AuthorizationRequest(b.Navigate(s.origin + "/dash"))
	if strings.Contains(authorize, "prompt=none") {
		t.Fatalf("a first login asked for prompt=none: %s", authorize)
	}
	if status, _ := b.FinishAtCallback(b.AuthorizeAt(authorize, true)); status != http.StatusOK {
		t.Fatalf("first login: %d", status)
	}
	return b.Cookie(s.origin, testbrowser.SessionCookie)
}

// apiStatus is the status of a script's call to origin with the session
// cookie value session (0: no answer).
func apiStatus(origin, session string) int {
	req, _ := http.NewRequest(http.MethodGet, origin+"/api/data", nil)
	req.Header.Set("Accept", "application/json")
	req.AddCookie(&http.Cookie{Name: testbrowser.SessionCookie, Value: session})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// renewalStart loads target on a session inside the renewal window and
// returns the authorization request the start page leads to.
func renewalStart(t *testing.T, b *testbrowser.Browser, s *testSite, target string) string {
	t.Helper()
	start := b.Navigate(s.origin + target)
	authorize := b.AuthorizationRequest(start)
	if start.StatusCode != http.StatusOK || !strings.Contains(authorize, "&prompt=none") {
		t.Fatalf("page load inside renew_before: %d, authorize %s; want the start page asking prompt=none", start.StatusCode, authorize)
	}
	return authorize
}

// TestRenewBeforeOnPageLoad: a page load on a session inside renew_before
// goes through the authorization endpoint with prompt=none and comes back,
// with no dialog, to the same URL with a new session; the old session
// serves the page's API calls meanwhile, and after (until its own end: the
// page's requests in flight during the swap pass); the next page load is
// served.
func TestRenewBeforeOnPageLoad(t *testing.T) {
	s := renewingSite(t, ResponseModeFragment, nil)
	b := newBrowser(t)
	old := firstLogin(t, b, s)
	if status := apiStatus(s.origin, old); status != http.StatusOK {
		t.Fatalf("an API call inside the renewal window: %d, want it served", status)
	}
	answer := b.Decide(renewalStart(t, b, s, "/reports?id=7"), "", true)
	if answer.StatusCode != http.StatusSeeOther {
		t.Fatalf("the provider showed a dialog to a silent renewal: %d", answer.StatusCode)
	}
	callback, _ := url.Parse(answer.Header.Get("Location"))
	if status, next := b.FinishAtCallback(callback); status != http.StatusOK || next != "/reports?id=7" {
		t.Fatalf("renewal's relay post: %d → %q", status, next)
	}
	renewed := b.Cookie(s.origin, testbrowser.SessionCookie)
	if renewed == "" || renewed == old {
		t.Fatal("no new session after the renewal")
	}
	if apiStatus(s.origin, renewed) != http.StatusOK || apiStatus(s.origin, old) != http.StatusOK {
		t.Error("both the new session and the one it replaces (until its end) should serve")
	}
	if page := b.Navigate(s.origin + "/reports?id=7"); page.StatusCode != http.StatusOK {
		t.Errorf("the page load after a renewal: %d, want it served (no renewal loop)", page.StatusCode)
	}
}

// TestSilentRenewalNeedsTheUser: when the server answers prompt=none with
// login_required or interaction_required (in the fragment, or in a
// form_post), the browser goes straight to a normal login, which shows the
// server's login page: never the module's error page.
func TestSilentRenewalNeedsTheUser(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     ResponseMode
		provider func(*devprovider.Provider)
		forget   bool // the provider forgets the user: login_required
	}{
		{"login_required in the fragment", ResponseModeFragment, nil, true},
		{"login_required in the query", ResponseModeFragment, func(p *devprovider.Provider) { p.ErrorIn = "query" }, true},
		{"interaction_required in the fragment", ResponseModeFragment, func(p *devprovider.Provider) { p.DemandInteraction = true }, false},
		{"interaction_required in a form_post", ResponseModeFormPost, func(p *devprovider.Provider) { p.DemandInteraction = true }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := renewingSite(t, tc.mode, tc.provider)
			b := newBrowser(t)
			if tc.mode == ResponseModeFormPost {
				authorize := b.AuthorizationRequest(b.Navigate(s.origin + "/dash"))
				testbrowser.LandingLocation(t, b.SubmitFormPost(b.Decide(authorize, "alice", true)))
			} else {
				firstLogin(t, b, s)
			}
			if tc.forget {
				p, _ := url.Parse(s.provider)
				b.Client.Jar.SetCookies(p, []*http.Cookie{
					{Name: "dev_provider_approved", Value: "", Path: "/", MaxAge: -1},
					{Name: "dev_provider_approved_cross_site", Value: "", Path: "/", MaxAge: -1},
				})
			}
			answer := b.Navigate(renewalStart(t, b, s, "/reports?id=7"))
			var next string
			if tc.mode == ResponseModeFormPost {
				next = testbrowser.LandingLocation(t, b.SubmitFormPost(answer))
			} else if callback, _ := url.Parse(answer.Header.Get("Location")); callback.Query().Has("error") {
				next = testbrowser.LandingLocation(t, b.Navigate(callback.String()))
			} else {
				if !strings.Contains(callback.Fragment, "_required") {
					t.Fatalf("the provider did not refuse prompt=none: %s", callback)
				}
				var status int
				if status, next = b.FinishAtCallback(callback); status != http.StatusOK {
					t.Fatalf("relay post of the error: %d", status)
				}
			}
			if !strings.HasPrefix(next, "/oauth/login?interactive=1&") {
				t.Fatalf("after the server needed the user: sent to %q, want a normal login", next)
			}
			authorize := b.AuthorizationRequest(b.Navigate(s.origin + next))
			if strings.Contains(authorize, "prompt=none") {
				t.Fatalf("the normal login asked for prompt=none again: %s", authorize)
			}
			if consent := b.Navigate(authorize); consent.StatusCode != http.StatusOK || !strings.Contains(testbrowser.BodyOf(consent), "Sign in to the dev provider") {
				t.Errorf("want the provider's login page: %d %s", consent.StatusCode, testbrowser.BodyOf(consent))
			}
		})
	}
}

// TestFramedRenewal: session.js's frame: the login path with silent=1
// asks for prompt=none, and its start page may be framed by the site only
// when it is in a frame; a relay post from a frame finishes a silent
// renewal, never a normal login.
func TestFramedRenewal(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	b := newBrowser(t)
	firstLogin(t, b, s)

	req, _ := http.NewRequest(http.MethodGet, s.origin+"/oauth/login?silent=1", nil)
	req.Header.Set("Sec-Fetch-Dest", "iframe")
	start := b.Do(req)
	authorize := b.AuthorizationRequest(start)
	if !strings.Contains(authorize, "&prompt=none") || start.Header.Get("X-Frame-Options") != "SAMEORIGIN" || !strings.Contains(start.Header.Get("Content-Security-Policy"), "frame-ancestors 'self'") {
		t.Fatalf("framed silent start page: %v, authorize %s", start.Header, authorize)
	}
	callback := b.AuthorizeAt(authorize, true)
	framedPost := func(b *testbrowser.Browser, callback *url.URL) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, s.origin+"/oauth/callback", strings.NewReader(callback.EscapedFragment()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", s.origin)
		req.Header.Set("X-Implicit-Grant-Frame", "1")
		return b.Do(req)
	}
	if resp := framedPost(b, callback); resp.StatusCode != http.StatusOK || testbrowser.SessionSetCookie(resp) == nil {
		t.Fatalf("framed relay post of a silent renewal: %d %s", resp.StatusCode, testbrowser.BodyOf(resp))
	}

	other := newBrowser(t)
	normal := other.AuthorizeAt(other.AuthorizationRequest(other.Navigate(s.origin+"/dash")), true)
	resp := framedPost(other, normal)
	testbrowser.AssertNoSession(t, resp)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("framed relay post of a normal login: %d, want 400", resp.StatusCode)
	}
	if page := other.Navigate(s.origin + "/oauth/callback"); page.Header.Get("X-Frame-Options") != "DENY" {
		t.Error("the relay page loaded at top level may be framed")
	}
}

// TestSessionInfo: session_path says whether this browser has a session,
// until when and for whom, and never the token; without one, where to log in.
func TestSessionInfo(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	b := newBrowser(t)
	info := func() (sessionInfo, string) {
		req, _ := http.NewRequest(http.MethodGet, s.origin+"/oauth/session", nil)
		req.Header.Set("Accept", "application/json")
		resp := b.Do(req)
		body := testbrowser.BodyOf(resp)
		var got sessionInfo
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("session info: %d %s", resp.StatusCode, body)
		}
		return got, body
	}
	if got, body := info(); got.Authenticated || got.LoginURL != "/oauth/login?return_to=%2F" {
		t.Errorf("without a session: %s", body)
	}
	b.Login(s.origin, "/dash")
	got, body := info()
	expires, err := time.Parse(time.RFC3339, got.ExpiresAt)
	if !got.Authenticated || got.User != "alice" || err != nil || time.Until(expires) < 50*time.Minute || time.Until(expires) > time.Hour {
		t.Errorf("with a session: %s", body)
	}
	if token := strings.TrimPrefix(s.upstream.last(t).Header.Get("Authorization"), "Bearer "); token == "" || strings.Contains(body, token) {
		t.Error("the session info shows the token")
	}
}
