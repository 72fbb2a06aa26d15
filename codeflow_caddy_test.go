package implicitgrant

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
)

// TestCodeFlowInARealCaddy runs a code-flow site in this process's Caddy,
// with the access log filter docs/security.md gives and an events
// subscription, logs in and refreshes, and finds the code, the state, the
// PKCE verifier's challenge, the tokens and the session id in neither the
// access log nor any event, while the callback's line and the login event
// are there.
func TestCodeFlowInARealCaddy(t *testing.T) {
	sitePort, providerPort := testcaddy.FreePort(t), testcaddy.FreePort(t)
	origin, provider := fmt.Sprintf("http://localhost:%d", sitePort), fmt.Sprintf("http://127.0.0.1:%d", providerPort)
	accessLog := filepath.Join(t.TempDir(), "access.log")
	caddyfile := fmt.Sprintf(`{
	admin off
}

%[1]s {
	log {
		output file %[3]s
		format filter {
			wrap json
			fields {
				request>uri query {
					replace code REDACTED
					replace state REDACTED
				}
			}
		}
	}
	implicit_grant {
		openid %[2]s
		response_type code
		client_id caddy-code-client
		redirect_uri %[1]s/oauth/callback
		expiry_leeway 1s
		renew_before 3s
		end_session
		secret %[4]s
	}
	respond "dashboard"
}

%[2]s {
	implicit_grant_dev_provider {
		client caddy-code-client %[1]s/oauth/callback
		expires_in 6s
	}
}
`, origin, provider, accessLog, testSecret)
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["apps"].(map[string]any)["events"] = map[string]any{"subscriptions": []any{map[string]any{
		"events":   []string{"implicit_grant.login", "implicit_grant.login_failed"},
		"handlers": []any{map[string]any{"handler": "implicit_grant_test_recorder"}},
	}}}
	config, _ := json.Marshal(cfg)
	recorded.Lock()
	recorded.events = nil
	recorded.Unlock()
	if err := caddy.Load(config, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	b := testbrowser.New(t)
	authorize, _ := url.Parse(b.AuthorizationRequest(b.Navigate(origin + "/dash")))
	callback := b.AuthorizeAt(authorize.String(), true)
	landing := b.Navigate(callback.String())
	b.Navigate(origin + testbrowser.LandingLocation(t, landing))
	start := time.Now()
	session := b.Cookie(origin, testbrowser.SessionCookie)
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond))) // a refresh is due
	if resp := b.Navigate(origin + "/dash"); resp.StatusCode != 200 {
		t.Fatalf("after the refresh: %d", resp.StatusCode)
	}
	b.Navigate(callback.String()) // the spent code again: refused
	// end_session: the logout page leads to the provider with the ID token
	// as hint; the provider sends the browser back with the state.
	logout := b.Navigate(origin + "/oauth/logout")
	endSession := endSessionRequest(t, logout)
	back := b.Navigate(endSession.String())
	b.Navigate(back.Header.Get("Location"))

	time.Sleep(200 * time.Millisecond) // the log file and the events are written asynchronously
	raw, err := os.ReadFile(accessLog)
	if err != nil {
		t.Fatal(err)
	}
	logged := string(raw)
	if !strings.Contains(logged, "/oauth/callback?") || !strings.Contains(logged, "REDACTED") {
		t.Fatalf("the access log has no filtered callback line:\n%s", logged)
	}
	recorded.Lock()
	var events strings.Builder
	for _, e := range recorded.events {
		fmt.Fprintf(&events, "%s %v\n", e.Name(), e.Data)
	}
	recorded.Unlock()
	if !strings.Contains(events.String(), "implicit_grant.login map[store:memory trust:openid user:alice]") {
		t.Errorf("no login event among:\n%s", events.String())
	}
	for name, secret := range map[string]string{
		"code": callback.Query().Get("code"), "state": callback.Query().Get("state"),
		"code_challenge": authorize.Query().Get("code_challenge"), "session id": session,
		"id_token_hint": endSession.Query().Get("id_token_hint"), "logout state": endSession.Query().Get("state"),
	} {
		if secret == "" {
			t.Fatalf("the test has no %s to look for", name)
		}
		if strings.Contains(logged, secret) || strings.Contains(events.String(), secret) {
			t.Errorf("the %s appears in the access log or an event", name)
		}
	}
}
