package implicitgrant

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"

	"github.com/implicitgrant/caddy-implicit-grant/devprovider"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
)

// The names the in-process tests use for the shared test helpers.
var (
	newBrowser = testbrowser.New
	bodyOf     = testbrowser.BodyOf
	tokenFrom  = testbrowser.TokenFrom
)

const testSecret = "an-in-process-test-secret-of-more-than-32-bytes"

// newTestHandler provisions a handler: a valid minimal config, changed by
// configure. It is cleaned up with t.
func newTestHandler(t testing.TB, configure func(*Handler)) *Handler {
	t.Helper()
	h := &Handler{
		AuthorizeURL: "https://as.example/authorize",
		ClientID:     "test-" + t.Name(),
		RedirectURI:  "https://app.example/oauth/callback",
		Secret:       testSecret,
		Validation:   &Validation{Mode: validateIntrospect, URL: "https://as.example/introspect"},
	}
	if configure != nil {
		configure(h)
	}
	if h.storage == nil { // a bare context has no Caddy storage (configure may share another handler's)
		h.storage = &certmagic.FileStorage{Path: t.TempDir()}
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	return h
}

// testSite is a handler serving a protected site in front of a recording
// upstream, with the development provider as its authorization server,
// each on its own loopback listener (the site on "localhost", the provider
// on "127.0.0.1": other hosts, so their cookies stay apart).
type testSite struct {
	h           *Handler
	origin      string
	provider    string
	upstream    *upstream
	providerSrv *httptest.Server
	// What the provider's token endpoint was sent, in order.
	tokenMu       sync.Mutex
	tokenRequests []tokenRequest
}

// tokenRequest is one call of the token endpoint.
type tokenRequest struct {
	form          url.Values
	authorization string
}

// tokenCalls returns the token requests of grant_type so far.
func (s *testSite) tokenCalls(grantType string) []tokenRequest {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	var out []tokenRequest
	for _, tr := range s.tokenRequests {
		if tr.form.Get("grant_type") == grantType {
			out = append(out, tr)
		}
	}
	return out
}

// recordTokenRequests records the token endpoint's requests on their way to the provider.
func (s *testSite) recordTokenRequests(p caddyhttp.MiddlewareHandler) caddyhttp.MiddlewareHandler {
	return middlewareFunc(func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
		if r.URL.Path == "/token" {
			body, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(body))
			s.tokenMu.Lock()
			s.tokenRequests = append(s.tokenRequests, tokenRequest{form: form, authorization: r.Header.Get("Authorization")})
			s.tokenMu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		return p.ServeHTTP(w, r, next)
	})
}

type middlewareFunc func(http.ResponseWriter, *http.Request, caddyhttp.Handler) error

func (f middlewareFunc) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return f(w, r, next)
}

// siteOptions change a test site's handler and provider.
type siteOptions struct {
	handler  func(*Handler)
	provider func(*devprovider.Provider)
	// intercept answers a request to the provider in its place when it
	// returns true: a server that misbehaves in one way.
	intercept func(http.ResponseWriter, *http.Request) bool
}

func newTestSite(t testing.TB, opt siteOptions) *testSite {
	t.Helper()
	siteL, providerL := listen(t), listen(t)
	s := &testSite{
		origin:   fmt.Sprintf("http://localhost:%d", siteL.Addr().(*net.TCPAddr).Port),
		provider: "http://" + providerL.Addr().String(),
		upstream: &upstream{},
	}
	p := &devprovider.Provider{Clients: map[string]string{"test-client": s.origin + "/oauth/callback"}}
	if opt.provider != nil {
		opt.provider(p)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	front := s.recordTokenRequests(p)
	if opt.intercept != nil {
		recorded := front
		front = middlewareFunc(func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
			if opt.intercept(w, r) {
				return nil
			}
			return recorded.ServeHTTP(w, r, next)
		})
	}
	s.providerSrv = serve(t, providerL, front, caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(http.StatusNotFound)
		return nil
	}))
	s.h = newTestHandler(t, func(h *Handler) {
		h.AuthorizeURL = s.provider + "/authorize"
		h.ClientID = "test-client"
		h.RedirectURI = s.origin + "/oauth/callback"
		h.Scopes = []string{"profile", "reports:read"}
		h.Validation = &Validation{Mode: validateIntrospect, URL: s.provider + "/introspect"}
		if opt.handler != nil {
			opt.handler(h)
		}
	})
	serve(t, siteL, s.h, s.upstream)
	return s
}

// useOpenID makes h prove tokens with openid at the dev provider its
// authorize_url names (the issuer), in place of the default validation.
func useOpenID(h *Handler) {
	h.OpenID, h.AuthorizeURL, h.Validation = strings.TrimSuffix(h.AuthorizeURL, "/authorize"), "", nil
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// serve runs a Caddy middleware handler on l as Caddy's server would: a
// replacer in the request's context, and a handler error's status written.
func serve(t testing.TB, l net.Listener, h caddyhttp.MiddlewareHandler, next caddyhttp.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		if err := h.ServeHTTP(w, r, next); err != nil {
			status := http.StatusInternalServerError
			if he, ok := errors.AsType[caddyhttp.HandlerError](err); ok {
				status = he.StatusCode
			}
			w.WriteHeader(status)
		}
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// upstream records what each request that reached it carried.
type upstream struct {
	mu   sync.Mutex
	seen []*http.Request
}

// The recorded copy also carries, in X-Seen-User and X-Seen-Email, what the
// {http.auth.user.id} and {http.auth.user.email} placeholders said.
func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	seen := r.Clone(context.Background())
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	for header, placeholder := range map[string]string{"X-Seen-User": "http.auth.user.id", "X-Seen-Email": "http.auth.user.email"} {
		if v, ok := repl.GetString(placeholder); ok {
			seen.Header.Set(header, v)
		}
	}
	u.mu.Lock()
	u.seen = append(u.seen, seen)
	u.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	_, err := fmt.Fprintf(w, "upstream saw %s", r.URL.RequestURI())
	return err
}

func (u *upstream) last(t testing.TB) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("the upstream received no request")
	}
	return u.seen[len(u.seen)-1]
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}
