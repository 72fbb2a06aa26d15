package implicitgrant

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// testSubject is a 36-byte subject, as a UUID is.
const testSubject = "4b3f8d2e-9c1a-4f6b-8e2d-7a5c3b1e9f04"

// provisioned returns a handler ready to serve, and a session cookie value
// for a session whose token is "tok", with an identity.
func provisioned(t testing.TB) (*Handler, string) {
	t.Helper()
	h := newTestHandler(t, nil)
	id := authserver.Identity{Subject: testSubject, Claims: map[string]any{"email": "alice@corp.example", "name": "Alice"}}
	value, err := h.store.Put(t.Context(), tokencache.Session{Authorization: "Bearer tok", Expires: time.Now().Add(time.Hour), Identity: packIdentity(id, DefaultClaims, time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	return h, value
}

// protectedRequest is a browser request with our cookie among others and a
// forged Authorization; reset puts its headers back without allocating,
// and gives it a new replacer as Caddy's server does for every request.
type protectedRequest struct {
	req     *http.Request
	ctx     *replacerContext
	cookie  []string
	auth    []string
	cookies string
	bearer  string // the request's own Authorization
}

// replacerContext is a request context whose replacer reset can swap.
type replacerContext struct {
	context.Context
	repl *caddy.Replacer
}

func (c *replacerContext) Value(key any) any {
	if key == caddy.ReplacerCtxKey {
		return c.repl
	}
	return c.Context.Value(key)
}

func newProtectedRequest(session string) *protectedRequest {
	p := &protectedRequest{
		ctx:     &replacerContext{Context: context.Background()},
		cookie:  make([]string, 1),
		auth:    make([]string, 1),
		cookies: "theme=dark; " + DefaultCookieName + "=" + session + "; lang=en",
		bearer:  "Bearer forged",
	}
	p.req = httptest.NewRequestWithContext(p.ctx, http.MethodGet, "https://app.example/reports?x=1", nil)
	p.reset()
	return p
}

func (p *protectedRequest) reset() {
	p.cookie[0], p.auth[0] = p.cookies, p.bearer
	p.req.Header["Cookie"], p.req.Header["Authorization"] = p.cookie, p.auth
	p.ctx.repl = newRequestReplacer()
}

// newRequestReplacer makes the replacer Caddy's server gives a request:
// the standard one, and its HTTP variables as one more provider.
func newRequestReplacer() *caddy.Replacer {
	repl := caddy.NewReplacer()
	repl.Map(func(string) (any, bool) { return nil, false })
	return repl
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

// TestProtectedRequestAllocations holds the hot path, identity on, to its
// budget: at most 3 allocations per request beyond the replacer Caddy's
// server makes for every request anyway (measured: 2, the rebuilt Cookie
// header and the placeholder provider for the user).
func TestProtectedRequestAllocations(t *testing.T) {
	h, session := provisioned(t)
	p := newProtectedRequest(session)
	w := httptest.NewRecorder()
	setup := testing.AllocsPerRun(1000, p.reset)
	total := testing.AllocsPerRun(1000, func() {
		p.reset()
		_ = h.ServeHTTP(w, p.req, noopNext)
	})
	if module := total - setup; module > 3 {
		t.Errorf("%.1f allocations per protected request, budget 3", module)
	}
	// The placeholders are really there.
	p.reset()
	_ = h.ServeHTTP(w, p.req, noopNext)
	if id, _ := p.ctx.repl.GetString("http.auth.user.id"); id != testSubject {
		t.Errorf("{http.auth.user.id} = %q", id)
	}
	if email, _ := p.ctx.repl.GetString("http.auth.user.email"); email != "alice@corp.example" {
		t.Errorf("{http.auth.user.email} = %q", email)
	}
}

// BenchmarkRequestReplacer is what Caddy's server spends per request on the
// replacer: subtract it from BenchmarkProtectedRequest for the module's own cost.
func BenchmarkRequestReplacer(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = newRequestReplacer()
	}
}

func BenchmarkProtectedRequest(b *testing.B) {
	h, session := provisioned(b)
	benchServe(b, h, session)
}

// BenchmarkProtectedRequestCodeFlow: a code-flow session (a refresh
// token, none due) costs what an implicit one does.
func BenchmarkProtectedRequestCodeFlow(b *testing.B) {
	h := newTestHandler(b, func(h *Handler) {
		h.ResponseType, h.TokenURL, h.Validation = ResponseTypeCode, "https://as.example/token", nil
	})
	id := authserver.Identity{Subject: testSubject, Claims: map[string]any{"email": "alice@corp.example", "name": "Alice"}}
	now := time.Now()
	value, err := h.store.Put(b.Context(), tokencache.Session{Authorization: "Bearer tok", Expires: now.Add(8 * time.Hour), Identity: packIdentity(id, DefaultClaims, now),
		RefreshToken: strings.Repeat("r", 64), RefreshAt: now.Add(time.Hour), TokenExpires: now.Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	benchServe(b, h, value)
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

// downStore is a session store whose backend cannot be reached.
type downStore struct{ tokencache.Store }

func (downStore) Get(context.Context, string) (tokencache.Session, bool, error) {
	return tokencache.Session{}, false, tokencache.ErrUnavailable
}

// TestStoreDownAnswersPeopleAndScripts: when the store is down, a person's
// page load gets a page and a script's call gets JSON, whatever the
// unauthenticated policy (which decides only who is sent to log in).
func TestStoreDownAnswersPeopleAndScripts(t *testing.T) {
	for _, policy := range []UnauthenticatedPolicy{UnauthenticatedAuto, UnauthenticatedRedirect, UnauthenticatedReject} {
		t.Run(string(policy), func(t *testing.T) {
			h, session := provisioned(t)
			h.Unauthenticated = policy
			h.store = downStore{h.store}

			page := newProtectedRequest(session).req
			page.Header.Set("Accept", "text/html")
			page.Header.Set("Sec-Fetch-Mode", "navigate")
			w := httptest.NewRecorder()
			_ = h.ServeHTTP(w, page, noopNext)
			if w.Code != http.StatusServiceUnavailable || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || !strings.Contains(w.Body.String(), "Sign-in is unavailable") {
				t.Errorf("page load: %d %s\n%s", w.Code, w.Header().Get("Content-Type"), w.Body)
			}

			api := newProtectedRequest(session).req
			api.Header.Set("Accept", "application/json")
			w = httptest.NewRecorder()
			_ = h.ServeHTTP(w, api, noopNext)
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Content-Type") != "application/json" || !strings.Contains(w.Body.String(), `"error":"store_unavailable"`) {
				t.Errorf("API call: %d %s %s", w.Code, w.Header().Get("Content-Type"), w.Body)
			}
		})
	}
}

// BenchmarkProtectedRequestRevalidate is the hot path with revalidate on,
// for a session past its interval that this instance checked again
// recently: what revalidate costs every request (the check itself is one
// call to the server per session per interval).
func BenchmarkProtectedRequestRevalidate(b *testing.B) {
	h := newTestHandler(b, func(h *Handler) { h.Revalidate = caddy.Duration(time.Minute) })
	id := authserver.Identity{Subject: testSubject, Claims: map[string]any{"email": "alice@corp.example"}}
	session, _ := h.store.Put(b.Context(), tokencache.Session{Authorization: "Bearer tok", Expires: time.Now().Add(time.Hour), Identity: packIdentity(id, DefaultClaims, time.Now().Add(-time.Hour))})
	h.rechecks.checked[session] = time.Now()
	benchServe(b, h, session)
}

// benchServe measures the module serving one protected request with the
// session's cookie.
func benchServe(b *testing.B, h *Handler, session string) {
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

// BenchmarkProtectedRequestRenewBefore: renew_before on, the session far
// from its end (the common case): one clock read and a comparison more.
func BenchmarkProtectedRequestRenewBefore(b *testing.B) {
	h := newTestHandler(b, func(h *Handler) { h.RenewBefore = caddy.Duration(5 * time.Minute) })
	id := authserver.Identity{Subject: testSubject, Claims: map[string]any{"email": "alice@corp.example"}}
	session, _ := h.store.Put(b.Context(), tokencache.Session{Authorization: "Bearer tok", Expires: time.Now().Add(time.Hour), Identity: packIdentity(id, DefaultClaims, time.Time{})})
	benchServe(b, h, session)
}
