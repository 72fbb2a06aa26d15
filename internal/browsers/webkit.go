package browsers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testport"
)

// WebKit is one WebKitGTK browser (the engine behind Safari) driven by
// WebKitWebDriver over the W3C WebDriver protocol: plain JSON over HTTP.
// WebKitGTK has no headless mode, so it runs under its own Xvfb; the driver
// allows one session, so every browser has its own driver.
type WebKit struct {
	t       testing.TB
	driver  string // http://127.0.0.1:port
	session string
}

func StartWebKit(t testing.TB) *WebKit {
	t.Helper()
	driverBin := RequireTool(t, "WebKitWebDriver", "webkit2gtk-driver")
	xvfbBin := RequireTool(t, "Xvfb", "xvfb")

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

	port := testport.Free(t)
	driver := exec.Command(driverBin, fmt.Sprintf("--port=%d", port))
	driver.Env = append(os.Environ(), "DISPLAY=:"+strings.TrimSpace(display))
	startGroup(t, driver)
	b := &WebKit{t: t, driver: fmt.Sprintf("http://127.0.0.1:%d", port)}
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
func (b *WebKit) call(method, path string, body, out any) error {
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

func (b *WebKit) Must(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *WebKit) Navigate(url string) {
	b.t.Helper()
	b.Must(b.call(http.MethodPost, b.session+"/url", map[string]string{"url": url}, nil))
}

// eval runs a script's body ("return …") in the page.
func (b *WebKit) Eval(script string, out any) error {
	return b.call(http.MethodPost, b.session+"/execute/sync", map[string]any{"script": script, "args": []any{}}, out)
}

// WaitFor polls until the script returns true.
func (b *WebKit) WaitFor(script, what string) {
	b.t.Helper()
	waitUntil(b.t, what, func(out any) error { return b.Eval(script, out) }, func(out any) error { return b.Eval("return location.href", out) })
}

// WaitLocation waits until the page is loaded at exactly want.
func (b *WebKit) WaitLocation(want string) {
	b.t.Helper()
	b.WaitFor(fmt.Sprintf("return location.href === %q && document.readyState === 'complete'", want), "location "+want)
}

// Click clicks the element css selects, once it is there.
func (b *WebKit) Click(css string) {
	b.t.Helper()
	b.WaitFor(fmt.Sprintf("return !!document.querySelector(%q)", css), css)
	var el map[string]string
	b.Must(b.call(http.MethodPost, b.session+"/element", map[string]string{"using": "css selector", "value": css}, &el))
	for _, id := range el { // the one key is the W3C element identifier
		b.Must(b.call(http.MethodPost, b.session+"/element/"+id+"/click", map[string]any{}, nil))
	}
}

func (b *WebKit) Text(css string) string {
	b.t.Helper()
	var s string
	b.Must(b.Eval(fmt.Sprintf("var e = document.querySelector(%q); return e ? e.textContent : ''", css), &s))
	return s
}

// cookies are the page's cookies, HttpOnly ones included.
func (b *WebKit) Cookies() []Cookie {
	b.t.Helper()
	var cs []Cookie
	b.Must(b.call(http.MethodGet, b.session+"/cookie", nil, &cs))
	return cs
}
