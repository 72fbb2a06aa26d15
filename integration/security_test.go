package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
)

// TestLogsNeverContainSecrets captures every log line Caddy writes, at
// debug level and with access logs on, through a login, proxied calls, a
// refused replay, a denial and a logout, plus Caddy's metrics, and looks for
// the secrets in them.
func TestLogsNeverContainSecrets(t *testing.T) {
	s := newSite(t, siteOptions{globals: "debug"})
	b := newBrowser(t)

	first := b.Navigate(s.origin + "/dash?q=1")
	au, _ := url.Parse(b.AuthorizationRequest(first))
	state := au.Query().Get("state")
	callback := b.AuthorizeAt(au.String(), true)
	token := tokenFrom(t, callback)
	if status, _ := b.FinishAtCallback(callback); status != http.StatusOK {
		t.Fatalf("login: %d", status)
	}
	u, _ := url.Parse(s.origin)
	var session string
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			session = c.Value
		}
	}
	b.Navigate(s.origin + "/dash?q=1")
	req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/items", nil)
	req.Header.Set("Accept", "application/json")
	b.Do(req)
	b.RelayPost(s.origin+"/oauth/callback", callback.EscapedFragment(), s.origin) // replay: refused, logged

	other := newBrowser(t)
	deniedStart := other.Navigate(s.origin + "/x")
	deniedState, _ := url.Parse(other.AuthorizationRequest(deniedStart))
	denied := other.AuthorizeAt(deniedState.String(), false)
	other.RelayPost(s.origin+"/oauth/callback", denied.EscapedFragment(), s.origin)
	b.Navigate(s.origin + "/oauth/logout")
	time.Sleep(200 * time.Millisecond) // let the last lines reach the pipe

	// Caddy's metrics, scraped from its admin endpoint, count the login
	// outcomes and carry no secret either.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.caddy.AdminPort))
	if err != nil {
		t.Fatal(err)
	}
	metricsText := bodyOf(resp)
	for _, want := range []string{
		`caddy_implicit_grant_logins_total{outcome="success"} 1`,
		`caddy_implicit_grant_logins_total{outcome="invalid_state"} 1`,
		`caddy_implicit_grant_logins_total{outcome="denied"} 1`,
		`caddy_implicit_grant_requests_total{result="authenticated"}`,
		`caddy_implicit_grant_requests_total{result="unauthenticated"}`,
		`caddy_implicit_grant_logouts_total 1`,
		`caddy_implicit_grant_login_duration_seconds_count 1`,
		`caddy_implicit_grant_login_duration_seconds_bucket{le="600"} 1`,
		`# TYPE caddy_implicit_grant_sessions gauge`,
	} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	logs := s.caddy.Output.String() + metricsText
	if !strings.Contains(logs, `"msg":"login finished"`) || !strings.Contains(logs, `"logger":"http.log.access`) {
		t.Fatalf("the logs do not cover the login (debug and access logs expected):\n%s", logs)
	}
	for name, secret := range map[string]string{
		"access token": token, "session id": session, "state": state,
		"denied login's state": deniedState.Query().Get("state"), "secret": s.secret,
	} {
		if secret == "" {
			t.Fatalf("test setup: no %s captured", name)
		}
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, secret) || strings.Contains(line, url.QueryEscape(secret)) {
				t.Errorf("the %s appears in a log or metrics line:\n%s", name, line)
			}
		}
	}
}

// TestLoginThroughBufferingHandlers: with templates, encode or intercept
// wrapping the module (inside one route, in that order), the login redirect
// keeps its Location, the start page leads to the authorization server, a
// login finishes, and no state reaches the logs.
func TestLoginThroughBufferingHandlers(t *testing.T) {
	for name, wrap := range map[string]string{
		"templates": "templates",
		"encode":    "encode gzip",
		"intercept": "intercept {\n\t\t\t@redirect status 3xx\n\t\t\thandle_response @redirect {\n\t\t\t\theader X-Intercepted yes\n\t\t\t}\n\t\t}",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			up := newRecorder(t)
			sitePort, providerPort := testcaddy.FreePort(t), testcaddy.FreePort(t)
			origin, provider := fmt.Sprintf("http://localhost:%d", sitePort), fmt.Sprintf("http://127.0.0.1:%d", providerPort)
			proc := testcaddy.Start(t, "debug", fmt.Sprintf(`
http://localhost:%[1]d {
	log {
		level DEBUG
	}
	route {
		%[6]s
		implicit_grant {
			authorize_url %[2]s/authorize
			client_id     test-client
			redirect_uri  %[3]s/oauth/callback
			secret        {env.IG_TEST_SECRET}
			validate      introspect %[2]s/introspect
		}
		reverse_proxy 127.0.0.1:%[4]d
	}
}
http://127.0.0.1:%[5]d {
	implicit_grant_dev_provider {
		client test-client %[3]s/oauth/callback
	}
}
`, sitePort, provider, origin, up.port, providerPort, wrap), "", "IG_TEST_SECRET="+testSecret)

			b := newBrowser(t)
			req, _ := http.NewRequest(http.MethodGet, origin+"/dash?x=1", nil)
			req.Header.Set("Accept", "text/html")
			req.Header.Set("Accept-Encoding", "gzip")
			req.Header.Set("Sec-Fetch-Mode", "navigate")
			first := b.Do(req)
			if first.StatusCode != http.StatusFound || first.Header.Get("Location") != "/oauth/login?return_to=%2Fdash%3Fx%3D1" {
				t.Fatalf("login redirect: %d, Location %q", first.StatusCode, first.Header.Get("Location"))
			}
			if name == "intercept" && first.Header.Get("X-Intercepted") != "yes" {
				t.Error("intercept did not handle the redirect: the test does not wrap the module")
			}
			authorize := b.AuthorizationRequest(first)
			au, _ := url.Parse(authorize)
			state := au.Query().Get("state")
			if status, back := b.FinishAtCallback(b.AuthorizeAt(authorize, true)); status != http.StatusOK || back != "/dash?x=1" {
				t.Fatalf("login: %d %q", status, back)
			}
			if page := b.Navigate(origin + "/dash?x=1"); page.StatusCode != http.StatusOK {
				t.Fatalf("with the session: %d", page.StatusCode)
			}
			time.Sleep(200 * time.Millisecond)
			logs := proc.Output.String()
			if !strings.Contains(logs, `"logger":"http.log.access`) {
				t.Fatal("no access log lines to check")
			}
			if state == "" || strings.Contains(logs, state) {
				t.Errorf("the state (%d bytes) is in the logs", len(state))
			}
		})
	}
}
