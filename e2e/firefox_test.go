package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// firefox is one headless Firefox ESR driven over WebDriver BiDi (Firefox
// no longer speaks CDP, and geckodriver is not packaged): a WebSocket that
// carries JSON commands and events. Only what the scenarios need.
type firefox struct {
	t       testing.TB
	conn    *websocket.Conn
	writeMu sync.Mutex
	mu      sync.Mutex
	nextID  int
	waiting map[int]chan bidiAnswer
	console []string // errors logged by pages, CSP violations among them
	context string   // the top-level browsing context
}

type bidiAnswer struct {
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
	Msg    string          `json:"message"`
}

var bidiListening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

func newFirefox(t testing.TB) *firefox {
	t.Helper()
	bin := requireTool(t, "firefox-esr", "firefox-esr")
	profile := t.TempDir()
	// No updates, telemetry or first-run pages on a closed network.
	prefs := `user_pref("app.update.disabledForTesting", true);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("network.captive-portal-service.enabled", false);
`
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(prefs), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-remote", "--profile", profile,
		"--remote-debugging-port=0", "--remote-allow-origins=http://127.0.0.1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	startGroup(t, cmd)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := bidiListening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	var endpoint string
	select {
	case endpoint = <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("Firefox did not open its WebDriver BiDi endpoint")
	}
	conn, _, err := websocket.DefaultDialer.Dial(endpoint+"/session", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &firefox{t: t, conn: conn, waiting: map[int]chan bidiAnswer{}}
	t.Cleanup(func() { conn.Close() })
	go f.read()

	f.call("session.new", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{"acceptInsecureCerts": true}}}, nil)
	f.call("session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}, nil)
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	f.call("browsingContext.getTree", map[string]any{}, &tree)
	if len(tree.Contexts) == 0 {
		t.Fatal("Firefox has no browsing context")
	}
	f.context = tree.Contexts[0].Context
	return f
}

// read delivers answers to their callers and keeps the pages' errors.
func (f *firefox) read() {
	for {
		var msg struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			bidiAnswer
		}
		if err := f.conn.ReadJSON(&msg); err != nil {
			return
		}
		if msg.Method == "log.entryAdded" {
			var entry struct {
				Level string `json:"level"`
				Text  string `json:"text"`
			}
			if json.Unmarshal(msg.Params, &entry) == nil && entry.Level == "error" {
				f.mu.Lock()
				f.console = append(f.console, entry.Text)
				f.mu.Unlock()
			}
			continue
		}
		f.mu.Lock()
		ch := f.waiting[msg.ID]
		delete(f.waiting, msg.ID)
		f.mu.Unlock()
		if ch != nil {
			ch <- msg.bidiAnswer
		}
	}
}

// call sends one command and decodes its result into out.
func (f *firefox) call(method string, params any, out any) {
	f.t.Helper()
	if err := f.try(method, params, out); err != nil {
		f.t.Fatal(err)
	}
}

func (f *firefox) try(method string, params any, out any) error {
	f.mu.Lock()
	f.nextID++
	id := f.nextID
	ch := make(chan bidiAnswer, 1)
	f.waiting[id] = ch
	f.mu.Unlock()
	f.writeMu.Lock()
	err := f.conn.WriteJSON(map[string]any{"id": id, "method": method, "params": params})
	f.writeMu.Unlock()
	if err != nil {
		return err
	}
	select {
	case a := <-ch:
		if a.Error != "" {
			return fmt.Errorf("%s: %s: %s", method, a.Error, a.Msg)
		}
		if out != nil {
			return json.Unmarshal(a.Result, out)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: no answer", method)
	}
}

func (f *firefox) navigate(url string) {
	f.t.Helper()
	f.call("browsingContext.navigate", map[string]any{"context": f.context, "url": url, "wait": "complete"}, nil)
}

// eval evaluates a JavaScript expression in the page; its value goes into out.
func (f *firefox) eval(expr string, out any) error {
	var r struct {
		Type   string `json:"type"`
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
	}
	err := f.try("script.evaluate", map[string]any{"expression": expr, "target": map[string]any{"context": f.context}, "awaitPromise": false}, &r)
	if err != nil {
		return err
	}
	if r.Type != "success" {
		return fmt.Errorf("evaluating %s: %s", expr, r.Type)
	}
	if out != nil && r.Result.Value != nil {
		return json.Unmarshal(r.Result.Value, out)
	}
	return nil
}

func (f *firefox) waitFor(expr, what string) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var ok bool
		if f.eval(expr, &ok) == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	var at string
	_ = f.eval("location.href", &at)
	f.t.Fatalf("timed out waiting for %s; at %s", what, at)
}

func (f *firefox) waitLocation(want string) {
	f.t.Helper()
	f.waitFor(fmt.Sprintf("location.href === %q && document.readyState === 'complete'", want), "location "+want)
}

func (f *firefox) click(css string) {
	f.t.Helper()
	f.waitFor(fmt.Sprintf("!!document.querySelector(%q)", css), css)
	if err := f.eval(fmt.Sprintf("document.querySelector(%q).click(), true", css), nil); err != nil {
		f.t.Fatal(err)
	}
}

type bidiCookie struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	Secure   bool   `json:"secure"`
	HTTPOnly bool   `json:"httpOnly"`
	SameSite string `json:"sameSite"`
}

func (f *firefox) cookies() []bidiCookie {
	f.t.Helper()
	var r struct {
		Cookies []bidiCookie `json:"cookies"`
	}
	f.call("storage.getCookies", map[string]any{}, &r)
	return r.Cookies
}

func (f *firefox) consoleErrors() []string {
	time.Sleep(200 * time.Millisecond) // events arrive after the page
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.console...)
}

// TestFirefoxLogin: in Firefox, a deep URL with a query and a fragment
// comes back exactly after the login; the session cookie is HttpOnly,
// SameSite=Lax, Path=/ and invisible to document.cookie; no page logs an
// error or a CSP violation (the favicon request once did); logout, then a
// new login, works.
func TestFirefoxLogin(t *testing.T) {
	s := newSite(t, devProvider(), 0, "")
	f := newFirefox(t)
	target := s.origin + "/app?view=2#/reports/17"
	f.navigate(target)
	f.click("#approve")
	f.waitLocation(target)
	f.waitFor(`document.querySelector("#token-status") && document.querySelector("#token-status").textContent === "valid"`, "the upstream's page with a valid token")
	var found bool
	for _, c := range f.cookies() {
		if c.Name == sessionCookie {
			found = true
			if !c.HTTPOnly || c.Path != "/" || !strings.EqualFold(c.SameSite, "lax") {
				t.Errorf("session cookie: %+v", c)
			}
		}
	}
	if !found {
		t.Fatalf("no %s cookie in Firefox", sessionCookie)
	}
	var visible string
	if err := f.eval("document.cookie", &visible); err != nil || strings.Contains(visible, "implicit_grant") {
		t.Errorf("document.cookie: %q %v", visible, err)
	}
	f.navigate(s.origin + "/oauth/logout")
	f.waitFor(`document.body && document.body.textContent.indexOf("Signed out") >= 0`, "the signed-out page")
	f.navigate(s.origin + "/again#frag")
	f.waitLocation(s.origin + "/again#frag")
	if errs := f.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestFirefoxDenyThenTryAgain: a denial shows the error page; "Try again"
// starts a new login that comes back to the page.
func TestFirefoxDenyThenTryAgain(t *testing.T) {
	s := newSite(t, devProvider(), 0, "")
	f := newFirefox(t)
	f.navigate(s.origin + "/dash?tab=2")
	f.click("#deny")
	f.waitFor(`document.body && document.body.textContent.indexOf("Sign-in was declined") >= 0`, "the error page")
	f.click("a.button")
	f.click("#approve")
	f.waitLocation(s.origin + "/dash?tab=2")
	if errs := f.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestFirefoxExpiry: when the token expires the next page load logs in
// again without a dialog, fragment included.
func TestFirefoxExpiry(t *testing.T) {
	s := newSite(t, devProvider(), 4*time.Second, "expiry_leeway 1s")
	f := newFirefox(t)
	target := s.origin + "/live?x=1#/panel"
	f.navigate(target)
	f.click("#approve")
	f.waitLocation(target)
	before := s.upstream.count()
	time.Sleep(3500 * time.Millisecond)
	f.navigate("about:blank")
	f.navigate(target)
	f.waitLocation(target)
	if s.upstream.count() == before {
		t.Error("after expiry the page was not served again")
	}
}

// TestFirefoxOverHTTPS: over https the fragment survives and the cookie is
// Secure with the __Host- prefix.
func TestFirefoxOverHTTPS(t *testing.T) {
	tls := newHTTPSSite(t, devProvider(), "")
	f := newFirefox(t)
	target := tls.origin + "/reports?range=7d#/panel/3"
	f.navigate(target)
	f.click("#approve")
	f.waitLocation(target)
	var secure bool
	for _, c := range f.cookies() {
		if c.Name == "__Host-implicit_grant" {
			secure = c.Secure && c.HTTPOnly
		}
	}
	if !secure {
		t.Errorf("no Secure, HttpOnly __Host-implicit_grant cookie over https")
	}
	if errs := f.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
