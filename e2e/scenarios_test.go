package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/implicitgrant/caddy-implicit-grant/internal/browsers"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
)

// sessionCookie is the session cookie's name on the suite's plain-http
// loopback sites (the __Host- prefix goes with Secure there).
const sessionCookie = "implicit_grant"

// screenshotPath is where a screenshot goes: docs/ when
// IMPLICIT_GRANT_SCREENSHOTS=1 (to refresh the committed ones), else a
// temporary directory, so the suite takes them on every run.
func screenshotPath(t *testing.T, name string) string {
	if os.Getenv("IMPLICIT_GRANT_SCREENSHOTS") == "1" {
		return filepath.Join("..", "docs", name)
	}
	return filepath.Join(t.TempDir(), name)
}

// login approves at the server and waits to be back at want (a prefix of
// the final URL), then checks the upstream got a token the server accepts.
func (b *browser) loginTo(t *testing.T, s *site, start, want string, approve bool) string {
	t.Helper()
	b.navigate(b.ctx, s.origin+start)
	if approve {
		b.decide(b.ctx, "approve")
	}
	loc := b.waitLocation(b.ctx, s.origin+want)
	b.upstreamSaysValid(t, b.ctx)
	return loc
}

func TestDeepURLWithFragmentSurvivesLogin(t *testing.T) {
	// Here also with Hydra's JWT access tokens checked with its keys, and
	// its opaque ones checked at its introspection endpoint.
	for _, srv := range append(servers(t), hydraServer(t, "jwt"), hydraServer(t, "introspect")) {
		t.Run(srv.name, func(t *testing.T) {
			s := newSite(t, srv, 0, "")
			b := newBrowser(t)
			target := s.origin + "/app?view=2#/reports/17"

			loc := b.loginTo(t, s, "/app?view=2#/reports/17", "/app", true)
			if loc != target {
				t.Fatalf("landed on %s, want %s", loc, target)
			}
			if path := b.text(b.ctx, "#path"); path != "/app?view=2" {
				t.Errorf("upstream rendered %q", path)
			}
			user := b.text(b.ctx, "#user")
			if user == "" {
				t.Error("the server named no user for the token")
			}
			// header_up X-Forwarded-User {http.auth.user.id}: the upstream
			// is told who the user is, as the server says.
			if fwd := s.upstream.lastForwarded(); fwd != user {
				t.Errorf("X-Forwarded-User %q, the server says the token is %q's", fwd, user)
			}
			if token := strings.TrimPrefix(s.upstream.lastAuth(), "Bearer "); srv.name == "hydra-jwt" && strings.Count(token, ".") != 2 {
				t.Errorf("hydra-jwt issued a token that is not a JWT (%d bytes)", len(token))
			}

			// No token in the address bar or anywhere in this tab's history.
			if href := eval[string](b, b.ctx, "location.href"); strings.Contains(href, "access_token") {
				t.Errorf("location.href holds the token: %s", href)
			}
			history, err := chromedp.Run(b.ctx, chromedp.NavigationEntries())
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range history.Entries {
				if strings.Contains(e.URL, "access_token") {
					t.Errorf("history entry %d holds the token: %s", e.ID, e.URL)
				}
			}
			if errs := b.consoleErrors(); len(errs) > 0 {
				t.Errorf("console errors or CSP violations during the login:\n%s", strings.Join(errs, "\n"))
			}

			// The cookie as DESIGN.md says, and out of scripts' reach.
			cookies := cdpCall(b, b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.origin + "/"}})
			var found bool
			for _, c := range cookies.Cookies {
				if c.Name != sessionCookie {
					continue
				}
				found = true
				if !c.HTTPOnly || c.Secure || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || c.Domain != "localhost" {
					t.Errorf("session cookie: httpOnly=%v secure=%v sameSite=%v path=%q domain=%q", c.HTTPOnly, c.Secure, c.SameSite, c.Path, c.Domain)
				}
			}
			if !found {
				t.Fatalf("no %s cookie in the browser", sessionCookie)
			}
			if dc := eval[string](b, b.ctx, "document.cookie"); strings.Contains(dc, "implicit_grant") {
				t.Errorf("document.cookie sees our cookie: %q", dc)
			}

			// Going back through the history never shows a token either.
			for i := 0; i < 3; i++ {
				eval[bool](b, b.ctx, "setTimeout(function () { history.back() }, 0), true")
				time.Sleep(400 * time.Millisecond)
				if back := b.location(b.ctx); strings.Contains(back, "access_token") {
					t.Errorf("going back shows %s", back)
				}
			}
		})
	}
}

func TestDenyThenTryAgain(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			s := newSite(t, srv, 0, "")
			b := newBrowser(t)
			b.navigate(b.ctx, s.origin+"/denied?x=1")
			b.decide(b.ctx, "deny")
			b.waitLocation(b.ctx, s.origin+"/oauth/callback?error=access_denied")
			body := eval[string](b, b.ctx, "document.body.innerText")
			if !strings.Contains(body, "Sign-in was declined") || !strings.Contains(body, "access_denied") {
				t.Fatalf("error page says:\n%s", body)
			}
			if s.upstream.count() != 0 {
				t.Fatal("the upstream was reached after a denial")
			}
			if srv.name == "dev-provider" {
				b.screenshot(b.ctx, screenshotPath(t, "error-page.png"))
			}
			eval[bool](b, b.ctx, `document.querySelector("a.button").click(), true`) // "Try again"
			b.decide(b.ctx, "approve")
			b.waitLocation(b.ctx, s.origin+"/denied?x=1")
			b.upstreamSaysValid(t, b.ctx)
		})
	}
}

// TestDenyThenTryAgainKeepsFragment: "Try again" after a denial comes back
// to the page the login began on, the URL's fragment included.
func TestDenyThenTryAgainKeepsFragment(t *testing.T) {
	s := newSite(t, devProvider(), 0, "")
	b := newBrowser(t)
	target := s.origin + "/denied?x=1#/panel/2"
	b.navigate(b.ctx, target)
	b.decide(b.ctx, "deny")
	b.waitFor(b.ctx, `document.body.innerText.includes("Sign-in was declined")`, "the error page")
	eval[bool](b, b.ctx, `document.querySelector("a.button").click(), true`) // "Try again"
	b.decide(b.ctx, "approve")
	b.waitLocation(b.ctx, target)
	b.upstreamSaysValid(t, b.ctx)
}

func TestTwoTabsLogInAtOnce(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			s := newSite(t, srv, 0, "")
			b := newBrowser(t)
			interactive := srv.name != "hydra"
			if !interactive {
				// Hydra keeps one consent CSRF cookie per browser, so it cannot
				// hold two consent screens open at once. Consent once, log out
				// of the site, and let both tabs pass Hydra without a screen:
				// the site still has two logins pending at the same time.
				b.loginTo(t, s, "/warm-up", "/warm-up", true)
				b.navigate(b.ctx, s.origin+"/oauth/logout")
			}
			b.navigate(b.ctx, "about:blank")
			tab2 := b.newTab()
			// Both tabs leave for the server before either comes back.
			b.navigate(b.ctx, s.origin+"/tab/one#first")
			b.navigate(tab2, s.origin+"/tab/two?x=2#second")
			if interactive {
				b.waitFor(b.ctx, `!!document.querySelector("#approve")`, "tab 1's consent screen")
				b.waitFor(tab2, `!!document.querySelector("#approve")`, "tab 2's consent screen")
				b.decide(tab2, "approve")
				b.decide(b.ctx, "approve")
			}
			if loc := b.waitLocation(tab2, s.origin+"/tab/two"); loc != s.origin+"/tab/two?x=2#second" {
				t.Errorf("tab 2 landed on %s", loc)
			}
			if loc := b.waitLocation(b.ctx, s.origin+"/tab/one"); loc != s.origin+"/tab/one#first" {
				t.Errorf("tab 1 landed on %s", loc)
			}
			b.upstreamSaysValid(t, b.ctx)
			b.upstreamSaysValid(t, tab2)
		})
	}
}

func TestFetchWithoutSessionGets401(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			s := newSite(t, srv, 0, "")
			b := newBrowser(t)
			// A same-origin page that needs no session: the relay page
			// without a fragment (its CSP allows connect-src 'self').
			b.navigate(b.ctx, s.origin+"/oauth/callback")
			got := eval[map[string]any](b, b.ctx, `fetch("/api/items", {headers: {"Accept": "application/json"}})
				.then(r => r.json().then(j => ({status: r.status, redirected: r.redirected, url: r.url, login: j.login_url || "", auth: r.headers.get("WWW-Authenticate") || ""})))
				.catch(e => ({error: String(e)}))`)
			if got["error"] != nil {
				t.Fatalf("fetch failed (a CORS error or a followed redirect): %v", got["error"])
			}
			if got["status"] != float64(401) || got["redirected"] != false || got["url"] != s.origin+"/api/items" {
				t.Errorf("fetch answered %v", got)
			}
			if !strings.HasPrefix(got["login"].(string), "/oauth/login?return_to=") || !strings.HasPrefix(got["auth"].(string), "Bearer") {
				t.Errorf("401 body or header: %v", got)
			}
			if s.upstream.count() != 0 {
				t.Error("the upstream was reached without a session")
			}
		})
	}
}

func TestExpiryReauthorizesWithoutDialog(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			s := newSite(t, srv, 5*time.Second, "expiry_leeway 1s")
			b := newBrowser(t)
			b.loginTo(t, s, "/exp?x=1", "/exp?x=1", true)
			first := s.upstream.lastAuth()
			time.Sleep(4500 * time.Millisecond) // 5 s token - 1 s leeway

			// No click this time: the server remembers the consent. (Another
			// query, so this is a real navigation, not a fragment change.)
			b.navigate(b.ctx, s.origin+"/exp?x=2#again")
			if loc := b.waitLocation(b.ctx, s.origin+"/exp?x=2"); loc != s.origin+"/exp?x=2#again" {
				t.Errorf("after re-authorizing landed on %s", loc)
			}
			b.upstreamSaysValid(t, b.ctx)
			if again := s.upstream.lastAuth(); again == first || again == "" {
				t.Error("the upstream did not get a new token after expiry")
			}
		})
	}
}

func TestLogoutGoesBackToServer(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			s := newSite(t, srv, 0, "")
			b := newBrowser(t)
			b.loginTo(t, s, "/in", "/in", true)
			first := s.upstream.lastAuth()
			b.navigate(b.ctx, s.origin+"/oauth/logout")
			if body := eval[string](b, b.ctx, "document.body.innerText"); !strings.Contains(body, "Signed out") {
				t.Fatalf("logout page: %s", body)
			}
			var visitedServer atomic.Bool // set by the listener's goroutine
			_ = chromedp.Listen(b.ctx, func(ev any) {
				if e, ok := ev.(*network.EventRequestWillBeSent); ok && !strings.HasPrefix(e.Request.URL, s.origin) {
					visitedServer.Store(true)
				}
			})
			b.navigate(b.ctx, s.origin+"/after")
			b.waitLocation(b.ctx, s.origin+"/after")
			b.upstreamSaysValid(t, b.ctx)
			if !visitedServer.Load() {
				t.Error("after logout the next visit did not go through the authorization server")
			}
			if s.upstream.lastAuth() == first {
				t.Error("after logout the upstream still got the old token")
			}
		})
	}
}

// TestRelayWithoutJavaScript: the relay page explains itself when scripts
// are off (the server does not matter here: dev provider only).
func TestRelayWithoutJavaScript(t *testing.T) {
	chromiumPath(t)
	s := newSite(t, devProvider(), 0, "")
	b := newBrowser(t)
	cdpCall(b, b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
	b.navigate(b.ctx, s.origin+"/oauth/callback#access_token=x&token_type=Bearer&state=y")
	body := eval[string](b, b.ctx, "document.body.innerText")
	if !strings.Contains(body, "Signing in needs JavaScript") || strings.Contains(body, "Signing in…") {
		t.Fatalf("relay page without JavaScript must say it needs JavaScript, and not that it is signing in:\n%s", body)
	}
	if href := eval[string](b, b.ctx, `[...document.querySelectorAll("a")].filter(a => a.textContent === "Try again").map(a => a.getAttribute("href")).join()`); href != "/" {
		t.Errorf("relay page without JavaScript: the Try again link goes to %q, want /", href)
	}
	b.screenshot(b.ctx, screenshotPath(t, "relay-page.png"))
}

// TestDemoInEveryEngine runs Caddyfile.example, the README's first
// command, and logs in through it as a person would with Chromium, Firefox
// and WebKit in turn. Its ports are moved to free ones: Caddy listens with
// SO_REUSEPORT, so a test on the demo's own ports would share them, with
// no error, with a demo someone is running, and both would fail.
func TestDemoInEveryEngine(t *testing.T) {
	chromiumPath(t)
	demo, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	site, admin, codeSite, providerPort := testcaddy.FreePort(t), testcaddy.FreePort(t), testcaddy.FreePort(t), testcaddy.FreePort(t)
	ports := strings.NewReplacer("localhost:2019", fmt.Sprint("localhost:", admin), ":8080", fmt.Sprint(":", site),
		":8081", fmt.Sprint(":", providerPort), ":8082", fmt.Sprint(":", testcaddy.FreePort(t)), ":8083", fmt.Sprint(":", codeSite))
	testcaddy.StartRaw(t, ports.Replace(string(demo)), admin)
	target := fmt.Sprintf("http://localhost:%d/reports?range=7d#/panel/2", site)
	// The code-flow site: a deep URL, query and fragment, lands exactly.
	codeTarget := fmt.Sprintf("http://localhost:%d/reports?range=30d#/panel/3", codeSite)
	// The email comes from userinfo: the demo's provider puts none in its ID tokens.
	const dashboardReady = `document.querySelector("#token-status") && document.querySelector("#token-status").textContent.trim() === "valid" && document.querySelector("#forwarded-user").textContent === "demo-user" && document.querySelector("#forwarded-email").textContent === "demo-user@corp.example"`

	// docs/scripts.md: a script with its own token (client credentials
	// from the demo's provider) calls the site, which takes bearers for
	// dashboard-api.
	t.Run("script", func(t *testing.T) {
		token := testbrowser.ServiceToken(t, fmt.Sprintf("http://127.0.0.1:%d", providerPort), "svc-reporter", "demo-service-secret")
		call, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://localhost:%d/reports?range=7d", site), nil)
		call.Header.Set("Authorization", "Bearer "+token)
		page, err := http.DefaultClient.Do(call)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(page.Body)
		page.Body.Close()
		if page.StatusCode != http.StatusOK || !strings.Contains(string(body), "svc-reporter") {
			t.Errorf("the script's call: %d\n%s", page.StatusCode, body)
		}
		bad, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://localhost:%d/reports", site), nil)
		bad.Header.Set("Authorization", "Bearer made-up")
		if resp, err := http.DefaultClient.Do(bad); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a made-up bearer: %v %v, want 401", resp.StatusCode, err)
		}
	})
	t.Run("chromium", func(t *testing.T) {
		b := newBrowser(t)
		b.navigate(b.ctx, target)
		b.decide(b.ctx, "approve")
		b.waitLocation(b.ctx, target)
		b.waitFor(b.ctx, dashboardReady, "the dashboard with a valid token for demo-user")
		b.screenshot(b.ctx, screenshotPath(t, "dashboard.png"))
		b.navigate(b.ctx, codeTarget)
		b.decide(b.ctx, "approve")
		b.waitLocation(b.ctx, codeTarget)
		b.waitFor(b.ctx, dashboardReady, "the code-flow dashboard with a valid token for demo-user")
		// end_session: the logout ends the login at the provider too, and
		// comes back to the logout path, its state checked.
		b.navigate(b.ctx, fmt.Sprintf("http://localhost:%d/oauth/logout", codeSite))
		b.waitFor(b.ctx, `document.body.innerText.includes("signed out of this site and at the authorization server")`, "the signed-out page after the provider's end session")
		// The provider forgot the login: the next visit shows its consent page.
		b.navigate(b.ctx, codeTarget)
		b.decide(b.ctx, "approve")
		b.waitLocation(b.ctx, codeTarget)
		// "Sign out everywhere" at the provider ends the session here (back-channel).
		b.navigate(b.ctx, fmt.Sprintf("http://127.0.0.1:%d/", providerPort))
		b.decide(b.ctx, "sign-out-everywhere")
		b.waitFor(b.ctx, `document.body.innerText.includes("Signed out everywhere")`, "the provider's signed-out page")
		b.navigate(b.ctx, fmt.Sprintf("http://localhost:%d/oauth/session", codeSite))
		if body := eval[string](b, b.ctx, "document.body.innerText"); !strings.Contains(body, `"authenticated":false`) {
			t.Errorf("after Sign out everywhere the code-flow site says: %s", body)
		}
	})
	t.Run("firefox", func(t *testing.T) {
		f := browsers.StartFirefox(t)
		f.Navigate(target)
		f.Click("#approve")
		f.WaitLocation(target)
		f.WaitFor(dashboardReady, "the dashboard with a valid token for demo-user")
		f.Navigate(codeTarget)
		f.Click("#approve")
		f.WaitLocation(codeTarget)
		f.WaitFor(dashboardReady, "the code-flow dashboard with a valid token for demo-user")
	})
	t.Run("webkit", func(t *testing.T) {
		b := browsers.StartWebKit(t)
		b.Navigate(target)
		b.Click("#approve")
		b.WaitLocation(target)
		b.WaitFor("return "+dashboardReady, "the dashboard with a valid token for demo-user")
		b.Navigate(codeTarget)
		b.Click("#approve")
		b.WaitLocation(codeTarget)
		b.WaitFor("return "+dashboardReady, "the code-flow dashboard with a valid token for demo-user")
	})
}

// upstreamSaysValid waits for the upstream's page in ctx and fails unless
// the authorization server accepted the token the upstream got.
func (b *browser) upstreamSaysValid(t *testing.T, ctx context.Context) {
	t.Helper()
	b.waitFor(ctx, `!!document.querySelector("#token-status")`, "the upstream's page")
	if got := b.text(ctx, "#token-status"); got != "valid" {
		t.Fatalf("the upstream says its token is %q", got)
	}
}

func (u *upstream) lastForwarded() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.forwarded) == 0 {
		return ""
	}
	return u.forwarded[len(u.forwarded)-1]
}

func (u *upstream) allAuths() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.auths...)
}

func (u *upstream) lastAuth() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.auths) == 0 {
		return ""
	}
	return u.auths[len(u.auths)-1]
}

// TestManyPendingLoginsWithLongURLs: twenty logins left pending in one
// browser, each for a 4 KB URL with a fragment, do not lock the browser
// out, and the newest one lands on its exact URL (the return path too long
// for the state cookie is kept by the start page in the tab).
func TestManyPendingLoginsWithLongURLs(t *testing.T) {
	chromiumPath(t)
	s := newSite(t, devProvider(), 0, "")
	b := newBrowser(t)
	var target string
	for i := 0; i < 20; i++ {
		target = fmt.Sprintf("/long/%02d?q=%s#/panel/%d", i, strings.Repeat("x", 4000), i)
		b.navigate(b.ctx, s.origin+target)
		b.waitFor(b.ctx, `!!document.querySelector("#approve")`, "the consent page")
	}
	b.decide(b.ctx, "approve")
	if loc := b.waitLocation(b.ctx, s.origin+"/long/19"); loc != s.origin+target {
		t.Fatalf("landed on %d bytes %q…, want the exact %d-byte URL", len(loc), loc[:min(len(loc), 80)], len(s.origin+target))
	}
	b.upstreamSaysValid(t, b.ctx)
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestFragmentSurvivesOverHTTPS: over https, Chromium keeps the URL's
// fragment across the login, and the session cookie is Secure with the
// __Host- prefix.
func TestFragmentSurvivesOverHTTPS(t *testing.T) {
	s := newHTTPSSite(t, devProvider(), "", "")
	b := newBrowser(t)
	target := s.origin + "/reports?range=7d#/panel/3"
	if loc := b.loginTo(t, s, "/reports?range=7d#/panel/3", "/reports", true); loc != target {
		t.Fatalf("landed on %s, want %s", loc, target)
	}
	cookies := cdpCall(b, b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.origin + "/"}})
	var found bool
	for _, c := range cookies.Cookies {
		if c.Name == "__Host-implicit_grant" {
			found = c.Secure && c.HTTPOnly
		}
	}
	if !found {
		t.Error("no Secure, HttpOnly __Host-implicit_grant cookie over https")
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestWebSocket: a WebSocket opened in Chromium through the module reaches
// a real WebSocket upstream that checks the bearer on the upgrade, and
// works both ways; without a session the upgrade gets 401 and no tunnel.
func TestWebSocket(t *testing.T) {
	s := newSite(t, devProvider(), 0, "")
	b := newBrowser(t)
	b.loginTo(t, s, "/board", "/board", true)
	wsURL := strings.Replace(s.origin, "http://", "ws://", 1) + "/ws"
	echo := eval[string](b, b.ctx, fmt.Sprintf(`new Promise(function (resolve) {
		var ws = new WebSocket(%q);
		ws.onopen = function () { ws.send("ping"); };
		ws.onmessage = function (e) { resolve(e.data); ws.close(); };
		ws.onerror = function () { resolve("error"); };
	})`, wsURL))
	if echo != "demo-user: ping" {
		t.Errorf("through the module the socket answered %q, want the upstream's echo for demo-user", echo)
	}

	// No session: the upgrade is refused by the module, before any tunnel.
	_, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {s.origin}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Errorf("an upgrade without a session: %v, status %d, want 401 from the module", err, status)
	}
}

// TestErrorRoutePlaceholdersInAttributes: an error route that writes
// {http.implicit_grant.retry_url} and login_url into href attributes, as
// a site owner would, runs no script from a crafted callback link.
func TestErrorRoutePlaceholdersInAttributes(t *testing.T) {
	chromiumPath(t)
	s := newSiteWith(t, devProvider(), 0, "error_pages handle_errors",
		"handle_errors {\n\t\theader Content-Type text/html\n\t\trespond `<!doctype html><p>{http.implicit_grant.message}</p><a id=\"retry\" href=\"{http.implicit_grant.retry_url}\">Try again</a> <a id=\"login\" href='{http.implicit_grant.login_url}'>Sign in</a>`\n\t}")
	b := newBrowser(t)
	payload := `/x"><img src=x onerror="document.title='pwned'">'><b id=injected>`
	b.navigate(b.ctx, s.origin+"/oauth/callback?error=access_denied&return_to="+url.QueryEscape(payload))
	b.waitFor(b.ctx, `!!document.querySelector("#retry")`, "the site's error route")
	if n := eval[int](b, b.ctx, `document.querySelectorAll("img, b, #injected").length`); n != 0 {
		t.Errorf("the crafted return path put %d elements into the error route's page", n)
	}
	if title := eval[string](b, b.ctx, "document.title"); title == "pwned" {
		t.Error("the crafted return path ran script")
	}
	for _, id := range []string{"retry", "login"} {
		href := eval[string](b, b.ctx, fmt.Sprintf(`new URL(document.querySelector("#%s").href).origin`, id))
		if href != s.origin {
			t.Errorf("#%s leads to %q, want this origin", id, href)
		}
	}
}
