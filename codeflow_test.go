package implicitgrant

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/implicitgrant/caddy-implicit-grant/devprovider"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testredis"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

const testClientSecret = "a-client-secret-for-the-code-flow"

// newCodeSite is a test site on the code flow with openid against the dev
// provider: a public client, or (auth set) a confidential one.
func newCodeSite(t testing.TB, auth string, handler func(*Handler), provider func(*devprovider.Provider)) *testSite {
	t.Helper()
	return newTestSite(t, siteOptions{
		provider: func(p *devprovider.Provider) {
			if auth != "" {
				p.ClientSecrets = map[string]string{"test-client": testClientSecret}
			}
			if provider != nil {
				provider(p)
			}
		},
		handler: func(h *Handler) {
			useOpenID(h)
			h.ResponseType = ResponseTypeCode
			if auth != "" {
				h.ClientSecret, h.TokenAuth = testClientSecret, auth
			}
			if handler != nil {
				handler(h)
			}
		},
	})
}

// codeLogin runs a code-flow login from a page load of target; it returns
// the final response, the authorization request and the callback URL.
func codeLogin(t *testing.T, b *testbrowser.Browser, s *testSite, target string) (*http.Response, *url.URL, *url.URL) {
	t.Helper()
	first := b.Navigate(s.origin + target)
	authorize, _ := url.Parse(b.AuthorizationRequest(first))
	callback := b.AuthorizeAt(authorize.String(), true)
	landing := b.Navigate(callback.String())
	return b.Navigate(s.origin + testbrowser.LandingLocation(t, landing)), authorize, callback
}

func TestCodeFlowLogin(t *testing.T) {
	for _, auth := range []string{"", "client_secret_basic", "client_secret_post"} {
		t.Run("auth="+auth, func(t *testing.T) {
			t.Parallel()
			s := newCodeSite(t, auth, nil, nil)
			b := newBrowser(t)
			final, authorize, callback := codeLogin(t, b, s, "/dash?x=1")
			q := authorize.Query()
			if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 ||
				q.Has("client_secret") || q.Has("code_verifier") || strings.Contains(authorize.String(), testClientSecret) {
				t.Fatalf("authorization request: %s", authorize)
			}
			if callback.Query().Get("code") == "" || callback.Query().Get("iss") == "" {
				t.Fatalf("callback: %s", callback)
			}
			if final.StatusCode != http.StatusOK || s.upstream.last(t).URL.RequestURI() != "/dash?x=1" {
				t.Fatalf("after login: %d %s", final.StatusCode, bodyOf(final))
			}
			seen := s.upstream.last(t)
			if !strings.HasPrefix(seen.Header.Get("Authorization"), "Bearer ") || seen.Header.Get("X-Seen-User") != "alice" {
				t.Errorf("upstream saw %q as %q", seen.Header.Get("Authorization"), seen.Header.Get("X-Seen-User"))
			}
			calls := s.tokenCalls("authorization_code")
			if len(calls) != 1 {
				t.Fatalf("%d code exchanges, want 1", len(calls))
			}
			form := calls[0].form
			sum := sha256.Sum256([]byte(form.Get("code_verifier")))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != q.Get("code_challenge") || len(form.Get("code_verifier")) < 43 ||
				form.Get("code") != callback.Query().Get("code") || form.Get("redirect_uri") != s.origin+"/oauth/callback" {
				t.Errorf("the exchange's form: %v", form)
			}
			switch auth {
			case "":
				if form.Get("client_id") != "test-client" || form.Has("client_secret") || calls[0].authorization != "" {
					t.Errorf("a public client's exchange: %v %q", form, calls[0].authorization)
				}
			case "client_secret_basic":
				if form.Has("client_secret") || calls[0].authorization != "Basic "+base64.StdEncoding.EncodeToString([]byte("test-client:"+testClientSecret)) {
					t.Errorf("basic: %v %q", form, calls[0].authorization)
				}
			case "client_secret_post":
				if form.Get("client_secret") != testClientSecret || calls[0].authorization != "" {
					t.Errorf("post: %v %q", form, calls[0].authorization)
				}
			}
		})
	}
}

// TestCodeFlowRefusals: every answer that is not this login's ends with
// no session.
func TestCodeFlowRefusals(t *testing.T) {
	t.Parallel()
	s := newCodeSite(t, "", nil, nil)
	refused := func(t *testing.T, resp *http.Response, status int, text string) {
		t.Helper()
		testbrowser.AssertNoSession(t, resp)
		if body := bodyOf(resp); resp.StatusCode != status || !strings.Contains(body, text) {
			t.Errorf("%d, want %d with %q:\n%s", resp.StatusCode, status, text, body)
		}
	}
	splice := func(callback *url.URL, set map[string]string) string {
		q := callback.Query()
		for k, v := range set {
			if v == "" {
				q.Del(k)
			} else {
				q.Set(k, v)
			}
		}
		u := *callback
		u.RawQuery = q.Encode()
		return u.String()
	}
	stateOf := func(b *testbrowser.Browser) (string, *url.URL) {
		authorize, _ := url.Parse(b.AuthorizationRequest(b.Navigate(s.origin + "/dash")))
		return authorize.Query().Get("state"), authorize
	}

	t.Run("code replayed", func(t *testing.T) {
		b := newBrowser(t)
		_, _, used := codeLogin(t, b, s, "/dash")
		b.Navigate(s.origin + "/oauth/logout")
		state, _ := stateOf(b)
		refused(t, b.Navigate(splice(used, map[string]string{"state": state})), http.StatusBadRequest, "would not accept this sign-in")
	})
	t.Run("another login's code with this browser's state", func(t *testing.T) {
		b := newBrowser(t)
		_, first := stateOf(b)
		second, _ := stateOf(b)
		callback := b.AuthorizeAt(first.String(), true)
		refused(t, b.Navigate(splice(callback, map[string]string{"state": second})), http.StatusBadRequest, "would not accept this sign-in")
	})
	t.Run("wrong iss", func(t *testing.T) {
		b := newBrowser(t)
		_, authorize := stateOf(b)
		callback := b.AuthorizeAt(authorize.String(), true)
		before := len(s.tokenCalls("authorization_code"))
		refused(t, b.Navigate(splice(callback, map[string]string{"iss": "https://evil.example"})), http.StatusBadRequest, "incomplete or malformed")
		if len(s.tokenCalls("authorization_code")) != before {
			t.Error("the code of a mixed-up answer was sent to the token endpoint")
		}
	})
	t.Run("error in the query", func(t *testing.T) {
		b := newBrowser(t)
		_, authorize := stateOf(b)
		callback := b.AuthorizeAt(authorize.String(), false)
		refused(t, b.Navigate(callback.String()), http.StatusForbidden, "Sign-in was declined")
	})
	t.Run("missing iss where discovery says it is sent", func(t *testing.T) {
		s := newCodeSite(t, "", nil, func(p *devprovider.Provider) { p.OmitIss = true })
		b := newBrowser(t)
		authorize, _ := url.Parse(b.AuthorizationRequest(b.Navigate(s.origin + "/dash")))
		callback := b.AuthorizeAt(authorize.String(), true)
		refused(t, b.Navigate(callback.String()), http.StatusBadRequest, "incomplete or malformed")
	})
	t.Run("oversized token", func(t *testing.T) {
		s := newCodeSite(t, "", nil, func(p *devprovider.Provider) { p.TokenSize = 9000 })
		b := newBrowser(t)
		authorize, _ := url.Parse(b.AuthorizationRequest(b.Navigate(s.origin + "/dash")))
		refused(t, b.Navigate(b.AuthorizeAt(authorize.String(), true).String()), http.StatusRequestEntityTooLarge, "larger than this site accepts")
	})
	for name, tc := range map[string]struct {
		status int
		body   string
		want   int
	}{
		"not JSON":           {200, "this is not json", http.StatusBadRequest},
		"larger than 1 MiB":  {200, `{"access_token":"` + strings.Repeat("a", 2<<20) + `","token_type":"Bearer"}`, http.StatusBadRequest},
		"token_type mac":     {200, `{"access_token":"abc","token_type":"mac"}`, http.StatusBadRequest},
		"not a bearer token": {200, `{"access_token":"a b, Basic x","token_type":"Bearer"}`, http.StatusBadRequest},
		"server error":       {502, `<html>bad gateway</html>`, http.StatusServiceUnavailable},
	} {
		t.Run("token endpoint: "+name, func(t *testing.T) {
			l := listen(t)
			serve(t, l, middlewareFunc(func(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, err := w.Write([]byte(tc.body))
				return err
			}), nil)
			s := newCodeSite(t, "", func(h *Handler) { h.TokenURL = "http://" + l.Addr().String() + "/token" }, nil)
			b := newBrowser(t)
			authorize, _ := url.Parse(b.AuthorizationRequest(b.Navigate(s.origin + "/dash")))
			resp := b.Navigate(b.AuthorizeAt(authorize.String(), true).String())
			testbrowser.AssertNoSession(t, resp)
			if resp.StatusCode != tc.want {
				t.Errorf("%d, want %d: %s", resp.StatusCode, tc.want, bodyOf(resp))
			}
		})
	}
}

// apiGet is a script's call with the browser's cookies.
func apiGet(b *testbrowser.Browser, u string) *http.Response {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Sec-Fetch-Mode", "cors")
	return b.Do(req)
}

// allAnswered200 makes n requests at once (request(i) returns a status)
// and fails for each that was not answered 200.
func allAnswered200(t *testing.T, n int, request func(i int) int) {
	t.Helper()
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := range n {
		wg.Go(func() { statuses <- request(i) })
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != http.StatusOK {
			t.Errorf("a request at expiry got %d", st)
		}
	}
}

// shortTokens: 6 s tokens, refreshed 3 s before their end, not sent in
// their last second.
func shortTokens(h *Handler) {
	h.RenewBefore, h.ExpiryLeeway = caddy.Duration(3*time.Second), caddy.Duration(time.Second)
}
func shortLived(p *devprovider.Provider) { p.ExpiresIn = caddy.Duration(6 * time.Second) }
func tokenSeen(t *testing.T, s *testSite) string {
	return s.upstream.last(t).Header.Get("Authorization")
}

// loggedIn is a browser with a session on s, and when the session's times
// start counting (its exchange ended just before).
func loggedIn(t *testing.T, s *testSite) (*testbrowser.Browser, time.Time) {
	t.Helper()
	b := newBrowser(t)
	codeLogin(t, b, s, "/dash")
	return b, time.Now()
}

func TestRefreshBeforeAndAfterExpiry(t *testing.T) {
	t.Parallel()
	s := newCodeSite(t, "", shortTokens, shortLived)
	b, start := loggedIn(t, s)
	first := tokenSeen(t, s)
	// The session, unlike its token, lasts max_session_lifetime.
	if sess, ok, _ := s.h.store.Get(t.Context(), b.Cookie(s.origin, testbrowser.SessionCookie)); !ok ||
		sess.Expires.Before(start.Add(DefaultMaxSession-time.Minute)) || sess.Expires.After(start.Add(DefaultMaxSession)) {
		t.Fatalf("the session ends at %v, want max_session_lifetime (%v) after the login", sess.Expires, DefaultMaxSession)
	}
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond))) // due, still valid
	if resp := apiGet(b, s.origin+"/api"); resp.StatusCode != http.StatusOK || tokenSeen(t, s) == first {
		t.Fatalf("a request when the refresh was due: %d, token changed: %v", resp.StatusCode, tokenSeen(t, s) != first)
	}
	second := tokenSeen(t, s)
	time.Sleep(time.Until(start.Add(9500 * time.Millisecond))) // past the second token's end
	if resp := apiGet(b, s.origin+"/api"); resp.StatusCode != http.StatusOK || tokenSeen(t, s) == second {
		t.Fatalf("a request after expiry: %d", resp.StatusCode)
	}
	if n := len(s.tokenCalls("refresh_token")); n != 2 {
		t.Errorf("%d refreshes, want 2", n)
	}
}

func TestConcurrentRequestsShareOneRefresh(t *testing.T) {
	for _, store := range []string{"memory", "cookie"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			s := newCodeSite(t, "", func(h *Handler) {
				shortTokens(h)
				h.StoreRaw = []byte(`{"type":"` + store + `"}`)
			}, shortLived)
			b, start := loggedIn(t, s)
			reuses := devprovider.ReuseDetected()
			time.Sleep(time.Until(start.Add(3500 * time.Millisecond)))
			allAnswered200(t, 50, func(int) int {
				resp := apiGet(b, s.origin+"/api")
				resp.Body.Close()
				return resp.StatusCode
			})
			if n := len(s.tokenCalls("refresh_token")); n != 1 {
				t.Errorf("50 concurrent requests made %d refreshes, want 1", n)
			}
			if devprovider.ReuseDetected() != reuses {
				t.Error("the provider saw a refresh token twice")
			}
		})
	}
}

// TestRefusedRefreshEndsTheSession: a refresh token the server revoked
// ends the session: a script gets 401, a page load logs in again.
func TestRefusedRefreshEndsTheSession(t *testing.T) {
	t.Parallel()
	s := newCodeSite(t, "", shortTokens, shortLived)
	revoke := func() {
		token := strings.TrimPrefix(tokenSeen(t, s), "Bearer ")
		resp, err := http.PostForm(s.provider+"/revoke", url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	api, page := newBrowser(t), newBrowser(t)
	codeLogin(t, api, s, "/dash")
	revoke()
	codeLogin(t, page, s, "/dash")
	revoke()
	start := time.Now()
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond)))
	if resp := apiGet(api, s.origin+"/api"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a script after a refused refresh: %d, want 401", resp.StatusCode)
	}
	if resp := page.Navigate(s.origin + "/dash"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/oauth/login") {
		t.Errorf("a page load after a refused refresh: %d %s, want a new login", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestRefreshWhileTheServerIsDown: the token still valid, requests go on
// with it; once it has expired, 503, and the session is kept for when the
// server is back.
func TestRefreshWhileTheServerIsDown(t *testing.T) {
	t.Parallel()
	s := newCodeSite(t, "", shortTokens, shortLived)
	b, start := loggedIn(t, s)
	first := tokenSeen(t, s)
	addr := s.providerSrv.Listener.Addr().String()
	s.providerSrv.Close()
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond)))
	if resp := apiGet(b, s.origin+"/api"); resp.StatusCode != http.StatusOK || tokenSeen(t, s) != first {
		t.Fatalf("due, server down, token valid: %d", resp.StatusCode)
	}
	time.Sleep(time.Until(start.Add(5500 * time.Millisecond)))
	if resp := apiGet(b, s.origin+"/api"); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(bodyOf(resp), "server_unavailable") {
		t.Fatalf("expired, server down: %d %s", resp.StatusCode, bodyOf(resp))
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("cannot listen on %s again: %v", addr, err)
	}
	p := &devprovider.Provider{Clients: map[string]string{"test-client": s.origin + "/oauth/callback"}, ExpiresIn: caddy.Duration(6 * time.Second)}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	serve(t, l, p, nil)
	if resp := apiGet(b, s.origin+"/api"); resp.StatusCode != http.StatusOK || tokenSeen(t, s) == first {
		t.Errorf("the server back: %d", resp.StatusCode)
	}
}

// TestCodeFlowSecretsStayOutOfLogs: across a login, a refresh and a
// failed exchange, no code, verifier, token or client secret is logged
// (debug level), shown or in the metrics.
func TestCodeFlowSecretsStayOutOfLogs(t *testing.T) {
	t.Parallel()
	s := newCodeSite(t, "client_secret_post", shortTokens, shortLived)
	logs := &testcaddy.Buffer{}
	s.h.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.DebugLevel))
	b := newBrowser(t)
	final, _, callback := codeLogin(t, b, s, "/dash")
	start := time.Now()
	pages := bodyOf(final)
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond)))
	api := apiGet(b, s.origin+"/api")
	pages += bodyOf(api) + bodyOf(b.Navigate(s.origin+"/oauth/session"))
	resp := b.Navigate(callback.String()) // the used code again: refused
	pages += bodyOf(resp)
	secrets := []string{testClientSecret, callback.Query().Get("code")}
	for _, tr := range s.tokenRequests {
		secrets = append(secrets, tr.form.Get("code_verifier"), tr.form.Get("refresh_token"))
	}
	for _, r := range s.upstream.seen {
		secrets = append(secrets, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}
	if len(s.tokenCalls("refresh_token")) == 0 {
		t.Fatal("no refresh happened")
	}
	out := logs.String()
	reg := prometheus.NewRegistry()
	if err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exposed strings.Builder
	for _, f := range families {
		exposed.WriteString(f.String())
	}
	if !strings.Contains(exposed.String(), "refreshes_total") {
		t.Fatal("the refresh metric is not exposed")
	}
	pages += exposed.String() // the metrics, held to the same rule
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		if strings.Contains(out, secret) || strings.Contains(pages, secret) {
			t.Errorf("a secret (%d bytes) appears in the logs, a page or the metrics", len(secret))
		}
	}
	if !strings.Contains(out, "session refreshed") {
		t.Errorf("the debug log does not show the refresh:\n%s", out)
	}
}

// TestRequireHeader: with require_header, a script's call or a write
// with the session cookie but without the header gets 403; page loads
// and the page's own images pass. same_site strict marks the cookie.
func TestRequireHeader(t *testing.T) {
	t.Parallel()
	s := newCodeSite(t, "", func(h *Handler) {
		h.RequireHeader = &RequiredHeader{Name: "X-CSRF", Value: "1"}
		h.SameSite = "strict"
	}, nil)
	b := newBrowser(t)
	first := b.Navigate(s.origin + "/dash")
	authorize := b.AuthorizationRequest(first)
	landing := b.Navigate(b.AuthorizeAt(authorize, true).String())
	if c := testbrowser.SessionSetCookie(landing); c == nil || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie: %+v, want SameSite=Strict", c)
	}
	if resp := b.Navigate(s.origin + "/dash"); resp.StatusCode != http.StatusOK {
		t.Errorf("a page load: %d", resp.StatusCode)
	}
	before := s.upstream.count()
	if resp := apiGet(b, s.origin+"/api"); resp.StatusCode != http.StatusForbidden || !strings.Contains(bodyOf(resp), "header_required") {
		t.Errorf("a script's call without the header: %d %s", resp.StatusCode, bodyOf(resp))
	}
	post, _ := http.NewRequest(http.MethodPost, s.origin+"/api", strings.NewReader("x=1"))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp := b.Do(post); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a form post without the header: %d", resp.StatusCode)
	}
	if s.upstream.count() != before {
		t.Error("a request without the header reached the upstream")
	}
	withHeader, _ := http.NewRequest(http.MethodPost, s.origin+"/api", strings.NewReader("x=1"))
	withHeader.Header.Set("X-CSRF", "1")
	if resp := b.Do(withHeader); resp.StatusCode != http.StatusOK {
		t.Errorf("a post with the header: %d", resp.StatusCode)
	}
	img, _ := http.NewRequest(http.MethodGet, s.origin+"/logo.png", nil)
	img.Header.Set("Sec-Fetch-Mode", "no-cors")
	if resp := b.Do(img); resp.StatusCode != http.StatusOK {
		t.Errorf("the page's image: %d", resp.StatusCode)
	}
}

// TestTwoInstancesShareOneRefresh: two instances on one Redis (each its
// own client and near-cache), 40 concurrent requests at expiry split
// between them: each refresh token reaches the server at most once, its
// reuse detection never fires, and every request is answered 200.
func TestTwoInstancesShareOneRefresh(t *testing.T) {
	t.Parallel()
	redis := testredis.Start(t)
	store := func(timeout string) []byte {
		return []byte(`{"type":"redis","url":"` + redis.URL + `","timeout":"` + timeout + `"}`)
	}
	s := newCodeSite(t, "", func(h *Handler) { shortTokens(h); h.StoreRaw = store("1s") }, shortLived)
	// Instance B: the same site's config, but another pool key (timeout),
	// so another Redis client and near-cache, as another process has.
	b2 := newTestHandler(t, func(h *Handler) {
		*h = Handler{OpenID: s.h.OpenID, ResponseType: ResponseTypeCode, ClientID: s.h.ClientID, RedirectURI: s.h.RedirectURI,
			Scopes: s.h.Scopes, Secret: testSecret, StoreRaw: store("900ms")}
		shortTokens(h)
	})
	l := listen(t)
	serve(t, l, b2, s.upstream)
	originB := "http://" + l.Addr().String()

	b, start := loggedIn(t, s)
	cookie := b.Cookie(s.origin, testbrowser.SessionCookie)
	reuses := devprovider.ReuseDetected()
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond)))
	allAnswered200(t, 40, func(i int) int {
		origin := s.origin
		if i%2 == 1 {
			origin = originB
		}
		return apiStatus(origin, cookie)
	})
	presented := map[string]int{}
	for _, c := range s.tokenCalls("refresh_token") {
		presented[c.form.Get("refresh_token")]++
	}
	for _, n := range presented {
		if n > 1 {
			t.Errorf("a refresh token was presented %d times", n)
		}
	}
	if len(presented) != 1 {
		t.Errorf("%d refreshes for one session at one expiry, want 1", len(presented))
	}
	if devprovider.ReuseDetected() != reuses {
		t.Error("the provider's reuse detection fired")
	}
}

// BenchmarkRefreshingRequest: a request that refreshes its session first
// (against the dev provider on loopback), beside one that does not.
func BenchmarkRefreshingRequest(b *testing.B) {
	for _, due := range []bool{false, true} {
		b.Run(map[bool]string{false: "no refresh due", true: "refresh due"}[due], func(b *testing.B) {
			s := newTestSite(b, siteOptions{handler: func(h *Handler) {
				useOpenID(h)
				h.ResponseType = ResponseTypeCode
			}})
			br := newBrowser(b)
			first := br.Navigate(s.origin + "/dash")
			landing := br.Navigate(br.AuthorizeAt(br.AuthorizationRequest(first), true).String())
			br.Navigate(s.origin + testbrowser.LandingLocation(b, landing))
			value := br.Cookie(s.origin, testbrowser.SessionCookie)
			b.ResetTimer()
			for b.Loop() {
				if due {
					b.StopTimer()
					sess, _, _ := s.h.store.Get(b.Context(), value)
					sess.RefreshAt = time.Now().Add(-time.Second)
					_, _, _ = s.h.store.Replace(b.Context(), value, sess)
					b.StartTimer()
				}
				resp := apiGet(br, s.origin+"/api")
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%d", resp.StatusCode)
				}
			}
		})
	}
}

// TestCodeFlowFormPost: response_mode form_post carries the code in the
// server's POST, which the callback takes like the query's.
func TestCodeFlowFormPost(t *testing.T) {
	t.Parallel()
	s := newCodeSite(t, "", func(h *Handler) { h.ResponseMode = ResponseModeFormPost }, nil)
	b := newBrowser(t)
	authorize := b.AuthorizationRequest(b.Navigate(s.origin + "/dash?x=2"))
	if u, _ := url.Parse(authorize); u.Query().Get("response_mode") != "form_post" || u.Query().Get("response_type") != "code" {
		t.Fatalf("authorization request: %s", authorize)
	}
	landing := b.SubmitFormPost(b.Decide(authorize, "alice", true))
	if final := b.Navigate(s.origin + testbrowser.LandingLocation(t, landing)); final.StatusCode != http.StatusOK || s.upstream.last(t).URL.RequestURI() != "/dash?x=2" {
		t.Fatalf("after a form_post code: %d", final.StatusCode)
	}
	if len(s.tokenCalls("authorization_code")) != 1 {
		t.Error("the posted code was not exchanged once")
	}
	// A code in the query is not taken when the server was asked to post it.
	other := newBrowser(t)
	resp := other.Navigate(s.origin + "/oauth/callback?code=x&state=y")
	testbrowser.AssertNoSession(t, resp)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a code in the query with form_post: %d, want 400", resp.StatusCode)
	}
}

// TestCodeFlowAcrossSecretRotation: a login started before a secret
// rotation finishes after it: its PKCE verifier derives from the secret
// that signed its state cookie, now a previous one.
func TestCodeFlowAcrossSecretRotation(t *testing.T) {
	t.Parallel()
	s := newCodeSite(t, "", nil, nil)
	rotated := newTestHandler(t, func(h *Handler) {
		*h = Handler{OpenID: s.h.OpenID, ResponseType: ResponseTypeCode, ClientID: s.h.ClientID, RedirectURI: s.h.RedirectURI,
			Scopes: s.h.Scopes, Secret: "a-new-secret-after-the-rotation-of-32-bytes", PreviousSecrets: []string{testSecret}}
	})
	l := listen(t)
	serve(t, l, rotated, s.upstream)
	b := newBrowser(t)
	callback := b.AuthorizeAt(b.AuthorizationRequest(b.Navigate(s.origin+"/dash")), true)
	callback.Host = "localhost:" + strings.TrimPrefix(l.Addr().String(), "127.0.0.1:") // the same host: the browser sends its cookies
	landing := b.Navigate(callback.String())
	if landing.StatusCode != http.StatusOK || testbrowser.SessionSetCookie(landing) == nil {
		t.Fatalf("finishing after the rotation: %d %s", landing.StatusCode, bodyOf(landing))
	}
}

// TestEndingAUserEndsRefreshedSessions: a code-flow session, refreshed
// (its record replaced), is still the user's in the store's index: ending
// the user (the admin API's call) ends it.
func TestEndingAUserEndsRefreshedSessions(t *testing.T) {
	t.Parallel()
	s := newCodeSite(t, "", shortTokens, shortLived)
	b, start := loggedIn(t, s)
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond)))
	if resp := apiGet(b, s.origin+"/api"); resp.StatusCode != http.StatusOK || len(s.tokenCalls("refresh_token")) != 1 {
		t.Fatalf("the refresh: %d, %d refreshes", resp.StatusCode, len(s.tokenCalls("refresh_token")))
	}
	n, err := s.h.store.(tokencache.Revoker).EndUser(t.Context(), "alice")
	if err != nil || n != 1 {
		t.Fatalf("ending alice: %d sessions, %v; want 1", n, err)
	}
	if resp := apiGet(b, s.origin+"/api"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after ending the user: %d, want 401", resp.StatusCode)
	}
}

// TestRefreshesInFlightAreBounded: with every refresh slot taken, a due
// session goes on with its still-valid token and makes no call; once the
// slots free up, the next request refreshes.
func TestRefreshesInFlightAreBounded(t *testing.T) {
	t.Parallel()
	s := newCodeSite(t, "", shortTokens, shortLived)
	b, start := loggedIn(t, s)
	first := tokenSeen(t, s)
	for range maxRefreshing {
		s.h.refreshes.calls <- struct{}{}
	}
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond)))
	if resp := apiGet(b, s.origin+"/api"); resp.StatusCode != http.StatusOK || tokenSeen(t, s) != first || len(s.tokenCalls("refresh_token")) != 0 {
		t.Fatalf("due with every slot taken: %d, %d refreshes", resp.StatusCode, len(s.tokenCalls("refresh_token")))
	}
	for range maxRefreshing {
		<-s.h.refreshes.calls
	}
	if resp := apiGet(b, s.origin+"/api"); resp.StatusCode != http.StatusOK || tokenSeen(t, s) == first {
		t.Errorf("with the slots free: %d, token changed %v", resp.StatusCode, tokenSeen(t, s) != first)
	}
}

// TestPerUserLimitWithCodeFlowSessions: max_sessions_per_user counts
// code-flow sessions, refreshed or not: a user's new login past the limit
// ends their oldest, and the refreshed one stays theirs in the index.
func TestPerUserLimitWithCodeFlowSessions(t *testing.T) {
	t.Parallel()
	s := newCodeSite(t, "", func(h *Handler) { shortTokens(h); h.MaxSessionsPerUser = 1 }, shortLived)
	first, start := loggedIn(t, s)
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond)))
	if resp := apiGet(first, s.origin+"/api"); resp.StatusCode != http.StatusOK || len(s.tokenCalls("refresh_token")) != 1 {
		t.Fatalf("the refresh: %d", resp.StatusCode)
	}
	second, _ := loggedIn(t, s)
	if resp := apiGet(first, s.origin+"/api"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the oldest session after a login past the limit: %d, want 401", resp.StatusCode)
	}
	if resp := apiGet(second, s.origin+"/api"); resp.StatusCode != http.StatusOK {
		t.Errorf("the newest session: %d", resp.StatusCode)
	}
}
