package implicitgrant

import (
	"bufio"
	"context"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/devprovider"
)

// TestLoginRedirectAndStartPage: a page load without a session gets a 302
// to the login path whose Location holds nothing secret; the login path's
// start page carries the state in its body only, keeps the fragment for
// the return path, and leads to the authorization server. Every client
// gets the same: no browser is told apart by its headers.
func TestLoginRedirectAndStartPage(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	b := newBrowser(t)
	first := b.Navigate(s.origin + "/app?view=2")
	if first.StatusCode != http.StatusFound || first.Header.Get("Location") != "/oauth/login?return_to=%2Fapp%3Fview%3D2" {
		t.Fatalf("first visit: %d Location=%q", first.StatusCode, first.Header.Get("Location"))
	}
	if first.Header.Get("Set-Cookie") != "" {
		t.Errorf("the redirect to the login path already starts a login: %v", first.Header["Set-Cookie"])
	}
	resp := b.Navigate(s.origin + first.Header.Get("Location"))
	body := bodyOf(resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Fatalf("start page: %d Location=%q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !strings.Contains(body, `http-equiv="refresh"`) || !strings.Contains(body, "sessionStorage") || !strings.Contains(body, `data-return-to="/app?view=2"`) {
		t.Fatalf("start page body:\n%s", body)
	}
	next := b.AuthorizationRequest(resp)
	au, err := url.Parse(next)
	if err != nil || au.Query().Get("response_type") != "token" || !strings.HasPrefix(next, s.provider+"/authorize?") || len(au.Query().Get("state")) < 22 {
		t.Fatalf("start page leads to %q", next)
	}
	for name, values := range resp.Header {
		if name != "Set-Cookie" && strings.Contains(strings.Join(values, " "), au.Query().Get("state")) {
			t.Errorf("the state is in the %s header", name)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'sha256-") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("start page headers: %v", resp.Header)
	}
	status, loc := b.FinishAtCallback(b.AuthorizeAt(next, true))
	if status != http.StatusOK || loc != "/app?view=2" {
		t.Fatalf("login from the start page: %d %q", status, loc)
	}

	// preserve_fragment off: the start page keeps no fragment.
	off := newTestSite(t, siteOptions{handler: func(h *Handler) { h.PreserveFragment = new(bool) }})
	if page := bodyOf(newBrowser(t).Navigate(off.origin + "/oauth/login?return_to=%2Fapp")); !strings.Contains(page, `data-keep-fragment="false"`) {
		t.Errorf("preserve_fragment off still keeps the fragment:\n%s", page)
	}
}

func TestAPICallWithoutSessionGets401(t *testing.T) {
	s := newTestSite(t, siteOptions{})
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
		resp := b.Do(req)
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
	start := b.Navigate(s.origin + "/oauth/login?return_to=%2Fdash%3Fx%3D1")
	if start.StatusCode != http.StatusOK {
		t.Fatalf("login_url: %d", start.StatusCode)
	}
	status, loc := b.FinishAtCallback(b.AuthorizeAt(b.AuthorizationRequest(start), true))
	if status != http.StatusOK || loc != "/dash?x=1" {
		t.Fatalf("login through login_url: %d %q", status, loc)
	}
}

// assertSameOrigin fails unless a browser told to go to loc would stay on origin.
func assertSameOrigin(t *testing.T, origin, loc string) {
	t.Helper()
	if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.ContainsAny(loc, "\\\t\r\n") {
		t.Errorf("return location %q is not a plain same-origin path", loc)
		return
	}
	base, _ := url.Parse(origin + "/some/page")
	ref, err := url.Parse(loc)
	if err != nil {
		t.Errorf("return location %q does not parse: %v", loc, err)
		return
	}
	if got := base.ResolveReference(ref); got.Host != base.Host || got.Scheme != base.Scheme {
		t.Errorf("return location %q resolves to %s", loc, got)
	}
	if pathPart, _, _ := strings.Cut(loc, "?"); strings.Contains(pathPart, "//") {
		t.Errorf("return location %q keeps a // that dot segments can bring to the front", loc)
	}
	if dec, err := url.PathUnescape(loc); err == nil && (strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\")) {
		t.Errorf("return location %q decodes to a network path %q", loc, dec)
	}
}

// TestOpenRedirectAttempts: whatever the request or return_to says, a
// finished login only ever sends the browser to a path on this origin.
func TestOpenRedirectAttempts(t *testing.T) {
	s := newTestSite(t, siteOptions{})

	returnTos := []string{
		"//evil.example/", "///evil.example", "/\\evil.example", "\\\\evil.example", "/%2F%2Fevil.example",
		"/%2f/evil.example", "/%5Cevil.example", "/%5C%5Cevil.example", "\t//evil.example", "/\t/evil.example",
		"/\n/evil.example", "/\r\n/evil.example", "https:evil.example", "https://evil.example/", "http:/evil.example",
		"javascript:alert(1)", "data:text/html,hi", "evil.example", " //evil.example", "/%09/evil.example",
		"/%0d%0a/evil.example", "//%65vil.example", "/.//evil.example", "%2F%2Fevil.example",
		"/..//evil.example", "/a/../..//evil.example", "/%2e%2e//evil.example",
	}
	for _, rt := range returnTos {
		b := newBrowser(t)
		start := b.Navigate(s.origin + "/oauth/login?return_to=" + url.QueryEscape(rt))
		if start.StatusCode != http.StatusOK {
			t.Fatalf("return_to %q: %d", rt, start.StatusCode)
		}
		status, loc := b.FinishAtCallback(b.AuthorizeAt(b.AuthorizationRequest(start), true))
		if status != http.StatusOK {
			t.Fatalf("return_to %q: relay %d", rt, status)
		}
		assertSameOrigin(t, s.origin, loc)
	}

	// The same tricks in the request line itself, sent raw so no client
	// library cleans them up first.
	rawPaths := []string{"//evil.example/", "/\\evil.example/", "/%2F%2Fevil.example", "/%5C%5Cevil.example", "///evil.example/x?y=1"}
	u, _ := url.Parse(s.origin)
	for _, p := range rawPaths {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/html\r\nSec-Fetch-Mode: navigate\r\nConnection: close\r\n\r\n", p, u.Host)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatalf("raw %q: %v", p, err)
		}
		if resp.StatusCode != http.StatusFound {
			continue // refused before any login started: nothing to redirect to
		}
		next := resp.Header.Get("Location")
		assertSameOrigin(t, s.origin, next)
		b := newBrowser(t)
		status, loc := b.FinishAtCallback(b.AuthorizeAt(b.AuthorizationRequest(b.Navigate(s.origin+next)), true))
		if status != http.StatusOK {
			t.Fatalf("raw %q: relay %d", p, status)
		}
		assertSameOrigin(t, s.origin, loc)
	}

	// Error pages' "try again" links follow the same rule.
	b := newBrowser(t)
	page := b.Navigate(s.origin + "/oauth/callback?error=access_denied&return_to=" + url.QueryEscape("//evil.example"))
	if strings.Contains(bodyOf(page), "evil.example") {
		t.Errorf("error page links to another origin:\n%s", bodyOf(page))
	}
}

func TestExpiryRelogsInToSameURL(t *testing.T) {
	s := newTestSite(t, siteOptions{
		provider: func(p *devprovider.Provider) { p.ExpiresIn = caddy.Duration(3 * time.Second) },
		handler:  func(h *Handler) { h.ExpiryLeeway = caddy.Duration(time.Second) },
	})
	b := newBrowser(t)
	target := "/reports/7?view=full"
	if page, _ := b.Login(s.origin, target); page.StatusCode != http.StatusOK {
		t.Fatalf("first login: %d", page.StatusCode)
	}
	firstToken := s.upstream.last(t).Header.Get("Authorization")
	time.Sleep(2200 * time.Millisecond) // 3 s token - 1 s leeway = 2 s session

	again := b.Navigate(s.origin + target)
	if again.StatusCode != http.StatusFound || !strings.HasPrefix(b.AuthorizationRequest(again), s.provider+"/authorize") {
		t.Fatalf("after expiry: %d %q, want a login", again.StatusCode, again.Header.Get("Location"))
	}
	// The provider remembers the consent: no dialog this time.
	callback := b.AuthorizeAt(b.AuthorizationRequest(again), true)
	status, loc := b.FinishAtCallback(callback)
	if status != http.StatusOK || loc != target {
		t.Fatalf("re-login answered %d %q, want %q", status, loc, target)
	}
	if page := b.Navigate(s.origin + loc); page.StatusCode != http.StatusOK {
		t.Fatalf("back at the target: %d", page.StatusCode)
	}
	if got := s.upstream.last(t).Header.Get("Authorization"); got == firstToken || got != "Bearer "+tokenFrom(t, callback) {
		t.Errorf("after re-login the upstream got %q, want the new token", got)
	}
}

// TestManyPendingLoginsWithLongURLs: twenty logins pending in one browser,
// each for a 4 KB URL, keep the browser's Cookie header small (the site
// keeps answering), and every one of them can still finish: a return path
// too long for the state cookie comes back from the start page (the relay
// answer says to resume it).
func TestManyPendingLoginsWithLongURLs(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	b := newBrowser(t)
	var authorize string
	for i := 0; i < 20; i++ {
		target := fmt.Sprintf("/dash/%02d?q=%s", i, strings.Repeat("x", 4096))
		start := b.Navigate(s.origin + target)
		authorize = b.AuthorizationRequest(start)
		if !strings.Contains(html.UnescapeString(bodyOf(b.Navigate(s.origin+start.Header.Get("Location")))), `data-return-to="`+target) {
			t.Fatalf("the start page does not keep the %d-byte return path", len(target))
		}
	}
	cookieBytes := 0
	for _, c := range b.Client.Jar.Cookies(mustURL(t, s.origin)) {
		cookieBytes += len(c.Name) + len(c.Value) + 3
	}
	if cookieBytes > 4096 {
		t.Errorf("twenty pending logins make a %d-byte Cookie header", cookieBytes)
	}
	resp := b.RelayPost(s.origin+"/oauth/callback", b.AuthorizeAt(authorize, true).EscapedFragment(), s.origin)
	if resp.StatusCode != http.StatusOK || !strings.Contains(bodyOf(resp), `"resume":true`) {
		t.Fatalf("the newest login: %d %s", resp.StatusCode, bodyOf(resp))
	}
}

// BenchmarkLoginStart is how fast a stranger can make the handler mint
// logins (a state, its signed cookie, the start page): the work a flood of
// GET /oauth/login costs, nothing of which is kept on the server.
func BenchmarkLoginStart(b *testing.B) {
	h := newTestHandler(b, nil)
	h.logger = zap.NewNop() // production logs at info: "login started" is a debug line
	r := httptest.NewRequest(http.MethodGet, "https://app.example/oauth/login?return_to=%2Freports", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, noopNext); err != nil || w.Code != http.StatusOK {
			b.Fatalf("%d %v", w.Code, err)
		}
	}
}

// TestSecureSiteCookies: an https site's cookies carry Secure and the
// __Host- prefix (only a plain-http loopback site drops them); and http is
// refused for any redirect_uri host but a loopback one.
func TestSecureSiteCookies(t *testing.T) {
	providerL, siteL := listen(t), listen(t)
	origin := "https://" + siteL.Addr().String() // the test certificate names 127.0.0.1
	provider := "http://" + providerL.Addr().String()
	p := &devprovider.Provider{Clients: map[string]string{"tls-client": origin + "/oauth/callback"}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	serve(t, providerL, p, noopNext)
	h := newTestHandler(t, func(h *Handler) {
		h.AuthorizeURL, h.ClientID, h.RedirectURI = provider+"/authorize", "tls-client", origin+"/oauth/callback"
		h.Validation = &Validation{Mode: validateIntrospect, URL: provider + "/introspect"}
	})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		_ = h.ServeHTTP(w, r, noopNext)
	}))
	srv.Listener.Close()
	srv.Listener = siteL
	srv.StartTLS()
	defer srv.Close()

	b := newBrowser(t)
	b.Client.Transport = srv.Client().Transport
	start := b.Navigate(origin + "/oauth/login?return_to=%2F")
	for _, c := range start.Cookies() {
		if !strings.HasPrefix(c.Name, "__Host-implicit_grant_state_") || !c.Secure {
			t.Errorf("state cookie %s: secure=%v", c.Name, c.Secure)
		}
	}
	resp := b.RelayPost(origin+"/oauth/callback", b.AuthorizeAt(b.AuthorizationRequest(start), true).EscapedFragment(), origin)
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == DefaultCookieName {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.Domain != "" {
		t.Fatalf("https session cookie: %d %+v", resp.StatusCode, session)
	}

	for _, host := range []string{"app.example", "10.0.0.5"} {
		bad := &Handler{AuthorizeURL: "https://as.example/a", ClientID: "c", RedirectURI: "http://" + host + "/cb", Secret: testSecret, Validation: &Validation{Mode: validateNone}}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		if err := bad.Provision(ctx); err == nil || !strings.Contains(err.Error(), "redirect_uri") {
			t.Errorf("http redirect_uri on %s: %v", host, err)
		}
		cancel()
	}
}

// TestMadeUpStateCookiesGetASmallReply: a login start carrying 500 made-up
// pending-login cookies (15 KB) gets at most max_pending_logins lines
// clearing them, not one each.
func TestMadeUpStateCookiesGetASmallReply(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	req, _ := http.NewRequest(http.MethodGet, s.origin+"/oauth/login?return_to=%2F", nil)
	var cookies []string
	for i := range 500 {
		cookies = append(cookies, fmt.Sprintf("%s%d=made-up", s.h.states.NamePrefix, i))
	}
	req.Header.Set("Cookie", strings.Join(cookies, "; "))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := len(resp.Header.Values("Set-Cookie")); n > DefaultMaxPendingLogins+1 {
		t.Errorf("%d Set-Cookie lines for 500 made-up state cookies; want at most %d", n, DefaultMaxPendingLogins+1)
	}
}
