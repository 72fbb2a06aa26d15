package integration

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

const sessionCookie = "__Host-implicit_grant"

// sessionSetCookie returns the session cookie a response sets, if any.
func sessionSetCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

func assertNoSession(t *testing.T, resp *http.Response) {
	t.Helper()
	if c := sessionSetCookie(resp); c != nil && c.Value != "" {
		t.Fatalf("a session cookie was set on a refused response (status %d)", resp.StatusCode)
	}
}

// TestLoginToDeepURL is the whole flow: a deep URL with a query, the
// provider's consent, the relay, and back to the same URL with the token
// sent upstream. It runs against servers that spell token_type differently.
func TestLoginToDeepURL(t *testing.T) {
	for _, tokenType := range []string{"Bearer", "bearer", "BEARER"} {
		t.Run(tokenType, func(t *testing.T) {
			t.Parallel()
			s := newSite(t, siteOptions{providerExtra: "token_type " + tokenType, extra: "show_dialog\n\t\tparam audience https://api.example"})
			b := newBrowser(t)
			target := "/reports/q3?range=7d&tag=a%20b&x=%2F"

			first := b.navigate(s.origin + target)
			if first.StatusCode != http.StatusFound {
				t.Fatalf("want 302, got %d", first.StatusCode)
			}
			au, _ := url.Parse(first.Header.Get("Location"))
			q := au.Query()
			want := map[string]string{
				"response_type": "token", "client_id": "test-client", "redirect_uri": s.origin + "/oauth/callback",
				"scope": "profile reports:read", "show_dialog": "true", "audience": "https://api.example",
			}
			for k, v := range want {
				if q.Get(k) != v {
					t.Errorf("authorize %s = %q, want %q", k, q.Get(k), v)
				}
			}
			if len(q.Get("state")) < 22 { // 128 bits in base64url
				t.Errorf("state %d characters, want at least 22", len(q.Get("state")))
			}
			if au.Scheme+"://"+au.Host+au.Path != s.provider+"/authorize" {
				t.Errorf("redirected to %s", au)
			}

			callback := b.authorizeAt(au.String(), true)
			token := tokenFrom(t, callback)
			relayResp := b.relayPost(s.origin+"/oauth/callback", callback.EscapedFragment(), s.origin)
			if relayResp.StatusCode != http.StatusOK {
				t.Fatalf("relay post: %d %s", relayResp.StatusCode, bodyOf(relayResp))
			}
			if !strings.Contains(bodyOf(relayResp), `"location":"/reports/q3?range=7d\u0026tag=a%20b\u0026x=%2F"`) {
				t.Fatalf("relay answer: %s", bodyOf(relayResp))
			}
			c := sessionSetCookie(relayResp)
			if c == nil || c.Value == "" {
				t.Fatal("no session cookie")
			}
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
				t.Errorf("cookie attributes: %+v", c)
			}
			if c.MaxAge <= 0 || c.MaxAge > 3600 {
				t.Errorf("cookie Max-Age %d, want within the token's 3600 s", c.MaxAge)
			}
			if strings.Contains(c.Value, token) {
				t.Error("the session cookie carries the token")
			}

			page := b.navigate(s.origin + target)
			if page.StatusCode != http.StatusOK || bodyOf(page) != "upstream saw "+target {
				t.Fatalf("back at the target: %d %q", page.StatusCode, bodyOf(page))
			}
			up := s.upstream.last(t)
			if got := up.Header.Get("Authorization"); got != "Bearer "+token {
				t.Errorf("upstream Authorization = %q, want the exact token", got)
			}
			if strings.Contains(up.Header.Get("Cookie"), "implicit_grant") {
				t.Errorf("upstream got our cookies: %q", up.Header.Get("Cookie"))
			}
			if strings.Contains(up.URL.RawQuery, token) || strings.Contains(up.URL.RawQuery, "state") {
				t.Error("token or state in the upstream URL")
			}

			// A client-sent Authorization is replaced, other cookies survive.
			req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/data", nil)
			req.Header.Set("Authorization", "Bearer forged-by-client")
			req.Header.Set("Accept", "application/json")
			req.AddCookie(&http.Cookie{Name: "theme", Value: "dark"})
			if resp := b.do(req); resp.StatusCode != http.StatusOK {
				t.Fatalf("API call with a session: %d", resp.StatusCode)
			}
			up = s.upstream.last(t)
			if vals := up.Header.Values("Authorization"); len(vals) != 1 || vals[0] != "Bearer "+token {
				t.Errorf("upstream Authorization = %q, want only the session's token", vals)
			}
			if got := up.Header.Get("Cookie"); got != "theme=dark" {
				t.Errorf("upstream Cookie = %q, want only theme=dark", got)
			}
		})
	}
}

func TestDenialShowsErrorPage(t *testing.T) {
	for _, placement := range []string{"fragment", "query"} {
		t.Run(placement, func(t *testing.T) {
			t.Parallel()
			s := newSite(t, siteOptions{providerExtra: "error_in " + placement})
			b := newBrowser(t)
			first := b.navigate(s.origin + "/dash?tab=1")
			callback := b.authorizeAt(first.Header.Get("Location"), false)

			var page *http.Response
			if placement == "query" { // Spotify: ?error=access_denied&state=…
				if callback.Query().Get("error") != "access_denied" {
					t.Fatalf("provider answered %s", callback)
				}
				page = b.navigate(callback.String())
			} else {
				resp := b.relayPost(s.origin+"/oauth/callback", callback.EscapedFragment(), s.origin)
				assertNoSession(t, resp)
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("relay post of a denial: %d", resp.StatusCode)
				}
				_, loc := b.finishAtCallbackAnswer(resp)
				page = b.navigate(s.origin + loc)
			}
			assertNoSession(t, page)
			body := bodyOf(page)
			if page.StatusCode != http.StatusForbidden || !strings.Contains(body, "Sign-in was declined") ||
				!strings.Contains(body, "The user denied the request") || !strings.Contains(body, `href="/dash?tab=1"`) {
				t.Fatalf("error page: %d\n%s", page.StatusCode, body)
			}
			if page.Header.Get("Cache-Control") != "no-store" || !strings.Contains(page.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("error page headers: %v", page.Header)
			}
			if again := b.navigate(s.origin + "/dash?tab=1"); again.StatusCode != http.StatusFound {
				t.Errorf("after a denial the next visit got %d, want a new login", again.StatusCode)
			}
			if s.upstream.count() != 0 {
				t.Error("the upstream was reached without a session")
			}
		})
	}
}

func TestAPICallWithoutSessionGets401(t *testing.T) {
	s := newSite(t, siteOptions{})
	b := newBrowser(t)
	cases := []struct {
		name    string
		method  string
		headers map[string]string
	}{
		{"fetch", "GET", map[string]string{"Accept": "application/json", "Sec-Fetch-Mode": "cors", "Referer": s.origin + "/dash?x=1"}},
		{"xhr", "GET", map[string]string{"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"}},
		{"no html in accept", "GET", map[string]string{"Accept": "*/*"}},
		{"post", "POST", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}},
		{"fetch with html accept", "GET", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "same-origin"}},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, s.origin+"/api/items", nil)
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		resp := b.do(req)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d Location=%q, want 401 and no redirect", tc.name, resp.StatusCode, resp.Header.Get("Location"))
		}
		if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate = %q", tc.name, resp.Header.Get("WWW-Authenticate"))
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" || !strings.Contains(bodyOf(resp), `"login_url":"/oauth/login?return_to=`) {
			t.Errorf("%s: body %s %q", tc.name, ct, bodyOf(resp))
		}
		if tc.name == "fetch" && !strings.Contains(bodyOf(resp), `return_to=%2Fdash%3Fx%3D1`) {
			t.Errorf("fetch: login_url does not return to the calling page: %s", bodyOf(resp))
		}
	}
	if s.upstream.count() != 0 {
		t.Error("the upstream was reached without a session")
	}

	// The login_url works: it starts a login that comes back to return_to.
	start := b.navigate(s.origin + "/oauth/login?return_to=%2Fdash%3Fx%3D1")
	if start.StatusCode != http.StatusFound {
		t.Fatalf("login_url: %d", start.StatusCode)
	}
	status, loc := b.finishAtCallback(b.authorizeAt(start.Header.Get("Location"), true))
	if status != http.StatusOK || loc != "/dash?x=1" {
		t.Fatalf("login through login_url: %d %q", status, loc)
	}
}

func TestExpiryRelogsInToSameURL(t *testing.T) {
	s := newSite(t, siteOptions{providerExtra: "expires_in 3s", extra: "expiry_leeway 1s"})
	b := newBrowser(t)
	target := "/reports/7?view=full"
	if page, _ := b.login(s.origin, target); page.StatusCode != http.StatusOK {
		t.Fatalf("first login: %d", page.StatusCode)
	}
	firstToken := s.upstream.last(t).Header.Get("Authorization")
	time.Sleep(2200 * time.Millisecond) // 3 s token - 1 s leeway = 2 s session

	again := b.navigate(s.origin + target)
	if again.StatusCode != http.StatusFound || !strings.HasPrefix(again.Header.Get("Location"), s.provider+"/authorize") {
		t.Fatalf("after expiry: %d %q, want a redirect to authorize", again.StatusCode, again.Header.Get("Location"))
	}
	// The provider remembers the consent: no dialog this time.
	callback := b.authorizeAt(again.Header.Get("Location"), true)
	status, loc := b.finishAtCallback(callback)
	if status != http.StatusOK || loc != target {
		t.Fatalf("re-login answered %d %q, want %q", status, loc, target)
	}
	if page := b.navigate(s.origin + loc); page.StatusCode != http.StatusOK {
		t.Fatalf("back at the target: %d", page.StatusCode)
	}
	if got := s.upstream.last(t).Header.Get("Authorization"); got == firstToken || got != "Bearer "+tokenFrom(t, callback) {
		t.Errorf("after re-login the upstream got %q, want the new token", got)
	}
}

func TestLogout(t *testing.T) {
	s := newSite(t, siteOptions{})
	b := newBrowser(t)
	b.login(s.origin, "/")
	u, _ := url.Parse(s.origin)
	var stolen string
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			stolen = c.Value
		}
	}
	if stolen == "" {
		t.Fatal("no session cookie after login")
	}

	out := b.navigate(s.origin + "/oauth/logout")
	if out.StatusCode != http.StatusOK || !strings.Contains(bodyOf(out), "Signed out") {
		t.Fatalf("logout: %d %s", out.StatusCode, bodyOf(out))
	}
	if c := sessionSetCookie(out); c == nil || c.MaxAge >= 0 {
		t.Fatalf("logout did not delete the cookie: %+v", c)
	}
	if next := b.navigate(s.origin + "/"); next.StatusCode != http.StatusFound {
		t.Errorf("after logout: %d, want a new login", next.StatusCode)
	}
	// The session is gone on the server too: a copy of the cookie is useless.
	req, _ := http.NewRequest(http.MethodGet, s.origin+"/", nil)
	req.Header.Set("Cookie", sessionCookie+"="+stolen)
	req.Header.Set("Accept", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("old cookie after logout: %v %v, want 401", resp.StatusCode, err)
	}
}

func TestParallelLoginsFromOneBrowser(t *testing.T) {
	s := newSite(t, siteOptions{})
	b := newBrowser(t)
	targets := []string{"/tab/one?a=1", "/tab/two?b=2", "/tab/three"}
	var starts []string
	for _, target := range targets {
		resp := b.navigate(s.origin + target)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%s: %d", target, resp.StatusCode)
		}
		starts = append(starts, resp.Header.Get("Location"))
	}
	// Finish them in the opposite order: none may have overwritten another.
	for i := len(targets) - 1; i >= 0; i-- {
		status, loc := b.finishAtCallback(b.authorizeAt(starts[i], true))
		if status != http.StatusOK || loc != targets[i] {
			t.Errorf("login %d: %d %q, want %q", i, status, loc, targets[i])
		}
	}
}

func TestRelayRefusals(t *testing.T) {
	s := newSite(t, siteOptions{extra: "state_ttl 2s"})
	callbackURL := s.origin + "/oauth/callback"

	// pending starts a login in b and returns the provider's answer.
	pending := func(b *browser) *url.URL {
		first := b.navigate(s.origin + "/secret-page")
		return b.authorizeAt(first.Header.Get("Location"), true)
	}
	refused := func(t *testing.T, b *browser, resp *http.Response, wantStatus int) {
		t.Helper()
		assertNoSession(t, resp)
		if resp.StatusCode != wantStatus {
			t.Errorf("status %d, want %d: %s", resp.StatusCode, wantStatus, bodyOf(resp))
		}
		if next := b.navigate(s.origin + "/secret-page"); next.StatusCode != http.StatusFound {
			t.Errorf("after a refused relay the browser has a session (%d)", next.StatusCode)
		}
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
		refused(t, b, b.relayPost(callbackURL, withState(cb, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), s.origin), http.StatusBadRequest)
	})
	t.Run("missing state", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		refused(t, b, b.relayPost(callbackURL, withState(cb, ""), s.origin), http.StatusBadRequest)
	})
	t.Run("tampered state cookie", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		u, _ := url.Parse(s.origin)
		var tampered []*http.Cookie
		for _, c := range b.client.Jar.Cookies(u) {
			if strings.HasPrefix(c.Name, sessionCookie+"_state_") {
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
		b.client.Jar.SetCookies(u, tampered)
		refused(t, b, b.relayPost(callbackURL, cb.EscapedFragment(), s.origin), http.StatusBadRequest)
	})
	t.Run("expired state", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		u, _ := url.Parse(s.origin)
		saved := b.client.Jar.Cookies(u) // keep the cookie past its Max-Age, as a hostile client would
		time.Sleep(2100 * time.Millisecond)
		refused(t, b, replayPost(t, callbackURL, cb.EscapedFragment(), s.origin, saved), http.StatusBadRequest)
	})
	t.Run("replayed", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		u, _ := url.Parse(s.origin)
		saved := b.client.Jar.Cookies(u)
		if resp := b.relayPost(callbackURL, cb.EscapedFragment(), s.origin); resp.StatusCode != http.StatusOK {
			t.Fatalf("first use: %d", resp.StatusCode)
		}
		// The same response again from a fresh client holding a copy of the
		// state cookie: the state was used, so no second session.
		resp := replayPost(t, callbackURL, cb.EscapedFragment(), s.origin, saved)
		assertNoSession(t, resp)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("replay: %d", resp.StatusCode)
		}
	})
	t.Run("other browser", func(t *testing.T) {
		victim, attacker := newBrowser(t), newBrowser(t)
		cb := pending(attacker)
		victim.navigate(s.origin + "/secret-page") // the victim has a pending login of its own
		refused(t, victim, victim.relayPost(callbackURL, cb.EscapedFragment(), s.origin), http.StatusBadRequest)
	})
	t.Run("cross origin", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		refused(t, b, b.relayPost(callbackURL, cb.EscapedFragment(), "http://evil.example"), http.StatusForbidden)
		// No Origin and a cross-site fetch mark: refused too.
		req, _ := http.NewRequest(http.MethodPost, callbackURL, strings.NewReader(cb.EscapedFragment()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		refused(t, b, b.do(req), http.StatusForbidden)
	})
	t.Run("oversized body", func(t *testing.T) {
		b := newBrowser(t)
		pending(b)
		big := "access_token=" + strings.Repeat("a", 70<<10) + "&token_type=Bearer&state=x"
		refused(t, b, b.relayPost(callbackURL, big, s.origin), http.StatusRequestEntityTooLarge)
	})
	t.Run("wrong content type", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		req, _ := http.NewRequest(http.MethodPost, callbackURL, strings.NewReader(cb.EscapedFragment()))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Origin", s.origin)
		refused(t, b, b.do(req), http.StatusUnsupportedMediaType)
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
		} {
			t.Run(name, func(t *testing.T) {
				b := newBrowser(t)
				cb := pending(b)
				v, _ := url.ParseQuery(cb.Fragment)
				mutate(v)
				refused(t, b, b.relayPost(callbackURL, v.Encode(), s.origin), http.StatusBadRequest)
			})
		}
	})
	t.Run("token in query", func(t *testing.T) {
		b := newBrowser(t)
		cb := pending(b)
		resp := b.navigate(callbackURL + "?" + cb.EscapedFragment())
		refused(t, b, resp, http.StatusBadRequest)
	})
}

// TestScopeEncodings: scope may arrive with "+" or "%20" between scopes.
func TestScopeEncodings(t *testing.T) {
	s := newSite(t, siteOptions{})
	for _, enc := range []string{"+", "%20"} {
		b := newBrowser(t)
		first := b.navigate(s.origin + "/")
		if first.StatusCode != http.StatusFound || first.Header.Get("Location") == "" {
			t.Fatalf("first visit: %d %v\n%s", first.StatusCode, first.Header, bodyOf(first))
		}
		cb := b.authorizeAt(first.Header.Get("Location"), true)
		v, _ := url.ParseQuery(cb.Fragment)
		frag := "access_token=" + url.QueryEscape(v.Get("access_token")) + "&token_type=Bearer&expires_in=60&scope=profile" + enc + "reports%3Aread&state=" + v.Get("state")
		resp := b.relayPost(s.origin+"/oauth/callback", frag, s.origin)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("scope with %q: %d %s", enc, resp.StatusCode, bodyOf(resp))
		}
		if c := sessionSetCookie(resp); c == nil || c.MaxAge > 60 || c.MaxAge < 30 {
			t.Errorf("cookie lifetime for expires_in=60: %+v", c)
		}
	}
}

// TestErrorPagesHandleErrors: with error_pages handle_errors the site's
// routes render every error, with the details in placeholders.
func TestErrorPagesHandleErrors(t *testing.T) {
	s := newSite(t, siteOptions{
		extra:     "error_pages handle_errors",
		siteExtra: "handle_errors {\n\t\trespond \"custom {err.status_code} {http.implicit_grant.error} login={http.implicit_grant.login_url} retry={http.implicit_grant.retry_url}\"\n\t}",
	})
	b := newBrowser(t)
	req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/x", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Referer", s.origin+"/dash?x=1")
	resp := b.do(req)
	if want := "custom 401 unauthenticated login=/oauth/login?return_to=%2Fdash%3Fx%3D1 retry=/dash?x=1"; resp.StatusCode != http.StatusUnauthorized || bodyOf(resp) != want {
		t.Errorf("401 through handle_errors: %d %q, want %q", resp.StatusCode, bodyOf(resp), want)
	}
	resp = b.navigate(s.origin + "/oauth/callback?error=access_denied&return_to=%2Freports")
	if want := "custom 403 access_denied login=/oauth/login?return_to=%2Freports retry=/reports"; resp.StatusCode != http.StatusForbidden || bodyOf(resp) != want {
		t.Errorf("denial through handle_errors: %d %q, want %q", resp.StatusCode, bodyOf(resp), want)
	}
}

// TestOtherSitesHandleErrors: another site on the same listener with
// handle_errors (the Caddyfile adapter puts every site's error routes in
// one server-wide list) changes nothing about this site's own answers.
func TestOtherSitesHandleErrors(t *testing.T) {
	s := newSite(t, siteOptions{otherSite: "handle_errors {\n\t\trespond \"b error page\"\n\t}\n\trespond \"site b\""})
	b := newBrowser(t)
	req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/x", nil)
	req.Header.Set("Accept", "application/json")
	resp := b.do(req)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(bodyOf(resp), `"login_url":"/oauth/login?return_to=%2F"`) {
		t.Errorf("API call without a session: %d %q, want the module's JSON 401", resp.StatusCode, bodyOf(resp))
	}
	resp = b.navigate(s.origin + "/oauth/callback?error=access_denied")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(bodyOf(resp), "Sign-in was declined") {
		t.Errorf("denial: %d %q, want the module's page", resp.StatusCode, bodyOf(resp))
	}
	// Site B is really there, with its own error routes.
	other, _ := http.NewRequest(http.MethodGet, s.origin+"/", nil)
	other.Host = "b.example"
	if resp := b.do(other); bodyOf(resp) != "site b" {
		t.Errorf("site b answered %q", bodyOf(resp))
	}
}

// TestCraftedErrorLinkShowsNoStrangersText: the callback shows the
// server's error_description only for a login this browser started; a
// link anyone can craft gets the module's own words.
func TestCraftedErrorLinkShowsNoStrangersText(t *testing.T) {
	s := newSite(t, siteOptions{})
	b := newBrowser(t)
	for _, link := range []string{
		"/oauth/callback?error=access_denied&error_description=Call+1-800-555-0100+to+restore+access",
		"/oauth/callback?error=access_denied&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&error_description=Call+1-800-555-0100+to+restore+access",
		"/oauth/callback?error=Call_1-800-555-0100_now&error_description=Call+1-800-555-0100+to+restore+access",
	} {
		resp := b.navigate(s.origin + link)
		if body := bodyOf(resp); strings.Contains(body, "1-800") || resp.StatusCode < 400 {
			t.Errorf("%s: %d, the page shows the link's text:\n%s", link, resp.StatusCode, body)
		}
	}
	// The server's own words still reach the person whose login it was
	// (fragment placement: they travel from the relay POST in a signed note).
	first := b.navigate(s.origin + "/dash")
	callback := b.authorizeAt(first.Header.Get("Location"), false)
	_, loc := b.finishAtCallbackAnswer(b.relayPost(s.origin+"/oauth/callback", callback.EscapedFragment(), s.origin))
	if strings.Contains(loc, "denied the request") {
		t.Errorf("the error page URL carries the server's text: %s", loc)
	}
	if page := bodyOf(b.navigate(s.origin + loc)); !strings.Contains(page, "The user denied the request") {
		t.Errorf("the browser that logged in does not see the server's words:\n%s", page)
	}
	// The same URL in another browser, or again: the module's words only.
	if page := bodyOf(newBrowser(t).navigate(s.origin + loc)); strings.Contains(page, "The user denied the request") || !strings.Contains(page, "Sign-in was declined") {
		t.Errorf("another browser sees the server's words:\n%s", page)
	}
	if page := bodyOf(b.navigate(s.origin + loc)); strings.Contains(page, "The user denied the request") {
		t.Errorf("the note was used twice:\n%s", page)
	}
}

// finishAtCallbackAnswer reads a relay answer's status and location.
func (b *browser) finishAtCallbackAnswer(resp *http.Response) (int, string) {
	b.t.Helper()
	body := bodyOf(resp)
	i := strings.Index(body, `"location":"`)
	if i < 0 {
		b.t.Fatalf("relay answer without location: %s", body)
	}
	loc := body[i+len(`"location":"`):]
	loc = loc[:strings.IndexByte(loc, '"')]
	loc, _ = strconv.Unquote(`"` + loc + `"`)
	return resp.StatusCode, loc
}

// TestStartPageForScriptingBrowsers: a browser's top-level page load
// (Sec-Fetch-Dest: document, Upgrade-Insecure-Requests: 1) gets the page
// that keeps the fragment and goes on to authorize; the state is in the
// body only, never in a header. Without those marks: the plain 302.
func TestStartPageForScriptingBrowsers(t *testing.T) {
	s := newSite(t, siteOptions{})
	b := newBrowser(t)
	req, _ := http.NewRequest(http.MethodGet, s.origin+"/app?view=2", nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("Upgrade-Insecure-Requests", "1")
	resp := b.do(req)
	body := bodyOf(resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Fatalf("start page: %d Location=%q", resp.StatusCode, resp.Header.Get("Location"))
	}
	i := strings.Index(body, `id="next" href="`)
	if i < 0 || !strings.Contains(body, `http-equiv="refresh"`) || !strings.Contains(body, "sessionStorage") {
		t.Fatalf("start page body:\n%s", body)
	}
	next := body[i+len(`id="next" href="`):]
	next = strings.ReplaceAll(next[:strings.IndexByte(next, '"')], "&amp;", "&")
	au, err := url.Parse(next)
	if err != nil || au.Query().Get("response_type") != "token" || !strings.HasPrefix(next, s.provider+"/authorize?") {
		t.Fatalf("start page leads to %q", next)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'sha256-") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("start page headers: %v", resp.Header)
	}
	status, loc := b.finishAtCallback(b.authorizeAt(next, true))
	if status != http.StatusOK || loc != "/app?view=2" {
		t.Fatalf("login from the start page: %d %q", status, loc)
	}

	req.Header.Del("Upgrade-Insecure-Requests") // a client imitating some of a browser's headers
	if resp := newBrowser(t).do(req); resp.StatusCode != http.StatusFound {
		t.Errorf("without Upgrade-Insecure-Requests: %d, want the plain 302", resp.StatusCode)
	}
}

// TestOptions: the optional subdirectives change what they say they do.
func TestOptions(t *testing.T) {
	s := newSite(t, siteOptions{extra: `cookie_name __Host-dash
		login_path /auth/in
		logout_path /auth/out
		logout_redirect /bye
		unauthenticated reject
		default_expires_in 20m
		expiry_leeway 1m`})
	b := newBrowser(t)

	// reject: even a navigation gets 401: a page for a person, with a link
	// to the custom login path; JSON for a script.
	nav := b.navigate(s.origin + "/page")
	if nav.StatusCode != http.StatusUnauthorized || !strings.Contains(bodyOf(nav), `href="/auth/in?return_to=%2Fpage"`) {
		t.Fatalf("unauthenticated reject: %d %s", nav.StatusCode, bodyOf(nav))
	}
	api, _ := http.NewRequest(http.MethodGet, s.origin+"/page", nil)
	api.Header.Set("Accept", "application/json")
	if resp := b.do(api); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(bodyOf(resp), `"login_url":"/auth/in?return_to=`) {
		t.Fatalf("unauthenticated reject, API call: %d %s", resp.StatusCode, bodyOf(resp))
	}
	start := b.navigate(s.origin + "/auth/in?return_to=%2Fpage")
	if start.StatusCode != http.StatusFound {
		t.Fatalf("login_path: %d", start.StatusCode)
	}
	cb := b.authorizeAt(start.Header.Get("Location"), true)
	v, _ := url.ParseQuery(cb.Fragment)
	v.Del("expires_in") // the server sends none: default_expires_in applies
	resp := b.relayPost(s.origin+"/oauth/callback", v.Encode(), s.origin)
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-dash" {
			session = c
		}
	}
	if resp.StatusCode != http.StatusOK || session == nil || session.MaxAge != 19*60 {
		t.Fatalf("custom cookie with 20m - 1m lifetime: %d %+v", resp.StatusCode, session)
	}
	if page := b.navigate(s.origin + "/page"); page.StatusCode != http.StatusOK {
		t.Fatalf("with the session: %d", page.StatusCode)
	}
	if strings.Contains(s.upstream.last(t).Header.Get("Cookie"), "__Host-dash") {
		t.Error("the custom cookie reached the upstream")
	}
	out := b.navigate(s.origin + "/auth/out")
	if out.StatusCode != http.StatusSeeOther || out.Header.Get("Location") != "/bye" {
		t.Errorf("logout_redirect: %d %q", out.StatusCode, out.Header.Get("Location"))
	}

	// redirect: a script's GET is sent to log in too.
	r := newSite(t, siteOptions{extra: "unauthenticated redirect"})
	req, _ := http.NewRequest(http.MethodGet, r.origin+"/api/x", nil)
	req.Header.Set("Accept", "application/json")
	if resp := newBrowser(t).do(req); resp.StatusCode != http.StatusFound {
		t.Errorf("unauthenticated redirect: %d", resp.StatusCode)
	}
}
