package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

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
	s := newSite(t, siteOptions{})

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
		start := b.navigate(s.origin + "/oauth/login?return_to=" + url.QueryEscape(rt))
		if start.StatusCode != http.StatusFound {
			t.Fatalf("return_to %q: %d", rt, start.StatusCode)
		}
		status, loc := b.finishAtCallback(b.authorizeAt(start.Header.Get("Location"), true))
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
		b := newBrowser(t)
		b.client.Jar.SetCookies(u, resp.Cookies())
		status, loc := b.finishAtCallback(b.authorizeAt(resp.Header.Get("Location"), true))
		if status != http.StatusOK {
			t.Fatalf("raw %q: relay %d", p, status)
		}
		assertSameOrigin(t, s.origin, loc)
	}

	// Error pages' "try again" links follow the same rule.
	b := newBrowser(t)
	page := b.navigate(s.origin + "/oauth/callback?error=access_denied&return_to=" + url.QueryEscape("//evil.example"))
	if strings.Contains(bodyOf(page), "evil.example") {
		t.Errorf("error page links to another origin:\n%s", bodyOf(page))
	}
}

// TestLogsNeverContainSecrets captures every log line Caddy writes, at
// debug level and with access logs on, through a login, proxied calls, a
// refused replay, a denial and a logout, plus Caddy's metrics, and looks for
// the secrets in them.
func TestLogsNeverContainSecrets(t *testing.T) {
	s := newSite(t, siteOptions{globals: "debug"})
	b := newBrowser(t)

	first := b.navigate(s.origin + "/dash?q=1")
	au, _ := url.Parse(first.Header.Get("Location"))
	state := au.Query().Get("state")
	callback := b.authorizeAt(au.String(), true)
	token := tokenFrom(t, callback)
	if status, _ := b.finishAtCallback(callback); status != http.StatusOK {
		t.Fatalf("login: %d", status)
	}
	u, _ := url.Parse(s.origin)
	var session string
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			session = c.Value
		}
	}
	b.navigate(s.origin + "/dash?q=1")
	req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/items", nil)
	req.Header.Set("Accept", "application/json")
	b.do(req)
	b.relayPost(s.origin+"/oauth/callback", callback.EscapedFragment(), s.origin) // replay: refused, logged

	other := newBrowser(t)
	deniedStart := other.navigate(s.origin + "/x")
	deniedState, _ := url.Parse(deniedStart.Header.Get("Location"))
	denied := other.authorizeAt(deniedStart.Header.Get("Location"), false)
	other.relayPost(s.origin+"/oauth/callback", denied.EscapedFragment(), s.origin)
	b.navigate(s.origin + "/oauth/logout")
	time.Sleep(200 * time.Millisecond) // let the last lines reach the pipe

	// Caddy's metrics, scraped from its admin endpoint, count the login
	// outcomes and carry no secret either.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.caddy.AdminPort))
	if err != nil {
		t.Fatal(err)
	}
	metricsText := bodyOf(resp)
	for _, want := range []string{
		`caddy_implicit_grant_logins_total{outcome="success"} 1`,
		`caddy_implicit_grant_logins_total{outcome="invalid_state"} 1`,
		`caddy_implicit_grant_logins_total{outcome="denied"} 1`,
		`caddy_implicit_grant_requests_total{result="authenticated"}`,
		`caddy_implicit_grant_requests_total{result="unauthenticated"}`,
		`caddy_implicit_grant_logouts_total 1`,
	} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	logs := s.caddy.Output.String() + metricsText
	if !strings.Contains(logs, `"msg":"login finished"`) || !strings.Contains(logs, `"logger":"http.log.access`) {
		t.Fatalf("the logs do not cover the login (debug and access logs expected):\n%s", logs)
	}
	for name, secret := range map[string]string{
		"access token": token, "session id": session, "state": state,
		"denied login's state": deniedState.Query().Get("state"), "secret": s.secret,
	} {
		if secret == "" {
			t.Fatalf("test setup: no %s captured", name)
		}
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, secret) || strings.Contains(line, url.QueryEscape(secret)) {
				t.Errorf("the %s appears in a log or metrics line:\n%s", name, line)
			}
		}
	}
}
