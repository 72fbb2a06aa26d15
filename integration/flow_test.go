package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
)

// TestLoginToDeepURL is the whole flow: a deep URL with a query, the
// provider's consent, the relay, and back to the same URL with the token
// sent upstream. It runs against servers that spell token_type differently.
func TestLoginToDeepURL(t *testing.T) {
	for _, tokenType := range []string{"Bearer", "bearer", "BEARER"} {
		t.Run(tokenType, func(t *testing.T) {
			t.Parallel()
			s := newSite(t, siteOptions{providerExtra: "token_type " + tokenType, extra: "show_dialog\n\t\tparam audience https://api.example"})
			b := newBrowser(t)
			target := "/reports/q3?range=7d&tag=a%20b&x=%2F"

			first := b.Navigate(s.origin + target)
			if first.StatusCode != http.StatusFound {
				t.Fatalf("want 302, got %d", first.StatusCode)
			}
			au, _ := url.Parse(b.AuthorizationRequest(first))
			q := au.Query()
			want := map[string]string{
				"response_type": "token", "client_id": "test-client", "redirect_uri": s.origin + "/oauth/callback",
				"scope": "profile reports:read", "show_dialog": "true", "audience": "https://api.example",
			}
			for k, v := range want {
				if q.Get(k) != v {
					t.Errorf("authorize %s = %q, want %q", k, q.Get(k), v)
				}
			}
			if len(q.Get("state")) < 22 { // 128 bits in base64url
				t.Errorf("state %d characters, want at least 22", len(q.Get("state")))
			}
			if au.Scheme+"://"+au.Host+au.Path != s.provider+"/authorize" {
				t.Errorf("redirected to %s", au)
			}

			callback := b.AuthorizeAt(au.String(), true)
			token := tokenFrom(t, callback)
			relayResp := b.RelayPost(s.origin+"/oauth/callback", callback.EscapedFragment(), s.origin)
			if relayResp.StatusCode != http.StatusOK {
				t.Fatalf("relay post: %d %s", relayResp.StatusCode, bodyOf(relayResp))
			}
			if !strings.Contains(bodyOf(relayResp), `"location":"/reports/q3?range=7d\u0026tag=a%20b\u0026x=%2F"`) {
				t.Fatalf("relay answer: %s", bodyOf(relayResp))
			}
			c := sessionSetCookie(relayResp)
			if c == nil || c.Value == "" {
				t.Fatal("no session cookie")
			}
			if c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" { // plain http on loopback: no Secure (see TestSecureSiteCookies)
				t.Errorf("cookie attributes: %+v", c)
			}
			if c.MaxAge <= 0 || c.MaxAge > 3600 {
				t.Errorf("cookie Max-Age %d, want within the token's 3600 s", c.MaxAge)
			}
			if strings.Contains(c.Value, token) {
				t.Error("the session cookie carries the token")
			}

			page := b.Navigate(s.origin + target)
			if page.StatusCode != http.StatusOK || bodyOf(page) != "upstream saw "+target {
				t.Fatalf("back at the target: %d %q", page.StatusCode, bodyOf(page))
			}
			up := s.upstream.last(t)
			if got := up.Header.Get("Authorization"); got != "Bearer "+token {
				t.Errorf("upstream Authorization = %q, want the exact token", got)
			}
			if strings.Contains(up.Header.Get("Cookie"), "implicit_grant") {
				t.Errorf("upstream got our cookies: %q", up.Header.Get("Cookie"))
			}
			if strings.Contains(up.URL.RawQuery, token) || strings.Contains(up.URL.RawQuery, "state") {
				t.Error("token or state in the upstream URL")
			}

			// A client-sent Authorization is replaced, other cookies survive.
			req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/data", nil)
			req.Header.Set("Authorization", "Bearer forged-by-client")
			req.Header.Set("Accept", "application/json")
			req.AddCookie(&http.Cookie{Name: "theme", Value: "dark"})
			if resp := b.Do(req); resp.StatusCode != http.StatusOK {
				t.Fatalf("API call with a session: %d", resp.StatusCode)
			}
			up = s.upstream.last(t)
			if vals := up.Header.Values("Authorization"); len(vals) != 1 || vals[0] != "Bearer "+token {
				t.Errorf("upstream Authorization = %q, want only the session's token", vals)
			}
			if got := up.Header.Get("Cookie"); got != "theme=dark" {
				t.Errorf("upstream Cookie = %q, want only theme=dark", got)
			}
		})
	}
}

// TestErrorPagesHandleErrors: with error_pages handle_errors the site's
// routes render every error, with the details in placeholders.
func TestErrorPagesHandleErrors(t *testing.T) {
	s := newSite(t, siteOptions{
		extra:     "error_pages handle_errors",
		siteExtra: "handle_errors {\n\t\trespond \"custom {err.status_code} {http.implicit_grant.error} login={http.implicit_grant.login_url} retry={http.implicit_grant.retry_url}\"\n\t}",
	})
	b := newBrowser(t)
	req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/x", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Referer", s.origin+"/dash?x=1")
	resp := b.Do(req)
	if want := "custom 401 unauthenticated login=/oauth/login?return_to=%2Fdash%3Fx%3D1 retry=/dash?x=1"; resp.StatusCode != http.StatusUnauthorized || bodyOf(resp) != want {
		t.Errorf("401 through handle_errors: %d %q, want %q", resp.StatusCode, bodyOf(resp), want)
	}
	resp = b.Navigate(s.origin + "/oauth/callback?error=access_denied&return_to=%2Freports")
	if want := "custom 403 access_denied login=/oauth/login?return_to=%2Freports retry=/reports"; resp.StatusCode != http.StatusForbidden || bodyOf(resp) != want {
		t.Errorf("denial through handle_errors: %d %q, want %q", resp.StatusCode, bodyOf(resp), want)
	}
}

// TestOtherSitesHandleErrors: another site on the same listener with
// handle_errors (the Caddyfile adapter puts every site's error routes in
// one server-wide list) changes nothing about this site's own answers.
func TestOtherSitesHandleErrors(t *testing.T) {
	s := newSite(t, siteOptions{otherSite: "handle_errors {\n\t\trespond \"b error page\"\n\t}\n\trespond \"site b\""})
	b := newBrowser(t)
	req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/x", nil)
	req.Header.Set("Accept", "application/json")
	resp := b.Do(req)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(bodyOf(resp), `"login_url":"/oauth/login?return_to=%2F"`) {
		t.Errorf("API call without a session: %d %q, want the module's JSON 401", resp.StatusCode, bodyOf(resp))
	}
	resp = b.Navigate(s.origin + "/oauth/callback?error=access_denied")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(bodyOf(resp), "Sign-in was declined") {
		t.Errorf("denial: %d %q, want the module's page", resp.StatusCode, bodyOf(resp))
	}
	// Site B is really there, with its own error routes.
	other, _ := http.NewRequest(http.MethodGet, s.origin+"/", nil)
	other.Host = "b.example"
	if resp := b.Do(other); bodyOf(resp) != "site b" {
		t.Errorf("site b answered %q", bodyOf(resp))
	}
}

// TestIdentityReachesUpstreamAndAccessLog: with header_up, the upstream is
// told who the user is, whatever the client sent in the same header, and
// Caddy's access log names the user.
func TestIdentityReachesUpstreamAndAccessLog(t *testing.T) {
	s := newSite(t, siteOptions{proxyExtra: "header_up X-Forwarded-User {http.auth.user.id}\n\t\theader_up X-Forwarded-Email {http.auth.user.email}"})
	b := newBrowser(t)

	forged := func(target string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, s.origin+target, nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-Forwarded-User", "admin")
		req.Header.Set("X-Forwarded-Email", "admin@corp.example")
		return b.Do(req)
	}
	if resp := forged("/api/before-login"); resp.StatusCode != http.StatusUnauthorized || s.upstream.count() != 0 {
		t.Fatalf("without a session: %d, upstream reached %d times", resp.StatusCode, s.upstream.count())
	}

	b.Login(s.origin, "/dash")
	if resp := forged("/api/who"); resp.StatusCode != http.StatusOK {
		t.Fatalf("with a session: %d", resp.StatusCode)
	}
	up := s.upstream.last(t)
	if got := up.Header.Values("X-Forwarded-User"); len(got) != 1 || got[0] != "alice" {
		t.Errorf("upstream X-Forwarded-User = %q, want only alice", got)
	}
	if got := up.Header.Values("X-Forwarded-Email"); len(got) != 1 || got[0] != "alice@corp.example" {
		t.Errorf("upstream X-Forwarded-Email = %q", got)
	}
	time.Sleep(200 * time.Millisecond) // let the access log line reach the pipe
	var logged bool
	for _, line := range strings.Split(s.caddy.Output.String(), "\n") {
		if strings.Contains(line, `"logger":"http.log.access`) && strings.Contains(line, `"uri":"/api/who"`) {
			logged = true
			if !strings.Contains(line, `"user_id":"alice"`) {
				t.Errorf("the access log line does not name the user:\n%s", line)
			}
		}
	}
	if !logged {
		t.Error("no access log line for /api/who")
	}
}

// TestUnderHandlePath: under handle_path (the prefix stripped before the
// module sees the request) the callback is still the relay page, the login
// comes back to the prefixed URL, and the upstream gets the stripped path
// with the token; login_path and logout_path default to the callback's
// siblings, inside the prefix.
func TestUnderHandlePath(t *testing.T) {
	origin, up := startUnderHandlePath(t, "authorize_url %[1]s/authorize\n\t\t\tvalidate introspect %[1]s/introspect")

	b := newBrowser(t)
	first := b.Navigate(origin + "/app/reports?x=1")
	if loc := first.Header.Get("Location"); first.StatusCode != http.StatusFound || loc != "/app/oauth/login?return_to=%2Fapp%2Freports%3Fx%3D1" {
		t.Fatalf("first visit: %d %q", first.StatusCode, loc)
	}
	page, back := b.Login(origin, "/app/reports?x=1")
	if back != "/app/reports?x=1" || page.StatusCode != http.StatusOK {
		t.Fatalf("login came back to %q: %d", back, page.StatusCode)
	}
	seen := up.last(t)
	if seen.URL.RequestURI() != "/reports?x=1" || !strings.HasPrefix(seen.Header.Get("Authorization"), "Bearer ") {
		t.Errorf("upstream saw %s with %q", seen.URL.RequestURI(), seen.Header.Get("Authorization"))
	}
	if out := b.Navigate(origin + "/app/oauth/logout"); out.StatusCode != http.StatusOK || !strings.Contains(bodyOf(out), "Signed out") {
		t.Errorf("logout under the prefix: %d", out.StatusCode)
	}
}

// TestEndSessionUnderHandlePath: with end_session under handle_path, the
// server sends the browser back to the prefixed logout path, where the
// module (seeing the stripped path) still checks the state and says the
// person is signed out at the server too.
func TestEndSessionUnderHandlePath(t *testing.T) {
	origin, _ := startUnderHandlePath(t, "openid %[1]s\n\t\t\tend_session")

	b := newBrowser(t)
	if page, _ := b.Login(origin, "/app/reports"); page.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", page.StatusCode)
	}
	endSession := b.AuthorizationRequest(b.Navigate(origin + "/app/oauth/logout")) // the page's link to the end_session_endpoint
	if !strings.Contains(endSession, "post_logout_redirect_uri="+url.QueryEscape(origin+"/app/oauth/logout")) {
		t.Fatalf("end session request: %s", endSession)
	}
	back := b.Navigate(endSession)
	if page := b.Navigate(back.Header.Get("Location")); page.StatusCode != http.StatusOK || !strings.Contains(bodyOf(page), "signed out of this site and at the authorization server") {
		t.Errorf("back at the prefixed logout path: %d %s", page.StatusCode, bodyOf(page))
	}
}

// TestBearerReachesUpstreamAndAccessLog: a script's own token (accept_bearer,
// checked by introspection) goes upstream as it came, header_up names its
// subject, and Caddy's access log records it as the user.
func TestBearerReachesUpstreamAndAccessLog(t *testing.T) {
	s := newSite(t, siteOptions{extra: "accept_bearer dashboard-api", providerExtra: "service svc-reporter svc-secret dashboard-api",
		proxyExtra: "header_up X-Forwarded-User {http.auth.user.id}"})
	token := testbrowser.ServiceToken(t, s.provider, "svc-reporter", "svc-secret")
	req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/report", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Forwarded-User", "admin")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the script's call: %v %v", resp.StatusCode, err)
	}
	up := s.upstream.last(t)
	if got := up.Header.Values("X-Forwarded-User"); len(got) != 1 || got[0] != "svc-reporter" || up.Header.Get("Authorization") != "Bearer "+token {
		t.Errorf("upstream X-Forwarded-User = %q, Authorization its own: %v", got, up.Header.Get("Authorization") == "Bearer "+token)
	}
	time.Sleep(200 * time.Millisecond) // let the access log line reach the pipe
	logged := false
	for _, line := range strings.Split(s.caddy.Output.String(), "\n") {
		if strings.Contains(line, `"logger":"http.log.access`) && strings.Contains(line, `"uri":"/api/report"`) {
			logged = true
			if !strings.Contains(line, `"user_id":"svc-reporter"`) {
				t.Errorf("the access log line does not name the script's subject:\n%s", line)
			}
			if strings.Contains(line, token) {
				t.Error("the access log line holds the bearer token")
			}
		}
	}
	if !logged {
		t.Error("no access log line for /api/report")
	}
}

// startUnderHandlePath runs a site whose implicit_grant (with trust, a
// format whose %[1]s is the provider's origin) is inside handle_path
// /app/*, in front of a recording upstream: the site's origin, the upstream.
func startUnderHandlePath(t *testing.T, trust string) (string, *recorder) {
	t.Helper()
	up := newRecorder(t)
	sitePort, providerPort := testcaddy.FreePort(t), testcaddy.FreePort(t)
	origin, provider := fmt.Sprintf("http://localhost:%d", sitePort), fmt.Sprintf("http://127.0.0.1:%d", providerPort)
	testcaddy.Start(t, "", fmt.Sprintf(`
http://localhost:%[1]d {
	handle_path /app/* {
		implicit_grant {
			client_id     prefixed
			redirect_uri  %[3]s/app/oauth/callback
			secret        {env.IG_TEST_SECRET}
			%[6]s
		}
		reverse_proxy 127.0.0.1:%[4]d
	}
}
http://127.0.0.1:%[5]d {
	implicit_grant_dev_provider {
		client prefixed %[3]s/app/oauth/callback
	}
}
`, sitePort, provider, origin, up.port, providerPort, fmt.Sprintf(trust, provider)), "", "IG_TEST_SECRET="+testSecret)
	return origin, up
}
