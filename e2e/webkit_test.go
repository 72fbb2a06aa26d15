package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
)

// webkit is one WebKitGTK browser (the engine behind Safari) driven by
// WebKitWebDriver over the W3C WebDriver protocol: plain JSON over HTTP.
// WebKitGTK has no headless mode, so it runs under its own Xvfb; the driver
// allows one session, so every browser has its own driver.
type webkit struct {
	t       testing.TB
	driver  string // http://127.0.0.1:port
	session string
}

// requireTool finds a program the engine suites need; without it they
// skip, or fail when IMPLICIT_GRANT_REQUIRE_ALL=1 (CI).
func requireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("IMPLICIT_GRANT_REQUIRE_ALL") == "1" {
		t.Fatalf("%s is not installed (apt-get install %s); IMPLICIT_GRANT_REQUIRE_ALL=1 forbids skipping", name, pkg)
	}
	t.Skipf("%s not installed", name)
	return ""
}

// startGroup runs cmd in a process group of its own, ended with t: the
// browser's helpers must not outlive the test.
func startGroup(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
}

func newWebKit(t testing.TB) *webkit {
	t.Helper()
	driverBin := requireTool(t, "WebKitWebDriver", "webkit2gtk-driver")
	xvfbBin := requireTool(t, "Xvfb", "xvfb")

	// Xvfb picks a free display and writes its number to fd 3.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	xvfb := exec.Command(xvfbBin, "-displayfd", "3", "-screen", "0", "1280x1024x24", "-nolisten", "tcp")
	xvfb.ExtraFiles = []*os.File{w}
	startGroup(t, xvfb)
	w.Close()
	display, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil {
		t.Fatalf("Xvfb gave no display: %v", err)
	}

	port := testcaddy.FreePort(t)
	driver := exec.Command(driverBin, fmt.Sprintf("--port=%d", port))
	driver.Env = append(os.Environ(), "DISPLAY=:"+strings.TrimSpace(display))
	startGroup(t, driver)
	b := &webkit{t: t, driver: fmt.Sprintf("http://127.0.0.1:%d", port)}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = b.call(http.MethodPost, "/session", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
			"acceptInsecureCerts":      true,
			"webkitgtk:browserOptions": map[string]any{"args": []string{"--automation"}},
		}}}, &created)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("starting a WebKit session: %v", err)
	}
	b.session = "/session/" + created.SessionID
	t.Cleanup(func() { _ = b.call(http.MethodDelete, b.session, nil, nil) })
	return b
}

// call sends one WebDriver command and decodes its value into out.
func (b *webkit) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, b.driver+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var answer struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, answer.Value)
	}
	if out != nil {
		return json.Unmarshal(answer.Value, out)
	}
	return nil
}

func (b *webkit) must(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *webkit) navigate(url string) {
	b.t.Helper()
	b.must(b.call(http.MethodPost, b.session+"/url", map[string]string{"url": url}, nil))
}

// eval runs a script's body ("return …") in the page.
func (b *webkit) eval(script string, out any) error {
	return b.call(http.MethodPost, b.session+"/execute/sync", map[string]any{"script": script, "args": []any{}}, out)
}

// waitFor polls until the script returns true.
func (b *webkit) waitFor(script, what string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var ok bool
		if b.eval(script, &ok) == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	var at string
	_ = b.eval("return location.href", &at)
	b.t.Fatalf("timed out waiting for %s; at %s", what, at)
}

// waitLocation waits until the page is loaded at exactly want.
func (b *webkit) waitLocation(want string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("return location.href === %q && document.readyState === 'complete'", want), "location "+want)
}

// click clicks the element css selects, once it is there.
func (b *webkit) click(css string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("return !!document.querySelector(%q)", css), css)
	var el map[string]string
	b.must(b.call(http.MethodPost, b.session+"/element", map[string]string{"using": "css selector", "value": css}, &el))
	for _, id := range el { // the one key is the W3C element identifier
		b.must(b.call(http.MethodPost, b.session+"/element/"+id+"/click", map[string]any{}, nil))
	}
}

func (b *webkit) text(css string) string {
	b.t.Helper()
	var s string
	b.must(b.eval(fmt.Sprintf("var e = document.querySelector(%q); return e ? e.textContent : ''", css), &s))
	return s
}

type wdCookie struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	Secure   bool   `json:"secure"`
	HTTPOnly bool   `json:"httpOnly"`
	SameSite string `json:"sameSite"`
}

// cookies are the page's cookies, HttpOnly ones included.
func (b *webkit) cookies() []wdCookie {
	b.t.Helper()
	var cs []wdCookie
	b.must(b.call(http.MethodGet, b.session+"/cookie", nil, &cs))
	return cs
}

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
	b := newWebKit(t)
	target := s.origin + "/app?view=2#/reports/17"

	b.navigate(target)
	b.click("#approve")
	b.waitLocation(target)
	b.waitFor(`return !!document.querySelector("#token-status")`, "the upstream's page")
	if got := b.text("#token-status"); got != "valid" {
		t.Fatalf("the upstream says its token is %q", got)
	}
	var found bool
	for _, c := range b.cookies() {
		if c.Name == sessionCookie {
			found = true
			if !c.HTTPOnly || c.Path != "/" || !strings.EqualFold(c.SameSite, "Lax") {
				t.Errorf("session cookie: %+v", c)
			}
		}
	}
	if !found {
		t.Fatalf("no %s cookie in WebKit (it drops Secure cookies on http://localhost)", sessionCookie)
	}
	var visible string
	b.must(b.eval("return document.cookie", &visible))
	if strings.Contains(visible, "implicit_grant") {
		t.Errorf("document.cookie sees our cookie: %q", visible)
	}

	b.navigate(s.origin + "/oauth/logout")
	b.waitFor(`return document.body && document.body.textContent.indexOf("Signed out") >= 0`, "the signed-out page")
	b.navigate(s.origin + "/again#frag")
	b.waitLocation(s.origin + "/again#frag") // the provider remembers the consent: no dialog
	reports.none(t)
}

// TestWebKitDenyThenTryAgain: a denial shows the error page; "Try again"
// starts a new login that comes back to the page.
func TestWebKitDenyThenTryAgain(t *testing.T) {
	reports := newCSPReports(t)
	s := newSiteWith(t, devProvider(), 0, "", reports.siteDirective())
	b := newWebKit(t)
	b.navigate(s.origin + "/dash?tab=2")
	b.click("#deny")
	b.waitFor(`return document.body && document.body.textContent.indexOf("Sign-in was declined") >= 0`, "the error page")
	b.click("a.button")
	b.click("#approve")
	b.waitLocation(s.origin + "/dash?tab=2")
	reports.none(t)

	// The report channel works: a violation on a module page is reported.
	b.navigate(s.origin + "/oauth/callback?error=access_denied")
	b.waitFor(`return document.readyState === "complete"`, "the error page")
	b.must(b.eval(`var i = document.createElement("img"); i.src = "http://127.0.0.1:9/x.png"; document.body.appendChild(i); return true`, nil))
	b.waitFor("return true", "")
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
	b := newWebKit(t)
	target := s.origin + "/live?x=1#/panel"
	b.navigate(target)
	b.click("#approve")
	b.waitLocation(target)
	before := s.upstream.count()
	time.Sleep(3500 * time.Millisecond) // 4 s token − 1 s leeway
	b.navigate("about:blank")           // leave, so the same URL is a new page load, not a fragment change
	b.navigate(target)
	b.waitLocation(target)
	b.waitFor(`return !!document.querySelector("#token-status")`, "the upstream's page")
	if s.upstream.count() == before || b.text("#token-status") != "valid" {
		t.Errorf("after expiry the upstream got %d more requests, token %q", s.upstream.count()-before, b.text("#token-status"))
	}
}

// TestWebKitOverHTTPS: over https, WebKit (which sends no
// Upgrade-Insecure-Requests there) keeps the URL's fragment across the
// login, and the session cookie is Secure with the __Host- prefix.
func TestWebKitOverHTTPS(t *testing.T) {
	reports := newCSPReports(t)
	s := newHTTPSSite(t, devProvider(), reports.siteDirective())
	b := newWebKit(t)
	target := s.origin + "/reports?range=7d#/panel/3"
	b.navigate(target)
	b.click("#approve")
	b.waitLocation(target)
	var found bool
	for _, c := range b.cookies() {
		if c.Name == "__Host-implicit_grant" {
			found = c.Secure && c.HTTPOnly && c.Path == "/"
		}
	}
	if !found {
		t.Errorf("no Secure, HttpOnly __Host-implicit_grant cookie over https: %+v", b.cookies())
	}
	reports.none(t)
}
