package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testredis"
)

// TestReloadKeepsSessions: 20 config reloads through the admin API while
// logged-in clients keep calling; not one 401 or 5xx.
func TestReloadKeepsSessions(t *testing.T) {
	s := newSite(t, siteOptions{})
	sitePort, providerPort := portOf(s.origin), portOf(s.provider)

	const clients = 4
	var cookies []string
	for i := 0; i < clients; i++ {
		b := newBrowser(t)
		if page, _ := b.Login(s.origin, "/"); page.StatusCode != http.StatusOK {
			t.Fatalf("login %d: %d", i, page.StatusCode)
		}
		cookies = append(cookies, jarCookie(t, b, s.origin, sessionCookie))
	}

	ok, bad, firstBad := underLoad(s.origin+"/api/load", cookies, func() {
		for i := 0; i < 20; i++ {
			opt := siteOptions{extra: fmt.Sprintf("param reload_generation %d", i)}
			s.caddy.Load(t, s.caddyfile(sitePort, providerPort, opt))
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
	})
	if bad != 0 {
		t.Fatalf("%d requests failed during reloads (first status %v), %d succeeded", bad, firstBad, ok)
	}
	if ok < 100 {
		t.Fatalf("only %d requests went through during the reloads", ok)
	}
	// The reloads took effect: the authorize URL carries the last generation.
	fresh := newBrowser(t)
	if authorize := fresh.AuthorizationRequest(fresh.Navigate(s.origin + "/")); !strings.Contains(authorize, "reload_generation=19") {
		t.Errorf("the last config is not in use: %s", authorize)
	}
	t.Logf("%d authenticated requests across 20 reloads, none refused", ok)
}

func apiCall(client *http.Client, target, cookie string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cookie", sessionCookie+"="+cookie)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func portOf(origin string) int {
	u, _ := url.Parse(origin)
	var p int
	fmt.Sscan(u.Port(), &p)
	return p
}

func jarCookie(t testing.TB, b *browser, origin, name string) string {
	t.Helper()
	v := b.Cookie(origin, name)
	if v == "" {
		t.Fatalf("no %s cookie in the browser", name)
	}
	return v
}

// twoInstances runs two Caddy processes serving the same public site (as
// behind a load balancer: both have the same redirect_uri and secret) with
// the given store; A also runs the dev provider.
type twoInstances struct {
	a, b             *testcaddy.Proc
	originA, originB string
	provider         string
	upstream         *recorder
}

// dataDir, when set, is Caddy storage the two share ("": each its own).
func newTwoInstances(t *testing.T, store, dataDir string) *twoInstances {
	t.Helper()
	ti := &twoInstances{upstream: newRecorder(t)}
	portA, portB, portP := testcaddy.FreePort(t), testcaddy.FreePort(t), testcaddy.FreePort(t)
	ti.originA, ti.originB = fmt.Sprintf("http://localhost:%d", portA), fmt.Sprintf("http://localhost:%d", portB)
	ti.provider = fmt.Sprintf("http://127.0.0.1:%d", portP)
	site := func(port int) string {
		return fmt.Sprintf(`
http://localhost:%d {
	implicit_grant {
		authorize_url %s/authorize
		client_id     shared-client
		redirect_uri  %s/oauth/callback
		secret        {env.IG_TEST_SECRET}
		validate      introspect %s/introspect
		%s
	}
	reverse_proxy 127.0.0.1:%d
}
`, port, ti.provider, ti.originA, ti.provider, store, ti.upstream.port)
	}
	provider := fmt.Sprintf("\nhttp://127.0.0.1:%d {\n\timplicit_grant_dev_provider {\n\t\tclient shared-client %s/oauth/callback\n\t}\n}\n", portP, ti.originA)
	env := "IG_TEST_SECRET=" + testSecret
	ti.a = testcaddy.Start(t, "", site(portA)+provider, dataDir, env)
	ti.b = testcaddy.Start(t, "", site(portB), dataDir, env)
	return ti
}

// loginAcross starts a login on A, has the relay POST land on B (as the
// balancer may send it), and checks the next request on A is authenticated.
func (ti *twoInstances) loginAcross(t *testing.T) *browser {
	t.Helper()
	br := newBrowser(t)
	first := br.Navigate(ti.originA + "/reports?id=9")
	if first.StatusCode != http.StatusFound {
		t.Fatalf("first visit on A: %d", first.StatusCode)
	}
	callback := br.AuthorizeAt(br.AuthorizationRequest(first), true)
	token := tokenFrom(t, callback)
	// Cookies are per host, not port: the browser sends A's cookies to B.
	resp := br.RelayPost(ti.originB+"/oauth/callback", callback.EscapedFragment(), ti.originA)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("relay POST on B: %d %s", resp.StatusCode, bodyOf(resp))
	}
	page := br.Navigate(ti.originA + "/reports?id=9")
	if page.StatusCode != http.StatusOK {
		t.Fatalf("next request on A: %d", page.StatusCode)
	}
	if got := ti.upstream.last(t).Header.Get("Authorization"); got != "Bearer "+token {
		t.Fatalf("upstream via A got %q", got)
	}
	return br
}

func TestTwoInstancesRedis(t *testing.T) {
	redis := testredis.Start(t)
	ti := newTwoInstances(t, "store redis "+redis.URL, "")
	br := ti.loginAcross(t)
	cookie := jarCookie(t, br, ti.originA, sessionCookie)

	// A replay of the same state on A is refused: B's claim is in Redis.
	client := &http.Client{}
	if status, _ := apiCall(client, ti.originA+"/api/x", cookie); status != http.StatusOK {
		t.Fatalf("A before logout: %d", status)
	}
	// Logout on B; A must refuse the cookie within 100 ms.
	req, _ := http.NewRequest(http.MethodPost, ti.originB+"/oauth/logout", nil)
	req.Header.Set("Cookie", sessionCookie+"="+cookie)
	req.Header.Set("Origin", ti.originA) // the public origin both instances serve: a same-origin POST
	if resp, err := client.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("logout on B: %v %v", resp, err)
	}
	start := time.Now()
	for {
		status, err := apiCall(client, ti.originA+"/api/x", cookie)
		if err == nil && status == http.StatusUnauthorized {
			break
		}
		if time.Since(start) > 100*time.Millisecond {
			t.Fatalf("A still accepts the session %v after logout on B (status %d)", time.Since(start), status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("A refused the logged-out session after %v", time.Since(start))
}

func TestTwoInstancesReplayAcrossInstancesRefused(t *testing.T) {
	redis := testredis.Start(t)
	ti := newTwoInstances(t, "store redis "+redis.URL, "")
	br := newBrowser(t)
	first := br.Navigate(ti.originA + "/")
	callback := br.AuthorizeAt(br.AuthorizationRequest(first), true)
	u, _ := url.Parse(ti.originA)
	saved := br.Client.Jar.Cookies(u) // the state cookie, copied
	if resp := br.RelayPost(ti.originB+"/oauth/callback", callback.EscapedFragment(), ti.originA); resp.StatusCode != http.StatusOK {
		t.Fatalf("first use on B: %d", resp.StatusCode)
	}
	resp := testbrowser.ReplayPost(t, ti.originA+"/oauth/callback", callback.EscapedFragment(), ti.originA, saved)
	assertNoSession(t, resp)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replay on A of a state used on B: %d, want 400", resp.StatusCode)
	}
}

func TestTwoInstancesCookieStore(t *testing.T) {
	ti := newTwoInstances(t, "store cookie", "")
	ti.loginAcross(t)
}

// TestRedisOutageFailsClosed: Redis stopped mid-run → 503 (JSON for API
// calls, a page for navigations), Caddy keeps running; Redis back → the
// same session works again without restarting Caddy.
func TestRedisOutageFailsClosed(t *testing.T) {
	redis := testredis.StartPersistent(t)
	s := newSite(t, siteOptions{extra: "store redis " + redis.URL + " {\n\t\t\ttimeout 300ms\n\t\t}"})
	b := newBrowser(t)
	if page, _ := b.Login(s.origin, "/"); page.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", page.StatusCode)
	}
	cookie := jarCookie(t, b, s.origin, sessionCookie)
	client := &http.Client{Timeout: 5 * time.Second}

	redis.Stop()
	deadline := time.Now().Add(3 * time.Second)
	var status int
	for time.Now().Before(deadline) {
		status, _ = apiCall(client, s.origin+"/api/x", cookie)
		if status == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status != http.StatusServiceUnavailable {
		t.Fatalf("with Redis down: %d, want 503", status)
	}
	req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/x", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cookie", sessionCookie+"="+cookie)
	resp := b.Do(req)
	if !strings.Contains(bodyOf(resp), `"error":"store_unavailable"`) {
		t.Errorf("503 body for an API call: %s", bodyOf(resp))
	}
	nav := b.Navigate(s.origin + "/")
	if nav.StatusCode != http.StatusServiceUnavailable || !strings.Contains(bodyOf(nav), "Sign-in is unavailable") {
		t.Errorf("navigation with Redis down: %d %s", nav.StatusCode, bodyOf(nav))
	}
	// A burst of requests during the outage neither hangs nor crashes Caddy.
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, err := apiCall(client, s.origin+"/api/x", cookie); err != nil || st != http.StatusServiceUnavailable {
				t.Errorf("during the outage: %d %v", st, err)
			}
		}()
	}
	wg.Wait()
	if !s.caddy.Alive() {
		t.Fatal("caddy died during the outage")
	}

	if err := redis.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		status, err := apiCall(client, s.origin+"/api/x", cookie)
		if err == nil && status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Redis came back: %d %v", status, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(s.caddy.Output.String(), "panic") {
		t.Error("caddy logged a panic")
	}
}

// TestCookieStoreLargeToken: a 6 KB JWT is sealed into chunk cookies, each
// Set-Cookie under 4096 bytes; the upstream gets the exact token; logout
// removes every chunk.
func TestCookieStoreLargeToken(t *testing.T) {
	s := newSite(t, siteOptions{extra: "store cookie", providerExtra: "access_tokens jwt\n\t\ttoken_size 6144"})
	b := newBrowser(t)
	first := b.Navigate(s.origin + "/big")
	callback := b.AuthorizeAt(b.AuthorizationRequest(first), true)
	token := tokenFrom(t, callback)
	if len(token) < 6000 || strings.Count(token, ".") != 2 {
		t.Fatalf("provider issued a %d-byte token", len(token))
	}
	resp := b.RelayPost(s.origin+"/oauth/callback", callback.EscapedFragment(), s.origin)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("relay: %d %s", resp.StatusCode, bodyOf(resp))
	}
	chunks := 0
	for _, line := range resp.Header.Values("Set-Cookie") {
		if len(line) >= 4096 {
			t.Errorf("a Set-Cookie of %d bytes", len(line))
		}
		if strings.HasPrefix(line, sessionCookie+"=") || strings.HasPrefix(line, sessionCookie+"_") && !strings.Contains(line, "_state_") {
			chunks++
		}
	}
	if chunks < 2 {
		t.Fatalf("the session was not split: %d cookie(s)", chunks)
	}
	if page := b.Navigate(s.origin + "/big"); page.StatusCode != http.StatusOK {
		t.Fatalf("with the chunked session: %d", page.StatusCode)
	}
	if got := s.upstream.last(t).Header.Get("Authorization"); got != "Bearer "+token {
		t.Fatalf("upstream got a %d-byte Authorization, want the exact token", len(got))
	}
	if strings.Contains(s.upstream.last(t).Header.Get("Cookie"), sessionCookie) {
		t.Error("chunk cookies reached the upstream")
	}

	out := b.Navigate(s.origin + "/oauth/logout")
	deleted := 0
	for _, c := range out.Cookies() {
		if strings.HasPrefix(c.Name, sessionCookie) && c.MaxAge < 0 {
			deleted++
		}
	}
	if deleted != chunks {
		t.Errorf("logout deleted %d of %d chunk cookies", deleted, chunks)
	}
	if next := b.Navigate(s.origin + "/big"); next.StatusCode != http.StatusFound {
		t.Errorf("after logout: %d", next.StatusCode)
	}
}

// TestSecretRotationUnderLoad: reloading with a new secret first and the
// old one after it logs nobody out, with any store, while logged-in
// clients keep calling; a login started before the rotation finishes after
// it. Dropping the old secret later ends what only it sealed (the cookie
// and Redis stores' sessions); the memory store seals nothing.
func TestSecretRotationUnderLoad(t *testing.T) {
	for name, store := range map[string]func() string{
		"memory": func() string { return "" },
		"cookie": func() string { return "store cookie" },
		"redis":  func() string { return "store redis " + testredis.Start(t).URL },
	} {
		t.Run(name, func(t *testing.T) {
			opt := siteOptions{extra: store()}
			s := newSite(t, opt)
			sitePort, providerPort := portOf(s.origin), portOf(s.provider)
			var cookies []string
			for i := 0; i < 3; i++ {
				b := newBrowser(t)
				b.Login(s.origin, "/")
				cookies = append(cookies, jarCookie(t, b, s.origin, sessionCookie))
			}
			pending := newBrowser(t)
			authorize := pending.AuthorizationRequest(pending.Navigate(s.origin + "/started-before"))

			rotated := opt
			rotated.secret = "{env.IG_NEW_SECRET} {env.IG_TEST_SECRET}"
			ok, bad, _ := underLoad(s.origin+"/api/load", cookies, func() {
				for i := 0; i < 3; i++ {
					s.caddy.Load(t, s.caddyfile(sitePort, providerPort, rotated))
					time.Sleep(100 * time.Millisecond)
				}
			})
			if bad != 0 || ok < 30 {
				t.Fatalf("during the rotation: %d refused, %d served", bad, ok)
			}
			if status, back := pending.FinishAtCallback(pending.AuthorizeAt(authorize, true)); status != http.StatusOK || back != "/started-before" {
				t.Errorf("a login started before the rotation: %d %q", status, back)
			}
			fresh := newBrowser(t)
			if page, _ := fresh.Login(s.origin, "/after"); page.StatusCode != http.StatusOK {
				t.Fatalf("a login after the rotation: %d", page.StatusCode)
			}

			// The old secret dropped: what only it sealed ends.
			done := opt
			done.secret = "{env.IG_NEW_SECRET}"
			s.caddy.Load(t, s.caddyfile(sitePort, providerPort, done))
			client := &http.Client{Timeout: 5 * time.Second}
			status, _ := apiCall(client, s.origin+"/api/x", cookies[0])
			want := http.StatusUnauthorized
			if name == "memory" {
				want = http.StatusOK
			}
			if status != want {
				t.Errorf("a session from before, with the old secret dropped: %d, want %d", status, want)
			}
			if status, _ := apiCall(client, s.origin+"/api/x", jarCookie(t, fresh, s.origin, sessionCookie)); status != http.StatusOK {
				t.Errorf("a session sealed with the new secret: %d", status)
			}
		})
	}
}

// underLoad keeps each cookie's session busy with calls to url while
// during runs, and counts the answers. A transport error is retried: a
// reload may close a keep-alive connection under a request.
func underLoad(url string, cookies []string, during func()) (ok, bad int64, firstBad any) {
	ctx, stop := context.WithCancel(context.Background())
	var okN, badN atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for _, c := range cookies {
		wg.Add(1)
		go func(cookie string) {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for ctx.Err() == nil {
				status, err := apiCall(client, url, cookie)
				switch {
				case err != nil:
				case status == http.StatusOK:
					okN.Add(1)
				default:
					badN.Add(1)
					first.CompareAndSwap(nil, status)
				}
			}
		}(c)
	}
	during()
	stop()
	wg.Wait()
	return okN.Load(), badN.Load(), first.Load()
}
