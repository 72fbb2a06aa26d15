package implicitgrant

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// provisioned returns a handler ready to serve, and a session cookie value
// for a session whose token is "tok".
func provisioned(t testing.TB) (*Handler, string) {
	t.Helper()
	h := &Handler{
		AuthorizeURL: "https://as.example/authorize",
		ClientID:     "bench-" + t.Name(),
		RedirectURI:  "https://app.example/oauth/callback",
		Secret:       strings.Repeat("k", 32),
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	value, err := h.store.Put(t.Context(), tokencache.Session{Authorization: "Bearer tok", Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return h, value
}

// protectedRequest is a browser request with our cookie among others and a
// forged Authorization; reset puts its headers back without allocating.
type protectedRequest struct {
	req     *http.Request
	cookie  []string
	auth    []string
	cookies string
}

func newProtectedRequest(session string) *protectedRequest {
	p := &protectedRequest{
		req:     httptest.NewRequest(http.MethodGet, "https://app.example/reports?x=1", nil),
		cookie:  make([]string, 1),
		auth:    make([]string, 1),
		cookies: "theme=dark; " + DefaultCookieName + "=" + session + "; lang=en",
	}
	p.reset()
	return p
}

func (p *protectedRequest) reset() {
	p.cookie[0], p.auth[0] = p.cookies, "Bearer forged"
	p.req.Header["Cookie"], p.req.Header["Authorization"] = p.cookie, p.auth
}

var noopNext = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

func TestProtectedRequestInjectsTokenAndStripsCookie(t *testing.T) {
	h, session := provisioned(t)
	p := newProtectedRequest(session)
	var got *http.Request
	next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error { got = r; return nil })
	if err := h.ServeHTTP(httptest.NewRecorder(), p.req, next); err != nil {
		t.Fatal(err)
	}
	if got == nil {
		t.Fatal("next was not called")
	}
	if a := got.Header.Values("Authorization"); len(a) != 1 || a[0] != "Bearer tok" {
		t.Errorf("Authorization = %q", a)
	}
	if c := got.Header.Get("Cookie"); c != "theme=dark; lang=en" {
		t.Errorf("Cookie = %q", c)
	}
}

// TestProtectedRequestAllocations holds the hot path to its budget: at
// most 3 allocations per request in the module (measured: 1, the rebuilt
// Cookie header).
func TestProtectedRequestAllocations(t *testing.T) {
	h, session := provisioned(t)
	p := newProtectedRequest(session)
	w := httptest.NewRecorder()
	allocs := testing.AllocsPerRun(1000, func() {
		p.reset()
		_ = h.ServeHTTP(w, p.req, noopNext)
	})
	if allocs > 3 {
		t.Errorf("%.1f allocations per protected request, budget 3", allocs)
	}
}

func BenchmarkProtectedRequest(b *testing.B) {
	h, session := provisioned(b)
	p := newProtectedRequest(session)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		p.reset()
		if err := h.ServeHTTP(w, p.req, noopNext); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProtectedRequestParallel(b *testing.B) {
	h, session := provisioned(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		p := newProtectedRequest(session)
		w := httptest.NewRecorder()
		for pb.Next() {
			p.reset()
			if err := h.ServeHTTP(w, p.req, noopNext); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestRelayOriginCheck(t *testing.T) {
	h := &Handler{
		AuthorizeURL: "https://as.example/authorize",
		ClientID:     "origin-test",
		RedirectURI:  "https://App.Example:443/oauth/callback",
		Secret:       strings.Repeat("k", 32),
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	defer cancel()
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Cleanup()
	for origin, want := range map[string]bool{
		"https://app.example":       true, // browsers omit the default port and lower-case the host
		"https://app.example:443":   true,
		"https://APP.example":       true,
		"http://app.example":        false,
		"https://app.example:8443":  false,
		"https://app.example.evil":  false,
		"https://evil.example":      false,
		"null":                      false,
		"https://app.example@evil/": false,
	} {
		r := httptest.NewRequest(http.MethodPost, "https://app.example/oauth/callback", nil)
		r.Header.Set("Origin", origin)
		if got := h.sameOrigin(r); got != want {
			t.Errorf("Origin %q: same origin = %v, want %v", origin, got, want)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "https://app.example/oauth/callback", nil)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	if h.sameOrigin(r) {
		t.Error("a cross-site request without Origin was accepted")
	}
}

// TestStoreSharedAcrossConfigs: a second config generation (a reload) gets
// the same session store, and the store is released only when the last
// generation is cleaned up.
func TestStoreSharedAcrossConfigs(t *testing.T) {
	newGen := func() *Handler {
		h := &Handler{AuthorizeURL: "https://as.example/authorize", ClientID: "reload-test", RedirectURI: "https://app.example/cb", Secret: strings.Repeat("r", 32)}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
		t.Cleanup(cancel)
		if err := h.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		return h
	}
	old := newGen()
	value, _ := old.store.Put(t.Context(), tokencache.Session{Authorization: "Bearer kept", Expires: time.Now().Add(time.Hour)})
	fresh := newGen()
	if refs, _ := stores.References(old.storePoolKey); refs != 2 {
		t.Fatalf("%d users of the store, want 2", refs)
	}
	if err := old.Cleanup(); err != nil { // the old config goes away after the reload
		t.Fatal(err)
	}
	if s, ok, _ := fresh.store.Get(t.Context(), value); !ok || s.Authorization != "Bearer kept" {
		t.Fatal("the session did not survive the reload")
	}
	if err := fresh.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, loaded := stores.References(fresh.storePoolKey); loaded {
		t.Error("the store is still pooled after its last user was cleaned up")
	}
}
