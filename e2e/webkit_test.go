package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/browsers"
)

// cspReports collects the CSP violation reports browsers send to it; the
// sites of these suites append its address to the module's CSP as a
// report-uri (WebKit's driver gives no access to the console).
type cspReports struct {
	mu      sync.Mutex
	reports []string
	url     string
}

func newCSPReports(t testing.TB) *cspReports {
	c := &cspReports{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		c.mu.Lock()
		c.reports = append(c.reports, string(body))
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL + "/csp"
	return c
}

// siteDirective appends the collector to the CSP of every page the module
// serves (a deferred header replacement, applied as the page goes out).
func (c *cspReports) siteDirective() string {
	return fmt.Sprintf(`header >Content-Security-Policy "frame-ancestors 'none'" "frame-ancestors 'none'; report-uri %s"`, c.url)
}

func (c *cspReports) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reports)
}

func (c *cspReports) none(t testing.TB) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // reports are sent asynchronously
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reports) > 0 {
		t.Errorf("CSP violations reported:\n%s", strings.Join(c.reports, "\n"))
	}
}

// TestWebKitLogin: in WebKit (Safari's engine), a deep URL with a query and
// a fragment comes back exactly after the login; the session cookie is
// HttpOnly, SameSite=Lax, Path=/ and invisible to document.cookie; no page
// reports a CSP violation; logout, then a new login, works.
func TestWebKitLogin(t *testing.T) {
	reports := newCSPReports(t)
	s := newSiteWith(t, devProvider(), 0, "", reports.siteDirective())
	b := loggedInWebKit(t, s.origin+"/app?view=2#/reports/17")
	if got := b.Text("#token-status"); got != "valid" {
		t.Fatalf("the upstream says its token is %q", got)
	}
	c, ok := cookieNamed(b.Cookies(), sessionCookie)
	if !ok {
		t.Fatalf("no %s cookie in WebKit (it drops Secure cookies on http://localhost)", sessionCookie)
	}
	if !c.HTTPOnly || c.Path != "/" || !strings.EqualFold(c.SameSite, "Lax") {
		t.Errorf("session cookie: %+v", c)
	}
	var visible string
	b.Must(b.Eval("return document.cookie", &visible))
	if strings.Contains(visible, "implicit_grant") {
		t.Errorf("document.cookie sees our cookie: %q", visible)
	}

	b.Navigate(s.origin + "/oauth/logout")
	b.WaitFor(`return document.body && document.body.textContent.indexOf("Signed out") >= 0`, "the signed-out page")
	b.Navigate(s.origin + "/again#frag")
	b.WaitLocation(s.origin + "/again#frag") // the provider remembers the consent: no dialog
	reports.none(t)
}

// TestWebKitDenyThenTryAgain: a denial shows the error page; "Try again"
// starts a new login that comes back to the page.
func TestWebKitDenyThenTryAgain(t *testing.T) {
	reports := newCSPReports(t)
	s := newSiteWith(t, devProvider(), 0, "", reports.siteDirective())
	b := browsers.StartWebKit(t)
	b.Navigate(s.origin + "/dash?tab=2")
	b.Click("#deny")
	b.WaitFor(`return document.body && document.body.textContent.indexOf("Sign-in was declined") >= 0`, "the error page")
	b.Click("a.button")
	b.Click("#approve")
	b.WaitLocation(s.origin + "/dash?tab=2")
	reports.none(t)

	// The report channel works: a violation on a module page is reported.
	b.Navigate(s.origin + "/oauth/callback?error=access_denied")
	b.WaitFor(`return document.readyState === "complete"`, "the error page")
	b.Must(b.Eval(`var i = document.createElement("img"); i.src = "http://127.0.0.1:9/x.png"; document.body.appendChild(i); return true`, nil))
	b.WaitFor("return true", "")
	deadline := time.Now().Add(5 * time.Second)
	for reports.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if reports.count() == 0 {
		t.Error("a deliberate CSP violation was not reported: the suite could not see real ones either")
	}
}

// TestWebKitExpiry: when the token expires, the next page load logs in
// again without a dialog and comes back to the same URL, fragment included.
func TestWebKitExpiry(t *testing.T) {
	s := newSite(t, devProvider(), 4*time.Second, "expiry_leeway 1s")
	b := browsers.StartWebKit(t)
	target := s.origin + "/live?x=1#/panel"
	b.Navigate(target)
	b.Click("#approve")
	b.WaitLocation(target)
	before := s.upstream.count()
	time.Sleep(3500 * time.Millisecond) // 4 s token − 1 s leeway
	b.Navigate("about:blank")           // leave, so the same URL is a new page load, not a fragment change
	b.Navigate(target)
	b.WaitLocation(target)
	b.WaitFor(`return !!document.querySelector("#token-status")`, "the upstream's page")
	if s.upstream.count() == before || b.Text("#token-status") != "valid" {
		t.Errorf("after expiry the upstream got %d more requests, token %q", s.upstream.count()-before, b.Text("#token-status"))
	}
}

// TestWebKitFormPostOverHTTPS: a form_post login in WebKit, over https
// (WebKit keeps no Secure cookie on plain http, and the form_post state
// cookie must be SameSite=None; Secure), comes back to the exact URL.
func TestWebKitFormPostOverHTTPS(t *testing.T) {
	reports := newCSPReports(t)
	s := newHTTPSSite(t, devProvider(), "response_mode form_post", reports.siteDirective())
	b := loggedInWebKit(t, s.origin+"/reports?range=7d#/panel/3")
	if b.Text("#token-status") != "valid" {
		t.Errorf("token %q", b.Text("#token-status"))
	}
	reports.none(t)
}

// loggedInWebKit opens target in a new WebKit, approves at the dev
// provider's consent page, and waits for target (fragment included) to
// show the upstream's page.
func loggedInWebKit(t *testing.T, target string) *browsers.WebKit {
	t.Helper()
	b := browsers.StartWebKit(t)
	b.Navigate(target)
	b.Click("#approve")
	b.WaitLocation(target)
	b.WaitFor(`return !!document.querySelector("#token-status")`, "the upstream's page")
	return b
}

// TestWebKitOverHTTPS: over https, WebKit (which sends no
// Upgrade-Insecure-Requests there) keeps the URL's fragment across the
// login, and the session cookie is Secure with the __Host- prefix.
func TestWebKitOverHTTPS(t *testing.T) {
	reports := newCSPReports(t)
	s := newHTTPSSite(t, devProvider(), "", reports.siteDirective())
	b := browsers.StartWebKit(t)
	target := s.origin + "/reports?range=7d#/panel/3"
	b.Navigate(target)
	b.Click("#approve")
	b.WaitLocation(target)
	if c, ok := cookieNamed(b.Cookies(), "__Host-implicit_grant"); !ok || !c.Secure || !c.HTTPOnly || c.Path != "/" {
		t.Errorf("no Secure, HttpOnly __Host-implicit_grant cookie over https: %+v", b.Cookies())
	}
	reports.none(t)
}
