package implicitgrant

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	_ "github.com/implicitgrant/caddy-implicit-grant/devprovider"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
)

// eventRecorder is an events handler module for this test: it keeps what
// it is sent.
type eventRecorder struct{}

var recorded struct {
	sync.Mutex
	events []caddy.Event
}

func (eventRecorder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "events.handlers.implicit_grant_test_recorder", New: func() caddy.Module { return new(eventRecorder) }}
}

func (eventRecorder) Handle(_ context.Context, e caddy.Event) error {
	recorded.Lock()
	recorded.events = append(recorded.events, e)
	recorded.Unlock()
	return nil
}

func init() { caddy.RegisterModule(eventRecorder{}) }

// TestEvents runs a real Caddy in this process, with an events app whose
// subscription sends the module's events to a recording handler, and sees
// a login, a failed login, a refused user and a logout, with their data,
// and no secret in any of them.
func TestEvents(t *testing.T) {
	sitePort, providerPort := testcaddy.FreePort(t), testcaddy.FreePort(t)
	origin, provider := fmt.Sprintf("http://localhost:%d", sitePort), fmt.Sprintf("http://127.0.0.1:%d", providerPort)
	config := fmt.Sprintf(`{
	"admin": {"disabled": true},
	"apps": {
		"events": {"subscriptions": [{
			"events": ["implicit_grant.login", "implicit_grant.login_failed", "implicit_grant.logout", "implicit_grant.forbidden", "implicit_grant.bearer"],
			"handlers": [{"handler": "implicit_grant_test_recorder"}]
		}]},
		"http": {"servers": {
			"site": {"listen": [":%[1]d"], "automatic_https": {"disable": true}, "routes": [{"handle": [
				{"handler": "implicit_grant", "authorize_url": "%[3]s/authorize", "client_id": "events-client",
				 "redirect_uri": "%[4]s/oauth/callback", "secret": %[5]q,
				 "validate": {"mode": "introspect", "url": "%[3]s/introspect"}, "accept_bearer": ["events-api"],
				 "allow": [{"claim": "email", "patterns": ["*@corp.example"]}]},
				{"handler": "static_response", "body": "dashboard"}
			]}]},
			"provider": {"listen": [":%[2]d"], "automatic_https": {"disable": true}, "routes": [{"handle": [
				{"handler": "implicit_grant_dev_provider", "clients": {"events-client": "%[4]s/oauth/callback"},
				 "users": {"mallory": {"email": "mallory@elsewhere.example"}},
				 "services": {"svc-events": {"secret": "svc-secret", "audience": "events-api"}}}
			]}]}
		}}
	}
}`, sitePort, providerPort, provider, origin, testSecret)
	if err := caddy.Load([]byte(config), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	alice := newBrowser(t)
	page, _ := alice.Login(origin, "/dash")
	if page.StatusCode != 200 {
		t.Fatalf("login: %d", page.StatusCode)
	}
	token := alice.Cookie(origin, "implicit_grant")
	alice.Navigate(origin + "/oauth/logout")

	mallory := newBrowser(t)
	start := mallory.AuthorizationRequest(mallory.Navigate(origin + "/dash"))
	mallory.FinishAtCallback(mallory.AuthorizeAs(start, "mallory", true))

	denied := newBrowser(t)
	start = denied.AuthorizationRequest(denied.Navigate(origin + "/dash"))
	denied.RelayPost(origin+"/oauth/callback", denied.AuthorizeAt(start, false).EscapedFragment(), origin)

	// A script's own bearer, then a made-up one.
	serviceToken := testbrowser.ServiceToken(t, provider, "svc-events", "svc-secret")
	for _, bearer := range []string{serviceToken, "made-up"} {
		req, _ := http.NewRequest(http.MethodGet, origin+"/api", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}

	time.Sleep(100 * time.Millisecond)
	recorded.Lock()
	defer recorded.Unlock()
	var seen []string
	for _, e := range recorded.events {
		seen = append(seen, fmt.Sprintf("%s %v", e.Name(), e.Data))
		for k, v := range e.Data {
			for _, secret := range []string{token, serviceToken} {
				if s, ok := v.(string); ok && secret != "" && strings.Contains(s, secret) {
					t.Errorf("event %s carries a session id or a token in %s", e.Name(), k)
				}
			}
		}
	}
	got := strings.Join(seen, "\n")
	for _, want := range []string{
		"implicit_grant.login map[store:memory trust:introspect user:alice]",
		"implicit_grant.logout map[user:alice]",
		"implicit_grant.forbidden map[rule:email *@corp.example user:mallory]",
		"implicit_grant.login_failed map[outcome:forbidden]",
		"implicit_grant.login_failed map[outcome:access_denied]",
		"implicit_grant.bearer map[outcome:accepted user:svc-events]",
		"implicit_grant.bearer map[outcome:invalid_token]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no event %q among:\n%s", want, got)
		}
	}
}
