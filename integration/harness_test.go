// Package integration runs a real Caddy binary with implicit_grant and the
// development provider built in, and plays the browser's part with an HTTP
// client: every request crosses real sockets and Caddy's real handler chain.
package integration

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
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

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.seen)
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
	proxyExtra    string // inside the reverse_proxy block (e.g. header_up)
	secret        string // the secret directive's values; default {env.IG_TEST_SECRET}
}

func cmpOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

const (
	testSecret = "an-integration-test-secret-of-more-than-32-bytes"
	newSecret  = "a-rotated-in-integration-secret-of-over-32-bytes"
)

func newSite(t testing.TB, opt siteOptions) *site {
	t.Helper()
	s := &site{upstream: newRecorder(t), secret: testSecret}
	sitePort, providerPort := testcaddy.FreePort(t), testcaddy.FreePort(t)
	s.origin = fmt.Sprintf("http://localhost:%d", sitePort)
	s.provider = fmt.Sprintf("http://127.0.0.1:%d", providerPort) // another host: its cookies stay its own
	s.caddy = testcaddy.Start(t, opt.globals, s.caddyfile(sitePort, providerPort, opt), "", "IG_TEST_SECRET="+testSecret, "IG_NEW_SECRET="+newSecret)
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
		secret        %[10]s
		validate      introspect %[2]s/introspect
		%[4]s
	}
	reverse_proxy 127.0.0.1:%[3]d {
		%[9]s
	}
	%[6]s
}

http://127.0.0.1:%[5]d {
	implicit_grant_dev_provider {
		client test-client http://localhost:%[1]d/oauth/callback
		%[7]s
	}
}
%[8]s
`, sitePort, s.provider, s.upstream.port, opt.extra, providerPort, opt.siteExtra, opt.providerExtra, otherSite(sitePort, opt.otherSite), opt.proxyExtra, cmpOr(opt.secret, "{env.IG_TEST_SECRET}"))
}

func otherSite(port int, body string) string {
	if body == "" {
		return ""
	}
	return fmt.Sprintf("http://b.example:%d {\n\t%s\n}\n", port, body)
}

// The names these suites use for the shared test helpers.
var (
	newBrowser       = testbrowser.New
	bodyOf           = testbrowser.BodyOf
	tokenFrom        = testbrowser.TokenFrom
	sessionSetCookie = testbrowser.SessionSetCookie
	assertNoSession  = testbrowser.AssertNoSession
)

type browser = testbrowser.Browser

const sessionCookie = testbrowser.SessionCookie
