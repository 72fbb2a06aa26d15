package implicitgrant

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/implicitgrant/caddy-implicit-grant/devprovider"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
)

const serviceSecret = "a-service-secret"

// bearerSite is an openid site taking bearers for "dashboard-api", at a
// dev provider with three services: svc-reporter and mallory for that
// API, svc-other for another.
func bearerSite(t testing.TB, handler func(*Handler)) *testSite {
	return newTestSite(t, siteOptions{
		provider: func(p *devprovider.Provider) {
			p.Services = map[string]devprovider.Service{
				"svc-reporter": {Secret: serviceSecret, Audience: "dashboard-api"},
				"mallory":      {Secret: serviceSecret, Audience: "dashboard-api"},
				"svc-other":    {Secret: serviceSecret, Audience: "other-api"},
			}
		},
		handler: func(h *Handler) {
			useOpenID(h)
			h.AcceptBearer = []string{"dashboard-api"}
			if handler != nil {
				handler(h)
			}
		},
	})
}

// serviceToken gets a service's token with the client credentials grant.
func serviceToken(t testing.TB, s *testSite, service string) string {
	t.Helper()
	return testbrowser.ServiceToken(t, s.provider, service, serviceSecret)
}

// callAPI is a script's call with its own bearer, no cookies.
func callAPI(t testing.TB, origin, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, origin+"/api/report", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestBearerAccepted(t *testing.T) {
	t.Parallel()
	s := bearerSite(t, nil)
	token := serviceToken(t, s, "svc-reporter")
	resp := callAPI(t, s.origin, token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a good bearer: %d", resp.StatusCode)
	}
	seen := s.upstream.last(t)
	if seen.Header.Get("Authorization") != "Bearer "+token || seen.Header.Get("X-Seen-User") != "svc-reporter" {
		t.Errorf("upstream got %q as %q; want the same bearer, user svc-reporter", seen.Header.Get("Authorization"), seen.Header.Get("X-Seen-User"))
	}
	if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("a bearer call set cookies: %q", c)
	}
}

// TestBearerRefusals: every bad bearer gets 401 invalid_token and never
// reaches the upstream.
func TestBearerRefusals(t *testing.T) {
	t.Parallel()
	s := bearerSite(t, nil)
	good := serviceToken(t, s, "svc-reporter")
	header := func(tok string) map[string]any {
		raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
		var h map[string]any
		_ = json.Unmarshal(raw, &h)
		return h
	}
	kid := header(good)["kid"].(string)
	claims := func(over map[string]any) map[string]any {
		now := time.Now()
		c := map[string]any{"iss": s.provider, "sub": "svc-reporter", "aud": []string{"dashboard-api"}, "client_id": "svc-reporter",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1"}
		for k, v := range over {
			c[k] = v
		}
		return c
	}
	signed := func(over map[string]any, typ string) string {
		tok, err := devprovider.Sign(s.provider, claims(over), typ)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// The provider's public key, as an attacker would fetch it, keys an HS256 forgery.
	resp, err := http.Get(s.provider + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	_ = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	der, _ := x509.MarshalPKIXPublicKey(set.Keys[0].Key)
	forge := func(alg jose.SignatureAlgorithm, key any) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("at+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(signer).Claims(claims(nil)).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	parts := strings.Split(good, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + "."
	for name, token := range map[string]string{
		"expired":                     signed(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}, "at+jwt"),
		"nbf in the future":           signed(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}, "at+jwt"),
		"another audience":            serviceToken(t, s, "svc-other"),
		"another issuer":              signed(map[string]any{"iss": "https://evil.example"}, "at+jwt"),
		"alg none":                    none,
		"HS256 keyed with the public": forge(jose.HS256, der),
		"another key, same kid":       forge(jose.RS256, other),
		"an ID token":                 signed(map[string]any{"nonce": "n-12345678", "aud": "test-client"}, "JWT"),
		"an ID token typed at+jwt":    signed(map[string]any{"nonce": "n-12345678"}, "at+jwt"),
		"a broken signature":          parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
		"one byte past the bound":     strings.Repeat("a", DefaultMaxTokenBytes+1),
	} {
		before := s.upstream.count()
		resp := callAPI(t, s.origin, token)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: %d %q, want 401 invalid_token", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if strings.Contains(resp.Header.Get("WWW-Authenticate"), token) {
			t.Errorf("%s: the answer repeats the token", name)
		}
		if s.upstream.count() != before {
			t.Errorf("%s: the upstream was reached", name)
		}
	}
	if resp := callAPI(t, s.origin, good); resp.StatusCode != http.StatusOK {
		t.Errorf("the good token after the refusals: %d", resp.StatusCode)
	}
}

// TestBearerAllowRules: allow applies to bearers as to sessions.
func TestBearerAllowRules(t *testing.T) {
	t.Parallel()
	s := bearerSite(t, func(h *Handler) { h.Allow = []AllowRule{{Claim: "sub", Patterns: []string{"svc-*"}}} })
	if resp := callAPI(t, s.origin, serviceToken(t, s, "svc-reporter")); resp.StatusCode != http.StatusOK {
		t.Errorf("svc-reporter: %d, want 200", resp.StatusCode)
	}
	before := s.upstream.count()
	if resp := callAPI(t, s.origin, serviceToken(t, s, "mallory")); resp.StatusCode != http.StatusForbidden || s.upstream.count() != before {
		t.Errorf("mallory: %d, want 403 and no upstream", resp.StatusCode)
	}
}

// TestBearerWithASession: a browser with a session and a bearer of its
// own is served with the session, as without accept_bearer.
func TestBearerWithASession(t *testing.T) {
	t.Parallel()
	s := bearerSite(t, nil)
	b := newBrowser(t)
	b.Login(s.origin, "/dash")
	req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/report", nil)
	req.Header.Set("Authorization", "Bearer "+serviceToken(t, s, "svc-reporter"))
	req.Header.Set("Accept", "application/json")
	if resp := b.Do(req); resp.StatusCode != http.StatusOK {
		t.Fatalf("session and bearer: %d", resp.StatusCode)
	}
	if seen := s.upstream.last(t); seen.Header.Get("X-Seen-User") != "alice" {
		t.Errorf("the upstream saw %q, want the session's alice", seen.Header.Get("X-Seen-User"))
	}
}

// TestBearerIntrospected: with validate introspect, an active token for
// the audience is admitted, an inactive one refused, and a result is
// cached: 100 calls, one introspection.
func TestBearerIntrospected(t *testing.T) {
	t.Parallel()
	s := bearerSite(t, func(h *Handler) {
		issuer := h.OpenID
		h.OpenID, h.AuthorizeURL = "", issuer+"/authorize"
		h.Validation = &Validation{Mode: validateIntrospect, URL: issuer + "/introspect"}
	})
	token := serviceToken(t, s, "svc-reporter")
	before := devprovider.Calls(s.provider, "/introspect")
	for i := range 100 {
		if resp := callAPI(t, s.origin, token); resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %d", i, resp.StatusCode)
		}
	}
	if n := devprovider.Calls(s.provider, "/introspect") - before; n != 1 {
		t.Errorf("100 calls made %d introspections, want 1", n)
	}
	revoked := serviceToken(t, s, "svc-reporter")
	if _, err := http.PostForm(s.provider+"/revoke", url.Values{"token": {revoked}}); err != nil {
		t.Fatal(err)
	}
	if resp := callAPI(t, s.origin, revoked); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an inactive token: %d, want 401", resp.StatusCode)
	}
	if resp := callAPI(t, s.origin, serviceToken(t, s, "svc-other")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("another audience's token: %d, want 401", resp.StatusCode)
	}
}

// TestBadBearersAreLimited: a script looping on a bad token gets 429.
func TestBadBearersAreLimited(t *testing.T) {
	t.Parallel()
	s := bearerSite(t, nil)
	last := 0
	for range 100 {
		last = callAPI(t, s.origin, "not-a-token").StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("the 100th bad bearer: %d, want 429", last)
	}
}

// TestNoBearersWithoutAcceptBearer: without accept_bearer a good machine
// token opens nothing.
func TestNoBearersWithoutAcceptBearer(t *testing.T) {
	t.Parallel()
	s := bearerSite(t, func(h *Handler) { h.AcceptBearer = nil })
	if resp := callAPI(t, s.origin, serviceToken(t, s, "svc-reporter")); resp.StatusCode != http.StatusUnauthorized || s.upstream.count() != 0 {
		t.Errorf("a machine bearer without accept_bearer: %d, upstream reached %d times", resp.StatusCode, s.upstream.count())
	}
}

// TestBearerMetricsAndLogs: bearers are counted by outcome (bounded
// labels), and neither a good token nor a bad one is logged.
func TestBearerMetricsAndLogs(t *testing.T) {
	s := bearerSite(t, nil)
	logs := captureLogs(s.h)
	count := func(outcome string) float64 { return testutil.ToFloat64(metrics.bearers.WithLabelValues(outcome)) }
	accepted, cached, invalid := count("accepted"), count("cached"), count("invalid_token")
	good := serviceToken(t, s, "svc-reporter")
	callAPI(t, s.origin, good)
	callAPI(t, s.origin, good)
	bad := strings.Replace(good, ".", ".x", 1)
	callAPI(t, s.origin, bad)
	if count("accepted")-accepted != 1 || count("cached")-cached != 1 || count("invalid_token")-invalid != 1 {
		t.Errorf("bearers_total: accepted +%v, cached +%v, invalid_token +%v; want +1 each",
			count("accepted")-accepted, count("cached")-cached, count("invalid_token")-invalid)
	}
	for _, token := range []string{good, bad, strings.Split(good, ".")[2]} {
		if strings.Contains(logs.String(), token) {
			t.Error("a bearer token appears in the logs")
		}
	}
	if !strings.Contains(logs.String(), "refused a bearer token") {
		t.Errorf("the refusal is not logged:\n%s", logs)
	}
}

// BenchmarkBearerRequest is a script's request with a bearer: "cached"
// (verified before: a digest and a map lookup) beside a session's request
// (BenchmarkProtectedRequest), and "first" (the cache emptied each time:
// the signature and the claims, keys cached).
func BenchmarkBearerRequest(b *testing.B) {
	for _, first := range []bool{false, true} {
		b.Run(map[bool]string{false: "cached", true: "first"}[first], func(b *testing.B) {
			s := bearerSite(b, nil)
			p := newProtectedRequest("")
			p.cookies, p.bearer = "theme=dark; lang=en", "Bearer "+serviceToken(b, s, "svc-reporter")
			w := httptest.NewRecorder()
			serve := func() {
				p.reset()
				if err := s.h.ServeHTTP(w, p.req, noopNext); err != nil || w.Code != http.StatusOK {
					b.Fatalf("%v %d", err, w.Code)
				}
			}
			serve() // the keys fetched, the token cached
			b.ReportAllocs()
			for b.Loop() {
				if first {
					b.StopTimer()
					s.h.bearers.cache = newExpiring[[32]byte, string](maxBearers)
					b.StartTimer()
				}
				serve()
			}
		})
	}
}

// TestBearerChecksAreShared: fifty requests bringing one new token at once
// make one introspection; fifty made-up tokens at once from one address
// hold at most maxVerifyingPerAddress calls to the server at a time.
func TestBearerChecksAreShared(t *testing.T) {
	t.Parallel()
	var inflight, most atomic.Int32
	s := newTestSite(t, siteOptions{
		provider: func(p *devprovider.Provider) {
			p.Services = map[string]devprovider.Service{"svc-reporter": {Secret: serviceSecret, Audience: "dashboard-api"}}
		},
		handler: func(h *Handler) { h.AcceptBearer = []string{"dashboard-api"} },
		intercept: func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/introspect" {
				n := inflight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(50 * time.Millisecond) // a server that takes its time
				inflight.Add(-1)
			}
			return false
		},
	})
	status := func(token string) int { // (in goroutines: no t.Fatal)
		req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/report", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	token := serviceToken(t, s, "svc-reporter")
	before := devprovider.Calls(s.provider, "/introspect")
	allAnswered200(t, 50, func(int) int { return status(token) })
	if n := devprovider.Calls(s.provider, "/introspect") - before; n != 1 {
		t.Errorf("50 requests with one new token made %d introspections, want 1", n)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { status(fmt.Sprintf("made-up-%d", i)) })
	}
	wg.Wait()
	if m := most.Load(); m > maxVerifyingPerAddress {
		t.Errorf("%d introspections at once for one address, bound %d", m, maxVerifyingPerAddress)
	}
}
