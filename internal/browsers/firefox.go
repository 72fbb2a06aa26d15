package browsers

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Firefox is one headless Firefox ESR driven over WebDriver BiDi (Firefox
// no longer speaks CDP, and geckodriver is not packaged): a WebSocket that
// carries JSON commands and events. Only what the scenarios need.
type Firefox struct {
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

func StartFirefox(t testing.TB) *Firefox {
	t.Helper()
	bin := RequireTool(t, "firefox-esr", "firefox-esr")
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
	f := &Firefox{t: t, conn: conn, waiting: map[int]chan bidiAnswer{}}
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
func (f *Firefox) read() {
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
func (f *Firefox) call(method string, params any, out any) {
	f.t.Helper()
	if err := f.try(method, params, out); err != nil {
		f.t.Fatal(err)
	}
}

func (f *Firefox) try(method string, params any, out any) error {
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

// Navigate loads url and waits for the page.
func (f *Firefox) Navigate(url string) {
	f.t.Helper()
	f.call("browsingContext.navigate", map[string]any{"context": f.context, "url": url, "wait": "complete"}, nil)
}

// eval evaluates a JavaScript expression in the page; its value goes into out.
func (f *Firefox) Eval(expr string, out any) error {
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

// WaitFor polls until the expression is true.
func (f *Firefox) WaitFor(expr, what string) {
	f.t.Helper()
	waitUntil(f.t, what, func(out any) error { return f.Eval(expr, out) }, func(out any) error { return f.Eval("location.href", out) })
}

// WaitLocation waits until the page is loaded at exactly want.
func (f *Firefox) WaitLocation(want string) {
	f.t.Helper()
	f.WaitFor(fmt.Sprintf("location.href === %q && document.readyState === 'complete'", want), "location "+want)
}

// Click clicks the element css selects, once it is there.
func (f *Firefox) Click(css string) {
	f.t.Helper()
	f.WaitFor(fmt.Sprintf("!!document.querySelector(%q)", css), css)
	if err := f.Eval(fmt.Sprintf("document.querySelector(%q).click(), true", css), nil); err != nil {
		f.t.Fatal(err)
	}
}

// Cookie is a cookie as a browser keeps it, HttpOnly ones included.
type Cookie struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	Secure   bool   `json:"secure"`
	HTTPOnly bool   `json:"httpOnly"`
	SameSite string `json:"sameSite"`
}

func (f *Firefox) Cookies() []Cookie {
	f.t.Helper()
	var r struct {
		Cookies []Cookie `json:"cookies"`
	}
	f.call("storage.getCookies", map[string]any{}, &r)
	return r.Cookies
}

func (f *Firefox) ConsoleErrors() []string {
	time.Sleep(200 * time.Millisecond) // events arrive after the page
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.console...)
}
