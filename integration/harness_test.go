// Package integration runs a real Caddy binary with implicit_grant and the
// development provider built in, and plays the browser's part with an HTTP
// client: every request crosses real sockets and Caddy's real handler chain.
package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
)

func TestMain(m *testing.M) { testcaddy.Main(m, "../cmd/caddy") }

// recorder is the upstream: it records what each request carried.
type recorder struct {
	mu   sync.Mutex
	seen []*http.Request
	srv  *http.Server
	port int
}

func newRecorder(t testing.TB) *recorder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{port: l.Addr().(*net.TCPAddr).Port}
	rec.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.seen = append(rec.seen, r.Clone(r.Context()))
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "upstream saw %s", r.URL.RequestURI())
	})}
	go rec.srv.Serve(l)
	t.Cleanup(func() { rec.srv.Close() })
	return rec
}

func (rec *recorder) last(t testing.TB) *http.Request {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) == 0 {
		t.Fatal("the upstream received no request")
	}
	return rec.seen[len(rec.seen)-1]
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.seen)
}

// site is a running setup: Caddy serving the protected site (in front of a
// recorder) and the dev provider.
type site struct {
	caddy    *testcaddy.Proc
	upstream *recorder
	origin   string // the protected site, http://localhost:port
	provider string // the dev provider, http://127.0.0.1:port
	secret   string
}

// siteOptions changes the generated Caddyfile.
type siteOptions struct {
	extra         string // more implicit_grant subdirectives
	providerExtra string // more implicit_grant_dev_provider subdirectives
	siteExtra     string // more directives in the protected site (e.g. handle_errors)
	globals       string // more global options (e.g. debug)
	otherSite     string // if set, the body of a second site, http://b.example, on the protected site's port
}

const testSecret = "an-integration-test-secret-of-more-than-32-bytes"

func newSite(t testing.TB, opt siteOptions) *site {
	t.Helper()
	s := &site{upstream: newRecorder(t), secret: testSecret}
	sitePort, providerPort := testcaddy.FreePort(t), testcaddy.FreePort(t)
	s.origin = fmt.Sprintf("http://localhost:%d", sitePort)
	s.provider = fmt.Sprintf("http://127.0.0.1:%d", providerPort) // another host: its cookies stay its own
	s.caddy = testcaddy.Start(t, opt.globals, s.caddyfile(sitePort, providerPort, opt), "", "IG_TEST_SECRET="+testSecret)
	return s
}

func (s *site) caddyfile(sitePort, providerPort int, opt siteOptions) string {
	return fmt.Sprintf(`
http://localhost:%[1]d {
	log {
		level DEBUG
	}
	implicit_grant {
		authorize_url %[2]s/authorize
		client_id     test-client
		redirect_uri  http://localhost:%[1]d/oauth/callback
		scope         profile reports:read
		secret        {env.IG_TEST_SECRET}
		%[4]s
	}
	reverse_proxy 127.0.0.1:%[3]d
	%[6]s
}

http://127.0.0.1:%[5]d {
	implicit_grant_dev_provider {
		client test-client http://localhost:%[1]d/oauth/callback
		%[7]s
	}
}
%[8]s
`, sitePort, s.provider, s.upstream.port, opt.extra, providerPort, opt.siteExtra, opt.providerExtra, otherSite(sitePort, opt.otherSite))
}

func otherSite(port int, body string) string {
	if body == "" {
		return ""
	}
	return fmt.Sprintf("http://b.example:%d {\n\t%s\n}\n", port, body)
}

// browser plays a browser's part: cookies, navigation headers, and the
// relay script's POST. It follows no redirect by itself, so every step
// can be checked.
type browser struct {
	t      testing.TB
	client *http.Client
}

func newBrowser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// navigate is a top-level page load.
func (b *browser) navigate(rawURL string) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Site", "none")
	return b.do(req)
}

func (b *browser) do(req *http.Request) *http.Response {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

func bodyOf(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return string(b)
}

// relayPost is what the relay script sends: the fragment, same-origin.
func (b *browser) relayPost(callback, fragment, origin string) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, callback, strings.NewReader(fragment))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "cors")
	return b.do(req)
}

// replayPost sends a relay POST from a fresh client that holds copies of
// cookies (a hostile client keeping what a browser would have dropped).
func replayPost(t testing.TB, callback, fragment, origin string, cookies []*http.Cookie) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, callback, strings.NewReader(fragment))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	for _, c := range cookies {
		if c.Name != "__Host-implicit_grant" {
			req.AddCookie(c)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

var requestIDField = regexp.MustCompile(`name="request" value="([^"]+)"`)

// authorizeAt goes to the provider's consent page (following the
// protected site's redirect) and decides. It returns the callback URL the
// provider sent the browser to, fragment included.
func (b *browser) authorizeAt(authorizeURL string, approve bool) *url.URL {
	b.t.Helper()
	consent := b.navigate(authorizeURL)
	if consent.StatusCode != http.StatusOK {
		if consent.StatusCode == http.StatusSeeOther { // remembered consent: no dialog
			loc, _ := url.Parse(consent.Header.Get("Location"))
			return loc
		}
		b.t.Fatalf("consent page: %d %s", consent.StatusCode, bodyOf(consent))
	}
	m := requestIDField.FindStringSubmatch(bodyOf(consent))
	if m == nil {
		b.t.Fatalf("no consent form on the provider's page %s: %d %v\n%s", authorizeURL, consent.StatusCode, consent.Header, bodyOf(consent))
	}
	decision := "deny"
	if approve {
		decision = "approve"
	}
	au, _ := url.Parse(authorizeURL)
	form := url.Values{"request": {m[1]}, "decision": {decision}, "user": {"alice"}}
	req, _ := http.NewRequest(http.MethodPost, au.Scheme+"://"+au.Host+"/authorize/decision", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp := b.do(req)
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("decision: %d %s", resp.StatusCode, bodyOf(resp))
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

// finishAtCallback does what the browser and relay script do on the
// callback: load the page (the fragment stays in the browser), then POST
// the fragment. It returns the relay answer's status and location.
func (b *browser) finishAtCallback(callback *url.URL) (int, string) {
	b.t.Helper()
	fragment := callback.EscapedFragment()
	page := callback.Scheme + "://" + callback.Host + callback.Path
	if callback.RawQuery != "" {
		page += "?" + callback.RawQuery
	}
	relayPage := b.navigate(page)
	if callback.RawQuery != "" { // an error in the query: the server answers with its page
		return relayPage.StatusCode, ""
	}
	if relayPage.StatusCode != http.StatusOK || !strings.Contains(bodyOf(relayPage), "<noscript>") {
		b.t.Fatalf("relay page: %d %s", relayPage.StatusCode, bodyOf(relayPage))
	}
	resp := b.relayPost(callback.Scheme+"://"+callback.Host+callback.Path, fragment, callback.Scheme+"://"+callback.Host)
	var answer struct {
		Location string `json:"location"`
	}
	if err := json.Unmarshal([]byte(bodyOf(resp)), &answer); err != nil {
		b.t.Fatalf("relay answer is not JSON: %d %q", resp.StatusCode, bodyOf(resp))
	}
	return resp.StatusCode, answer.Location
}

// login runs a whole login from a navigation to target, and returns the
// response of the final navigation back to where the relay said to go.
func (b *browser) login(origin, target string) (*http.Response, string) {
	b.t.Helper()
	first := b.navigate(origin + target)
	if first.StatusCode != http.StatusFound {
		b.t.Fatalf("first visit to %s: want 302 to authorize, got %d", target, first.StatusCode)
	}
	callback := b.authorizeAt(first.Header.Get("Location"), true)
	status, next := b.finishAtCallback(callback)
	if status != http.StatusOK {
		b.t.Fatalf("relay post: want 200, got %d", status)
	}
	return b.navigate(origin + next), next
}

// tokenFrom returns the access token in a callback URL's fragment.
func tokenFrom(t testing.TB, callback *url.URL) string {
	t.Helper()
	v, err := url.ParseQuery(callback.Fragment)
	if err != nil || v.Get("access_token") == "" {
		t.Fatalf("no access token in %q", callback.Fragment)
	}
	return v.Get("access_token")
}
