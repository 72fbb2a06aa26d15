package implicitgrant

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
)

func formPostSite(t *testing.T) *testSite {
	return newTestSite(t, siteOptions{handler: func(h *Handler) { h.ResponseMode = ResponseModeFormPost }})
}

// formPostAnswer starts a login on s at target and returns the server's
// form_post page (after the consent, as user, approving or not).
func formPostAnswer(t *testing.T, b *testbrowser.Browser, s *testSite, target string, approve bool) *http.Response {
	t.Helper()
	authorize := b.AuthorizationRequest(b.Navigate(s.origin + target))
	if !strings.Contains(authorize, "response_mode=form_post") {
		t.Fatalf("the authorization request does not ask for form_post: %s", authorize)
	}
	return b.Decide(authorize, "alice", approve)
}

// TestFormPostLogin: the server posts the token cross-site; the state
// cookie is SameSite=None (a Lax one would not come with the POST); the
// answer is the landing page that goes back where the login started, and
// the session works.
func TestFormPostLogin(t *testing.T) {
	s := formPostSite(t)
	b := newBrowser(t)
	first := b.Navigate(s.origin + "/dash?x=1")
	start := b.Navigate(s.origin + first.Header.Get("Location"))
	var stateCookie *http.Cookie
	for _, c := range start.Cookies() {
		if strings.Contains(c.Name, "_state_") {
			stateCookie = c
		}
	}
	if stateCookie == nil || stateCookie.SameSite != http.SameSiteNoneMode || !stateCookie.Secure || !stateCookie.HttpOnly {
		t.Fatalf("state cookie for form_post: %+v, want SameSite=None; Secure; HttpOnly", stateCookie)
	}
	landing := b.SubmitFormPost(formPostAnswer(t, b, s, "/dash?x=1", true))
	if got := testbrowser.LandingLocation(t, landing); got != "/dash?x=1" {
		t.Fatalf("landing sends the browser to %q, want /dash?x=1", got)
	}
	if csp := landing.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'sha256-") || landing.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("landing page headers: CSP %q, Cache-Control %q", csp, landing.Header.Get("Cache-Control"))
	}
	if page := b.Navigate(s.origin + "/dash?x=1"); page.StatusCode != http.StatusOK || !strings.HasPrefix(s.upstream.last(t).Header.Get("Authorization"), "Bearer ") {
		t.Fatalf("after the form_post login: %d", page.StatusCode)
	}
}

// TestFormPostRefusals: what is not the server's page navigating here is
// refused without a session: a script's fetch, a frame, another origin,
// another content type; a replay of the same post; a token in the
// callback's fragment (the relay page is not served) or query.
func TestFormPostRefusals(t *testing.T) {
	s := formPostSite(t)
	for _, tc := range []struct {
		name   string
		change func(*http.Request)
		want   int
	}{
		{"a script's fetch", func(r *http.Request) { r.Header.Set("Sec-Fetch-Mode", "cors") }, http.StatusForbidden},
		{"another origin", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, http.StatusForbidden},
		{"the site's own origin (the relay script)", func(r *http.Request) { r.Header.Set("Origin", s.origin) }, http.StatusForbidden},
		{"no origin", func(r *http.Request) { r.Header.Del("Origin") }, http.StatusForbidden},
		{"JSON", func(r *http.Request) { r.Header.Set("Content-Type", "application/json") }, http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t)
			page := formPostAnswer(t, b, s, "/dash", true)
			resp := b.SubmitFormPostWith(page, tc.change)
			testbrowser.AssertNoSession(t, resp)
			if resp.StatusCode != tc.want || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("%d %s, want a %d page", resp.StatusCode, resp.Header.Get("Content-Type"), tc.want)
			}
		})
	}
	t.Run("origin null is the server's page behind no-referrer", func(t *testing.T) {
		b := newBrowser(t)
		resp := b.SubmitFormPostWith(formPostAnswer(t, b, s, "/dash", true), func(r *http.Request) { r.Header.Set("Origin", "null") })
		if testbrowser.LandingLocation(t, resp) != "/dash" {
			t.Error("a form post with Origin: null was refused")
		}
	})
	t.Run("in a frame, not a silent renewal", func(t *testing.T) {
		b := newBrowser(t)
		resp := b.SubmitFormPostWith(formPostAnswer(t, b, s, "/dash", true), func(r *http.Request) { r.Header.Set("Sec-Fetch-Dest", "iframe") })
		testbrowser.AssertNoSession(t, resp)
		// The frame's relay script is told (and tells the page that framed it).
		if got := testbrowser.LandingLocation(t, resp); !strings.Contains(got, "error=invalid_state") || !strings.Contains(testbrowser.BodyOf(resp), "&#34;error&#34;:&#34;invalid_state&#34;") {
			t.Errorf("framed form post of a normal login: %s", testbrowser.BodyOf(resp))
		}
	})
	t.Run("replayed", func(t *testing.T) {
		b := newBrowser(t)
		page := formPostAnswer(t, b, s, "/dash", true)
		u, _ := url.Parse(s.origin)
		saved := b.Client.Jar.Cookies(u)
		b.SubmitFormPost(page)
		replay := newBrowser(t)
		replay.Client.Jar.SetCookies(u, saved)
		resp := replay.SubmitFormPost(page)
		testbrowser.AssertNoSession(t, resp)
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "error=invalid_state") {
			t.Errorf("replay: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("a token in the fragment", func(t *testing.T) {
		resp := newBrowser(t).Navigate(s.origin + "/oauth/callback")
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(testbrowser.BodyOf(resp), "<script") {
			t.Errorf("the callback's GET in form_post mode: %d (want 400 and no relay script)", resp.StatusCode)
		}
	})
	t.Run("a token in the query", func(t *testing.T) {
		resp := newBrowser(t).Navigate(s.origin + "/oauth/callback?access_token=x&token_type=Bearer&state=s")
		testbrowser.AssertNoSession(t, resp)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("token in the query: %d", resp.StatusCode)
		}
	})
}

// TestFormPostError: a denial posted by the server leads to the same page
// as in fragment mode, with the server's words (the state was this
// browser's).
func TestFormPostError(t *testing.T) {
	s := formPostSite(t)
	b := newBrowser(t)
	resp := b.SubmitFormPost(formPostAnswer(t, b, s, "/dash", false))
	testbrowser.AssertNoSession(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("denied form post: %d, want 303 to the error page", resp.StatusCode)
	}
	page := b.Navigate(s.origin + resp.Header.Get("Location"))
	if body := testbrowser.BodyOf(page); page.StatusCode != http.StatusForbidden || !strings.Contains(body, "The user denied the request") || !strings.Contains(body, `href="/dash"`) {
		t.Errorf("error page: %d %s", page.StatusCode, body)
	}
}
