package implicitgrant

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/implicitgrant/caddy-implicit-grant/devprovider"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testredis"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// sessionOf is the stored session behind b's cookie on s.
func sessionOf(t *testing.T, s *testSite, b *testbrowser.Browser) tokencache.Session {
	t.Helper()
	sess, ok, err := s.h.store.Get(t.Context(), b.Cookie(s.origin, testbrowser.SessionCookie))
	if err != nil || !ok {
		t.Fatalf("no session: %v", err)
	}
	return sess
}

// introspectActive asks the dev provider whether an access token is live.
func introspectActive(t *testing.T, s *testSite, token string) bool {
	t.Helper()
	resp, err := http.PostForm(s.provider+"/introspect", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	var a struct{ Active bool }
	_ = json.NewDecoder(resp.Body).Decode(&a)
	resp.Body.Close()
	return a.Active
}

// refreshWorks presents a refresh token at the dev provider's token endpoint.
func refreshWorks(t *testing.T, s *testSite, rt string) bool {
	t.Helper()
	resp, err := http.PostForm(s.provider+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"test-client"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// revocationSite is a code-flow site whose provider's revocation endpoint
// is first offered to revoke, which answers in its place when it returns true.
func revocationSite(t *testing.T, handler func(*Handler), revoke func(http.ResponseWriter) bool) *testSite {
	t.Helper()
	return newTestSite(t, siteOptions{
		handler: func(h *Handler) {
			useOpenID(h)
			h.ResponseType = ResponseTypeCode
			if handler != nil {
				handler(h)
			}
		},
		intercept: func(w http.ResponseWriter, r *http.Request) bool { return r.URL.Path == "/revoke" && revoke(w) },
	})
}

// TestLogoutRevokesTokens: a logout revokes the session's refresh token
// and access token at the server (RFC 7009), as the provider's
// introspection and token endpoint then say; without an endpoint, the
// tokens stay live.
func TestLogoutRevokesTokens(t *testing.T) {
	for _, revoking := range []bool{true, false} {
		t.Run(map[bool]string{true: "discovered endpoint", false: "no endpoint"}[revoking], func(t *testing.T) {
			t.Parallel()
			var revocations atomic.Int32
			s := revocationSite(t, nil, func(w http.ResponseWriter) bool {
				revocations.Add(1)
				if !revoking {
					w.WriteHeader(http.StatusNotFound)
				}
				return !revoking
			})
			b, _ := loggedIn(t, s)
			sess := sessionOf(t, s, b)
			access := strings.TrimPrefix(sess.Authorization, "Bearer ")
			if out := b.Navigate(s.origin + "/oauth/logout"); out.StatusCode != http.StatusOK {
				t.Fatalf("logout: %d", out.StatusCode)
			}
			if got := introspectActive(t, s, access); got == revoking {
				t.Errorf("after the logout the access token is active: %v", got)
			}
			if got := refreshWorks(t, s, sess.RefreshToken); got == revoking {
				t.Errorf("after the logout the refresh token works: %v", got)
			}
			if n := revocations.Load(); n != 2 {
				t.Errorf("%d revocation calls, want 2 (refresh, then access)", n)
			}
		})
	}
}

// TestLogoutWithASlowRevocationEndpoint: a revocation endpoint that does
// not answer holds the logout up no longer than revokeTimeout.
func TestLogoutWithASlowRevocationEndpoint(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	s2 := revocationSite(t, nil, func(http.ResponseWriter) bool {
		select {
		case <-release:
		case <-time.After(20 * time.Second):
		}
		return true
	})
	b, _ := loggedIn(t, s2)
	start := time.Now()
	out := b.Navigate(s2.origin + "/oauth/logout")
	if took := time.Since(start); out.StatusCode != http.StatusOK || took > revokeTimeout+time.Second {
		t.Errorf("logout with a silent revocation endpoint: %d after %s, want 200 within %s", out.StatusCode, took, revokeTimeout)
	}
	if next := b.Navigate(s2.origin + "/dash"); next.StatusCode != http.StatusFound {
		t.Errorf("after the logout: %d, want a new login", next.StatusCode)
	}
}

// TestEndSession: with end_session, a logout ends the session here, then
// sends the browser to the server's end_session_endpoint with the ID token
// as hint and a state, which is checked when the server sends it back;
// the next visit needs the server's login again.
func TestEndSession(t *testing.T) {
	t.Parallel()
	s := newCodeSite(t, "", func(h *Handler) { h.EndSession = true }, nil)
	b, _ := loggedIn(t, s)
	out := b.Navigate(s.origin + "/oauth/logout")
	loc := endSessionRequest(t, out)
	if loc.Path != "/logout" || out.Header.Get("Location") != "" {
		t.Fatalf("logout: to %q (Location %q), want a page leading to the end_session_endpoint", loc, out.Header.Get("Location"))
	}
	q := loc.Query()
	state := q.Get("state")
	if q.Get("client_id") != "test-client" || q.Get("post_logout_redirect_uri") != s.origin+"/oauth/logout" || !strings.HasPrefix(state, logoutStatePrefix) {
		t.Errorf("end session request: %v", q)
	}
	if claims := jwtClaims(t, q.Get("id_token_hint")); claims["sub"] != "alice" || claims["aud"] != "test-client" {
		t.Errorf("id_token_hint is not alice's ID token: %v", claims)
	}
	if resp := b.Navigate(s.origin + "/dash"); resp.StatusCode != http.StatusFound {
		t.Errorf("the session lives on before the server's answer: %d", resp.StatusCode)
	}
	back := b.Navigate(loc.String()) // the provider ends its login and sends the browser back
	if back.StatusCode != http.StatusSeeOther {
		t.Fatalf("the provider's end session: %d %s", back.StatusCode, bodyOf(back))
	}
	returned := back.Header.Get("Location")
	if page := b.Navigate(returned); page.StatusCode != http.StatusOK || !strings.Contains(bodyOf(page), "signed out of this site and at the authorization server") {
		t.Errorf("back from the server: %d %s", page.StatusCode, bodyOf(page))
	}
	if again := b.Navigate(returned); again.StatusCode != http.StatusBadRequest {
		t.Errorf("the same state a second time: %d, want 400", again.StatusCode)
	}
	if forged := newBrowser(t).Navigate(s.origin + "/oauth/logout?state=" + logoutStatePrefix + "made-up"); forged.StatusCode != http.StatusBadRequest {
		t.Errorf("a state this browser never had: %d, want 400", forged.StatusCode)
	}
	// The provider forgot the login: the next one shows its consent page.
	consent := b.Navigate(b.AuthorizationRequest(b.Navigate(s.origin + "/dash")))
	if !strings.Contains(bodyOf(consent), `action="/authorize/decision"`) {
		t.Errorf("after end_session the provider still remembers the login: %d", consent.StatusCode)
	}
}

var endSessionLink = regexp.MustCompile(`id="next" href="([^"]+)"`)

// endSessionRequest is where the logout page sends the browser.
func endSessionRequest(t *testing.T, resp *http.Response) *url.URL {
	t.Helper()
	m := endSessionLink.FindStringSubmatch(bodyOf(resp))
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("logout: %d, no page leading to the end_session_endpoint:\n%s", resp.StatusCode, bodyOf(resp))
	}
	u, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	_ = json.Unmarshal(payload, &c)
	return c
}

// backchannelSite is a code-flow site with back-channel logout at
// /oauth/backchannel, which the dev provider is registered to call.
func backchannelSite(t *testing.T, store string) *testSite {
	t.Helper()
	return newCodeSite(t, "", func(h *Handler) {
		h.BackchannelLogoutPath = "/oauth/backchannel"
		if store != "" {
			h.StoreRaw = json.RawMessage(store)
		}
	}, func(p *devprovider.Provider) {
		site := strings.TrimSuffix(p.Clients["test-client"], "/oauth/callback")
		p.BackchannelLogout = map[string]string{"test-client": site + "/oauth/backchannel"}
	})
}

// postLogout POSTs a logout token to s's back-channel logout path.
func postLogout(t *testing.T, origin, token string) *http.Response {
	t.Helper()
	resp, err := http.PostForm(origin+"/oauth/backchannel", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// signedIn says whether b's session on origin still opens pages.
func signedIn(b *testbrowser.Browser, origin string) bool {
	return b.Navigate(origin+"/dash").StatusCode == http.StatusOK
}

// TestBackchannelLogout: a logout token naming a user ends all of that
// user's sessions and nobody else's; one naming a login session (sid)
// ends only the sessions of that login; "Sign out everywhere" at the
// provider sends one.
func TestBackchannelLogout(t *testing.T) {
	t.Parallel()
	s := backchannelSite(t, "")
	alice1, alice2, bob := newBrowser(t), newBrowser(t), newBrowser(t)
	for b, user := range map[*testbrowser.Browser]string{alice1: "alice", alice2: "alice", bob: "bob"} {
		callback := b.AuthorizeAs(b.AuthorizationRequest(b.Navigate(s.origin+"/dash")), user, true)
		if landing := b.Navigate(callback.String()); landing.StatusCode != http.StatusOK {
			t.Fatalf("login as %s: %d", user, landing.StatusCode)
		}
	}
	sid1 := alice1.Cookie(s.provider, "dev_provider_session")
	if sid1 == "" || sid1 == alice2.Cookie(s.provider, "dev_provider_session") {
		t.Fatal("the two browsers have no separate login sessions at the provider")
	}
	token, _ := devprovider.LogoutToken(s.provider, "test-client", map[string]any{"sid": sid1})
	if resp := postLogout(t, s.origin, token); resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("a logout by sid: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	if signedIn(alice1, s.origin) || !signedIn(alice2, s.origin) || !signedIn(bob, s.origin) {
		t.Errorf("after ending one login: alice's first %v (want false), her second %v, bob %v", signedIn(alice1, s.origin), signedIn(alice2, s.origin), signedIn(bob, s.origin))
	}
	token, _ = devprovider.LogoutToken(s.provider, "test-client", map[string]any{"sub": "alice"})
	if resp := postLogout(t, s.origin, token); resp.StatusCode != http.StatusOK {
		t.Fatalf("a logout by sub: %d", resp.StatusCode)
	}
	if signedIn(alice2, s.origin) || !signedIn(bob, s.origin) {
		t.Errorf("after ending alice: her session %v (want false), bob's %v (want true)", signedIn(alice2, s.origin), signedIn(bob, s.origin))
	}
	// Bob signs out at the provider: it tells the site.
	home := bob.Navigate(s.provider + "/")
	if !strings.Contains(bodyOf(home), "sign-out-everywhere") {
		t.Fatalf("the provider's home page has no Sign out everywhere: %s", bodyOf(home))
	}
	req, _ := http.NewRequest(http.MethodPost, s.provider+"/logout", nil)
	if resp := bob.Do(req); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign out everywhere: %d", resp.StatusCode)
	}
	if signedIn(bob, s.origin) {
		t.Error("bob signed out at the provider, and his session here lives on")
	}
}

// TestBackchannelLogoutRefusals: every malformed, forged or replayed
// logout token gets 400 and ends nothing; a body past the bound, 413.
func TestBackchannelLogoutRefusals(t *testing.T) {
	t.Parallel()
	s := backchannelSite(t, "")
	b, _ := loggedIn(t, s)
	sid := b.Cookie(s.provider, "dev_provider_session")
	good := func(over map[string]any) string {
		claims := map[string]any{"sub": "alice", "sid": sid}
		for k, v := range over {
			claims[k] = v
		}
		tok, err := devprovider.LogoutToken(s.provider, "test-client", claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: other}, nil)
	forged, _ := jwt.Signed(signer).Claims(map[string]any{"iss": s.provider, "aud": "test-client", "iat": time.Now().Unix(), "jti": "j-forged", "sub": "alice",
		"events": map[string]any{devprovider.BackchannelLogoutEvent: map[string]any{}}}).Serialize()
	parts := strings.Split(good(nil), ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + "."
	replayed := good(nil)
	// The replayed token is used once, for real, on a session of its own.
	for name, token := range map[string]string{
		"bad signature":       parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
		"another key":         forged,
		"alg none":            none,
		"another client":      good(map[string]any{"aud": "other-client"}),
		"another issuer":      good(map[string]any{"iss": "https://evil.example"}),
		"a nonce":             good(map[string]any{"nonce": "n-1"}),
		"no events":           good(map[string]any{"events": nil}),
		"another event":       good(map[string]any{"events": map[string]any{"http://example.com/other": map[string]any{}}}),
		"neither sub nor sid": good(map[string]any{"sub": nil, "sid": nil}),
		"iat too old":         good(map[string]any{"iat": time.Now().Add(-time.Hour).Unix()}),
		"no jti":              good(map[string]any{"jti": nil}),
		"not a JWT":           "hello",
	} {
		if resp := postLogout(t, s.origin, token); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, resp.StatusCode)
		}
	}
	if !signedIn(b, s.origin) {
		t.Fatal("a refused logout token ended the session")
	}
	if resp := postLogout(t, s.origin, replayed); resp.StatusCode != http.StatusOK {
		t.Fatalf("the good token: %d", resp.StatusCode)
	}
	b2, _ := loggedIn(t, s)
	if resp := postLogout(t, s.origin, replayed); resp.StatusCode != http.StatusBadRequest || !signedIn(b2, s.origin) {
		t.Errorf("a replayed jti: %d, and the new session ended: %v", resp.StatusCode, !signedIn(b2, s.origin))
	}
	big, _ := http.Post(s.origin+"/oauth/backchannel", "application/x-www-form-urlencoded", strings.NewReader("logout_token="+strings.Repeat("a", maxLogoutBody+1)))
	if big.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a body past the bound: %d, want 413", big.StatusCode)
	}
	if get, _ := http.Get(s.origin + "/oauth/backchannel"); get.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", get.StatusCode)
	}
}

// TestEndSessionNeedsTheEndpoint: end_session is refused at load when the
// issuer's discovery names no end_session_endpoint; an issuer that cannot
// be reached then does not stop Caddy from starting.
func TestEndSessionNeedsTheEndpoint(t *testing.T) {
	t.Parallel()
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "authorization_endpoint": issuer + "/authorize", "jwks_uri": issuer + "/jwks"})
	}))
	defer srv.Close()
	issuer = srv.URL
	for _, tc := range []struct {
		issuer, wantErr string
	}{{issuer, "end_session: the issuer " + issuer + " names no end_session_endpoint"}, {"http://127.0.0.1:1", ""}} {
		h := Handler{OpenID: tc.issuer, ClientID: "c", RedirectURI: "https://app.example/cb", Secret: strings.Repeat("s", 32), EndSession: true,
			storage: &certmagic.FileStorage{Path: t.TempDir()}}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
		err := h.Provision(ctx)
		_ = h.Cleanup()
		cancel()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("issuer %s: %v, want %q", tc.issuer, err, tc.wantErr)
		}
	}
}

// TestEndingAUserRevokesTheirRefreshTokens: the admin API's end-a-user
// revokes the user's refresh tokens at the server, and says how many.
func TestEndingAUserRevokesTheirRefreshTokens(t *testing.T) {
	t.Parallel()
	s := newCodeSite(t, "", nil, nil)
	b, _ := loggedIn(t, s)
	rt := sessionOf(t, s, b).RefreshToken
	line, err := s.h.sessionsAPI(t.Context(), http.MethodDelete, "alice", time.Now())
	if err != nil || line.Ended == nil || *line.Ended != 1 || line.Revoked == nil || *line.Revoked != 1 {
		t.Fatalf("end alice: %+v, %v; want 1 ended, 1 revoked", line, err)
	}
	if refreshWorks(t, s, rt) {
		t.Error("alice's refresh token still works at the server")
	}
}

// TestBackchannelLogoutReachesEveryInstance: a logout token posted to
// one instance ends the session on another that shares the store: at
// once with Redis, within the revocation refresh with the cookie store.
func TestBackchannelLogoutReachesEveryInstance(t *testing.T) {
	t.Parallel()
	redis := testredis.Start(t)
	for _, tc := range []struct {
		name, storeA, storeB string
		within               time.Duration
	}{
		{"redis", `{"type":"redis","url":"` + redis.URL + `","timeout":"1s"}`, `{"type":"redis","url":"` + redis.URL + `","timeout":"900ms"}`, 100 * time.Millisecond},
		{"cookie", `{"type":"cookie"}`, `{"type":"cookie"}`, 11 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := backchannelSite(t, tc.storeA)
			other := newTestHandler(t, func(h *Handler) {
				*h = Handler{OpenID: s.h.OpenID, ResponseType: ResponseTypeCode, ClientID: s.h.ClientID, RedirectURI: s.h.RedirectURI,
					Scopes: s.h.Scopes, Secret: testSecret, StoreRaw: json.RawMessage(tc.storeB), BackchannelLogoutPath: "/oauth/backchannel", storage: s.h.storage}
			})
			if tc.name == "cookie" { // another process: its own store, reading the same revocations in Caddy's storage
				st, err := other.backend.Open(other.storeSite(caddy.Context{}))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = st.(interface{ Close() error }).Close() })
				other.store = st
			}
			l := listen(t)
			serve(t, l, other, s.upstream)
			originB := "http://" + l.Addr().String()
			b, _ := loggedIn(t, s)
			cookie := b.Cookie(s.origin, testbrowser.SessionCookie)
			onB := func() int { return apiStatus(originB, cookie) }
			if status := onB(); status != http.StatusOK {
				t.Fatalf("the session on the other instance: %d", status)
			}
			token, _ := devprovider.LogoutToken(s.provider, "test-client", map[string]any{"sid": b.Cookie(s.provider, "dev_provider_session")})
			if resp := postLogout(t, s.origin, token); resp.StatusCode != http.StatusOK {
				t.Fatalf("logout: %d", resp.StatusCode)
			}
			start := time.Now()
			for onB() == http.StatusOK {
				if time.Since(start) > tc.within {
					t.Fatalf("the other instance still serves the session %s after the logout", tc.within)
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("%s: the other instance refused the session %s after the logout", tc.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// BenchmarkLogout is a logout of a code-flow session, with its two
// revocation calls to the dev provider on loopback and without them (no
// revocation endpoint); the login is outside the timer.
func BenchmarkLogout(b *testing.B) {
	for _, revoking := range []bool{false, true} {
		b.Run(map[bool]string{false: "local only", true: "revoking"}[revoking], func(b *testing.B) {
			s := newCodeSite(b, "", nil, nil)
			if !revoking {
				s.h.revocation = nil
			}
			for b.Loop() {
				b.StopTimer()
				br := newBrowser(b)
				callback := br.AuthorizeAt(br.AuthorizationRequest(br.Navigate(s.origin+"/dash")), true)
				br.Navigate(callback.String())
				b.StartTimer()
				if out := br.Navigate(s.origin + "/oauth/logout"); out.StatusCode != http.StatusOK {
					b.Fatalf("logout: %d", out.StatusCode)
				}
			}
		})
	}
}

// TestLogoutSecretsStayOutOfLogs: logging out at the server (a failing
// revocation, the end-session round trip, logout tokens refused and
// accepted) logs no token, ID token, logout token, state or session id,
// at debug level; and the logs say what happened.
func TestLogoutSecretsStayOutOfLogs(t *testing.T) {
	t.Parallel()
	s := revocationSite(t, func(h *Handler) { h.EndSession, h.BackchannelLogoutPath = true, "/oauth/backchannel" }, func(w http.ResponseWriter) bool {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	})
	logs := captureLogs(s.h)
	b, _ := loggedIn(t, s)
	sess := sessionOf(t, s, b)
	secrets := []string{strings.TrimPrefix(sess.Authorization, "Bearer "), sess.RefreshToken, sess.IDToken, b.Cookie(s.origin, testbrowser.SessionCookie)}
	loc := endSessionRequest(t, b.Navigate(s.origin+"/oauth/logout"))
	secrets = append(secrets, loc.Query().Get("state"), loc.Query().Get("id_token_hint"))
	b.Navigate(b.Navigate(loc.String()).Header.Get("Location"))
	b2, _ := loggedIn(t, s)
	sid := b2.Cookie(s.provider, "dev_provider_session")
	refused, _ := devprovider.LogoutToken(s.provider, "other-client", map[string]any{"sid": sid})
	accepted, _ := devprovider.LogoutToken(s.provider, "test-client", map[string]any{"sid": sid, "sub": "alice"})
	secrets = append(secrets, refused, accepted, b2.Cookie(s.origin, testbrowser.SessionCookie))
	postLogout(t, s.origin, refused)
	postLogout(t, s.origin, accepted)
	text := logs.String()
	for _, secret := range secrets {
		if secret == "" {
			t.Fatal("a secret to look for is empty: the flow did not run")
		}
		if strings.Contains(text, secret) {
			t.Errorf("a secret (%d bytes) appears in the logs", len(secret))
		}
	}
	for _, line := range []string{"could not revoke a token", "refused a back-channel logout", "back-channel logout", "logged out"} {
		if !strings.Contains(text, line) {
			t.Errorf("no log line %q:\n%s", line, text)
		}
	}
}
