package implicitgrant

import (
	"encoding/base64"
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

func TestDenialShowsErrorPage(t *testing.T) {
	for _, placement := range []string{"fragment", "query"} {
		t.Run(placement, func(t *testing.T) {
			t.Parallel()
			s := newTestSite(t, siteOptions{provider: func(p *devprovider.Provider) { p.ErrorIn = placement }})
			b := newBrowser(t)
			first := b.Navigate(s.origin + "/dash?tab=1")
			callback := b.AuthorizeAt(b.AuthorizationRequest(first), false)

			var page *http.Response
			if placement == "query" { // Spotify: ?error=access_denied&state=…
				if callback.Query().Get("error") != "access_denied" {
					t.Fatalf("provider answered %s", callback)
				}
				page = b.Navigate(callback.String())
			} else {
				resp := b.RelayPost(s.origin+"/oauth/callback", callback.EscapedFragment(), s.origin)
				testbrowser.AssertNoSession(t, resp)
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("relay post of a denial: %d", resp.StatusCode)
				}
				_, loc := testbrowser.RelayAnswer(t, resp)
				page = b.Navigate(s.origin + loc)
			}
			testbrowser.AssertNoSession(t, page)
			body := bodyOf(page)
			if page.StatusCode != http.StatusForbidden || !strings.Contains(body, "Sign-in was declined") ||
				!strings.Contains(body, "The user denied the request") || !strings.Contains(body, `href="/dash?tab=1"`) {
				t.Fatalf("error page: %d\n%s", page.StatusCode, body)
			}
			if page.Header.Get("Cache-Control") != "no-store" || !strings.Contains(page.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("error page headers: %v", page.Header)
			}
			if again := b.Navigate(s.origin + "/dash?tab=1"); again.StatusCode != http.StatusFound {
				t.Errorf("after a denial the next visit got %d, want a new login", again.StatusCode)
			}
			if s.upstream.count() != 0 {
				t.Error("the upstream was reached without a session")
			}
		})
	}
}

// TestCraftedErrorLinkShowsNoStrangersText: the callback shows the
// server's error_description only for a login this browser started; a
// link anyone can craft gets the module's own words.
func TestCraftedErrorLinkShowsNoStrangersText(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	b := newBrowser(t)
	for _, link := range []string{
		"/oauth/callback?error=access_denied&error_description=Call+1-800-555-0100+to+restore+access",
		"/oauth/callback?error=access_denied&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&error_description=Call+1-800-555-0100+to+restore+access",
		"/oauth/callback?error=Call_1-800-555-0100_now&error_description=Call+1-800-555-0100+to+restore+access",
	} {
		resp := b.Navigate(s.origin + link)
		if body := bodyOf(resp); strings.Contains(body, "1-800") || resp.StatusCode < 400 {
			t.Errorf("%s: %d, the page shows the link's text:\n%s", link, resp.StatusCode, body)
		}
	}
	// The server's own words still reach the person whose login it was
	// (fragment placement: they travel from the relay POST in a signed note).
	first := b.Navigate(s.origin + "/dash")
	callback := b.AuthorizeAt(b.AuthorizationRequest(first), false)
	_, loc := testbrowser.RelayAnswer(t, b.RelayPost(s.origin+"/oauth/callback", callback.EscapedFragment(), s.origin))
	if strings.Contains(loc, "denied the request") {
		t.Errorf("the error page URL carries the server's text: %s", loc)
	}
	if page := bodyOf(b.Navigate(s.origin + loc)); !strings.Contains(page, "The user denied the request") {
		t.Errorf("the browser that logged in does not see the server's words:\n%s", page)
	}
	// The same URL in another browser, or again: the module's words only.
	if page := bodyOf(newBrowser(t).Navigate(s.origin + loc)); strings.Contains(page, "The user denied the request") || !strings.Contains(page, "Sign-in was declined") {
		t.Errorf("another browser sees the server's words:\n%s", page)
	}
	if page := bodyOf(b.Navigate(s.origin + loc)); strings.Contains(page, "The user denied the request") {
		t.Errorf("the note was used twice:\n%s", page)
	}
}

func TestRelayRefusals(t *testing.T) {
	s := newTestSite(t, siteOptions{handler: func(h *Handler) { h.StateTTL = caddy.Duration(2 * time.Second) }})
	callbackURL := s.origin + "/oauth/callback"

	// pending starts a login in b and returns the provider's answer.
	pending := func(b *testbrowser.Browser) *url.URL {
		first := b.Navigate(s.origin + "/secret-page")
		return b.AuthorizeAt(b.AuthorizationRequest(first), true)
	}
	refused := func(t *testing.T, b *testbrowser.Browser, resp *http.Response, wantStatus int) {
		t.Helper()
		refusedWith(t, b, s, resp, wantStatus)
	}
	withState := func(frag *url.URL, state string) string {
		v, _ := url.ParseQuery(frag.Fragment)
		if state == "" {
			v.Del("state")
		} else {
			v.Set("state", state)
		}
		return v.Encode()
	}

	t.Run("forged state", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		refused(t, b, b.RelayPost(callbackURL, withState(cb, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), s.origin), http.StatusBadRequest)
	})
	t.Run("missing state", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		refused(t, b, b.RelayPost(callbackURL, withState(cb, ""), s.origin), http.StatusBadRequest)
	})
	t.Run("tampered state cookie", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		u, _ := url.Parse(s.origin)
		var tampered []*http.Cookie
		for _, c := range b.Client.Jar.Cookies(u) {
			if strings.HasPrefix(c.Name, testbrowser.SessionCookie+"_state_") {
				payload, sig, _ := strings.Cut(c.Value, ".")
				orig, _ := base64.RawURLEncoding.DecodeString(payload)
				raw := []byte(strings.Replace(string(orig), "/secret-page", "/admin", 1))
				if string(raw) == string(orig) {
					t.Fatal("could not tamper with the cookie")
				}
				c.Value = base64.RawURLEncoding.EncodeToString(raw) + "." + sig
				c.Path, c.Secure = "/", true
				tampered = append(tampered, c)
			}
		}
		if len(tampered) != 1 {
			t.Fatalf("want one state cookie, got %d", len(tampered))
		}
		b.Client.Jar.SetCookies(u, tampered)
		refused(t, b, b.RelayPost(callbackURL, cb.EscapedFragment(), s.origin), http.StatusBadRequest)
	})
	t.Run("expired state", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		u, _ := url.Parse(s.origin)
		saved := b.Client.Jar.Cookies(u) // keep the cookie past its Max-Age, as a hostile client would
		time.Sleep(2100 * time.Millisecond)
		refused(t, b, testbrowser.ReplayPost(t, callbackURL, cb.EscapedFragment(), s.origin, saved), http.StatusBadRequest)
	})
	t.Run("replayed", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		u, _ := url.Parse(s.origin)
		saved := b.Client.Jar.Cookies(u)
		if resp := b.RelayPost(callbackURL, cb.EscapedFragment(), s.origin); resp.StatusCode != http.StatusOK {
			t.Fatalf("first use: %d", resp.StatusCode)
		}
		// The same response again from a fresh client holding a copy of the
		// state cookie: the state was used, so no second session.
		resp := testbrowser.ReplayPost(t, callbackURL, cb.EscapedFragment(), s.origin, saved)
		testbrowser.AssertNoSession(t, resp)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("replay: %d", resp.StatusCode)
		}
	})
	t.Run("other browser", func(t *testing.T) {
		victim, attacker := newBrowser(t), newBrowser(t)
		cb := pending(attacker)
		victim.Navigate(s.origin + "/secret-page") // the victim has a pending login of its own
		refused(t, victim, victim.RelayPost(callbackURL, cb.EscapedFragment(), s.origin), http.StatusBadRequest)
	})
	t.Run("cross origin", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		refused(t, b, b.RelayPost(callbackURL, cb.EscapedFragment(), "http://evil.example"), http.StatusForbidden)
		// No Origin and a cross-site fetch mark: refused too.
		req, _ := http.NewRequest(http.MethodPost, callbackURL, strings.NewReader(cb.EscapedFragment()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		refused(t, b, b.Do(req), http.StatusForbidden)
	})
	t.Run("oversized body", func(t *testing.T) {
		b := newBrowser(t)
		pending(b)
		big := "access_token=" + strings.Repeat("a", 70<<10) + "&token_type=Bearer&state=x"
		refused(t, b, b.RelayPost(callbackURL, big, s.origin), http.StatusRequestEntityTooLarge)
	})
	t.Run("wrong content type", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		req, _ := http.NewRequest(http.MethodPost, callbackURL, strings.NewReader(cb.EscapedFragment()))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Origin", s.origin)
		refused(t, b, b.Do(req), http.StatusUnsupportedMediaType)
	})
	t.Run("malformed token response", func(t *testing.T) {
		for name, mutate := range map[string]func(url.Values){
			"no token":             func(v url.Values) { v.Del("access_token") },
			"newline in token":     func(v url.Values) { v.Set("access_token", "abc\r\nX-Admin: 1") },
			"mac token type":       func(v url.Values) { v.Set("token_type", "mac") },
			"negative expires_in":  func(v url.Values) { v.Set("expires_in", "-5") },
			"fractional expires":   func(v url.Values) { v.Set("expires_in", "3.5") },
			"repeated token":       func(v url.Values) { v.Add("access_token", "second") },
			"non-ascii token":      func(v url.Values) { v.Set("access_token", "tökén") },
			"missing token_type":   func(v url.Values) { v.Del("token_type") },
			"zero expires_in":      func(v url.Values) { v.Set("expires_in", "0") },
			"expires_in with sign": func(v url.Values) { v.Set("expires_in", "+60") },
			"second credential":    func(v url.Values) { v.Set("access_token", v.Get("access_token")+", Basic YWRtaW46YWRtaW4=") },
			"quoted token":         func(v url.Values) { v.Set("access_token", `"`+v.Get("access_token")+`"`) },
		} {
			t.Run(name, func(t *testing.T) {
				b := newBrowser(t)
				cb := pending(b)
				v, _ := url.ParseQuery(cb.Fragment)
				mutate(v)
				refused(t, b, b.RelayPost(callbackURL, v.Encode(), s.origin), http.StatusBadRequest)
			})
		}
	})
	t.Run("token in query", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		resp := b.Navigate(callbackURL + "?" + cb.EscapedFragment())
		refused(t, b, resp, http.StatusBadRequest)
	})
}

// TestScopeEncodings: scope may arrive with "+" or "%20" between scopes.
func TestScopeEncodings(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	for _, enc := range []string{"+", "%20"} {
		b := newBrowser(t)
		first := b.Navigate(s.origin + "/")
		if first.StatusCode != http.StatusFound {
			t.Fatalf("first visit: %d %v\n%s", first.StatusCode, first.Header, bodyOf(first))
		}
		cb := b.AuthorizeAt(b.AuthorizationRequest(first), true)
		v, _ := url.ParseQuery(cb.Fragment)
		frag := "access_token=" + url.QueryEscape(v.Get("access_token")) + "&token_type=Bearer&expires_in=60&scope=profile" + enc + "reports%3Aread&state=" + v.Get("state")
		resp := b.RelayPost(s.origin+"/oauth/callback", frag, s.origin)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("scope with %q: %d %s", enc, resp.StatusCode, bodyOf(resp))
		}
		if c := testbrowser.SessionSetCookie(resp); c == nil || c.MaxAge > 60 || c.MaxAge < 30 {
			t.Errorf("cookie lifetime for expires_in=60: %+v", c)
		}
	}
}

func TestParallelLoginsFromOneBrowser(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	b := newBrowser(t)
	targets := []string{"/tab/one?a=1", "/tab/two?b=2", "/tab/three"}
	var starts []string
	for _, target := range targets {
		resp := b.Navigate(s.origin + target)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%s: %d", target, resp.StatusCode)
		}
		starts = append(starts, b.AuthorizationRequest(resp))
	}
	// Finish them in the opposite order: none may have overwritten another.
	for i := len(targets) - 1; i >= 0; i-- {
		status, loc := b.FinishAtCallback(b.AuthorizeAt(starts[i], true))
		if status != http.StatusOK || loc != targets[i] {
			t.Errorf("login %d: %d %q, want %q", i, status, loc, targets[i])
		}
	}
}

// TestStateOfAnErrorAnswerIsUsed: a login that ended in an error cannot be
// finished later with a copy of its state cookie, wherever the error came
// (the fragment through the relay, or the query).
func TestStateOfAnErrorAnswerIsUsed(t *testing.T) {
	for _, placement := range []string{"fragment", "query"} {
		t.Run(placement, func(t *testing.T) {
			s := newTestSite(t, siteOptions{})
			b := newBrowser(t)
			authorize := b.AuthorizationRequest(b.Navigate(s.origin + "/dash"))
			state, _ := url.Parse(authorize)
			saved := b.Client.Jar.Cookies(mustURL(t, s.origin))
			errorAnswer := url.Values{"error": {"access_denied"}, "state": {state.Query().Get("state")}}.Encode()
			if placement == "query" {
				b.Navigate(s.origin + "/oauth/callback?" + errorAnswer)
			} else {
				b.RelayPost(s.origin+"/oauth/callback", errorAnswer, s.origin)
			}
			// A genuine token for the same state, with the copied cookie.
			v, _ := url.ParseQuery(newBrowser(t).AuthorizeAt(authorize, true).Fragment)
			resp := testbrowser.ReplayPost(t, s.origin+"/oauth/callback", v.Encode(), s.origin, saved)
			testbrowser.AssertNoSession(t, resp)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("finishing a login that ended in an error: %d, want 400", resp.StatusCode)
			}
		})
	}
}

func mustURL(t testing.TB, raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestTokenAndLifetimeBounds: a token over max_token_bytes is refused at
// login with a page that says why; so is one the cookie store could only
// keep in more cookie bytes than a request may carry; expires_in is capped
// by max_session_lifetime.
func TestTokenAndLifetimeBounds(t *testing.T) {
	login := func(t *testing.T, s *testSite) *http.Response {
		b := newBrowser(t)
		authorize := b.AuthorizationRequest(b.Navigate(s.origin + "/dash"))
		return b.RelayPost(s.origin+"/oauth/callback", b.AuthorizeAt(authorize, true).EscapedFragment(), s.origin)
	}
	bigTokens := func(n int) func(*devprovider.Provider) {
		return func(p *devprovider.Provider) { p.TokenSize = n }
	}
	t.Run("over max_token_bytes", func(t *testing.T) {
		s := newTestSite(t, siteOptions{provider: bigTokens(9000)})
		resp := login(t, s)
		testbrowser.AssertNoSession(t, resp)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(bodyOf(resp), "token_too_large") {
			t.Errorf("a 9000-byte token: %d %s", resp.StatusCode, bodyOf(resp))
		}
	})
	t.Run("raised max_token_bytes, memory store", func(t *testing.T) {
		s := newTestSite(t, siteOptions{provider: bigTokens(9000), handler: func(h *Handler) { h.MaxTokenBytes = 16384 }})
		if resp := login(t, s); resp.StatusCode != http.StatusOK {
			t.Errorf("a 9000-byte token under max_token_bytes 16384: %d", resp.StatusCode)
		}
	})
	t.Run("too large for the cookie store", func(t *testing.T) {
		s := newTestSite(t, siteOptions{provider: bigTokens(9000), handler: func(h *Handler) {
			h.MaxTokenBytes = 16384
			h.StoreRaw = json.RawMessage(`{"type":"cookie"}`)
		}})
		resp := login(t, s)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || len(resp.Header.Values("Set-Cookie")) > 2 {
			t.Errorf("a 9000-byte token in the cookie store: %d, %d Set-Cookie lines", resp.StatusCode, len(resp.Header.Values("Set-Cookie")))
		}
		for _, c := range resp.Cookies() {
			if strings.HasPrefix(c.Name, testbrowser.SessionCookie) && !strings.Contains(c.Name, "_state_") && c.MaxAge >= 0 && c.Name != testbrowser.SessionCookie+"_error" {
				t.Errorf("a session chunk was set: %s", c.Name)
			}
		}
	})
	t.Run("expires_in capped", func(t *testing.T) {
		s := newTestSite(t, siteOptions{provider: func(p *devprovider.Provider) { p.ExpiresIn = caddy.Duration(72 * time.Hour) }})
		c := testbrowser.SessionSetCookie(login(t, s))
		if c == nil || c.MaxAge > int(DefaultMaxSession/time.Second) || c.MaxAge < int(DefaultMaxSession/time.Second)-60 {
			t.Errorf("a 72 h token's session: %+v, want max_session_lifetime (8 h)", c)
		}
	})
}
