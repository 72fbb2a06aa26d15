package implicitgrant

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/implicitgrant/caddy-implicit-grant/devprovider"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testredis"
)

// bindingStores are the three stores, each test getting a store config of
// its own (Redis: a server per test).
func bindingStores(t *testing.T) map[string]func() json.RawMessage {
	return map[string]func() json.RawMessage{
		"memory": func() json.RawMessage { return nil },
		"cookie": func() json.RawMessage { return json.RawMessage(`{"type":"cookie"}`) },
		"redis": func() json.RawMessage {
			return json.RawMessage(fmt.Sprintf(`{"type":"redis","url":%q}`, testredis.Start(t).URL))
		},
	}
}

// TestSessionsBelongToTheirHandler: two handlers with the same server and
// client, one for the whole site and a stricter one for /admin/ (allow
// groups admins), or one per host: a session made by one is refused by
// the other, in every store; handlers configured alike share a login.
func TestSessionsBelongToTheirHandler(t *testing.T) {
	for name, store := range bindingStores(t) {
		t.Run(name, func(t *testing.T) {
			raw := store() // one store config for every handler here
			s := newTestSite(t, siteOptions{
				handler: func(h *Handler) {
					h.StoreRaw = raw
					h.Allow = []AllowRule{{Claim: "email", Patterns: []string{"*@corp.example"}}}
				},
				provider: func(p *devprovider.Provider) {
					p.Users = map[string]devprovider.User{"root": {Email: "root@corp.example", Groups: []string{"admins"}}}
				},
			})
			// The stricter handler for /admin/, with the same server, client,
			// secret and cookie name: on the same host, and alike on a second host.
			admin := newTestHandler(t, func(h *Handler) {
				h.AuthorizeURL, h.ClientID, h.RedirectURI = s.h.AuthorizeURL, s.h.ClientID, s.origin+"/admin/oauth/callback"
				h.Validation = &Validation{Mode: validateIntrospect, URL: s.provider + "/introspect"}
				h.Allow = []AllowRule{{Claim: "groups", Patterns: []string{"admins"}}}
				h.StoreRaw = raw
			})
			adminUp := &upstream{}
			adminL := listen(t)
			serve(t, adminL, admin, adminUp)
			// Another host, otherwise configured as the site.
			other := newTestHandler(t, func(h *Handler) {
				h.AuthorizeURL, h.ClientID, h.RedirectURI = s.h.AuthorizeURL, s.h.ClientID, "http://other.localhost/oauth/callback"
				h.Validation = s.h.Validation
				h.Allow = s.h.Allow
				h.StoreRaw = raw
			})
			otherUp := &upstream{}
			otherL := listen(t)
			serve(t, otherL, other, otherUp)
			// A twin of the site's handler (a second route with the same block).
			twin := newTestHandler(t, func(h *Handler) {
				h.AuthorizeURL, h.ClientID, h.RedirectURI, h.Validation, h.Allow, h.Scopes = s.h.AuthorizeURL, s.h.ClientID, s.h.RedirectURI, s.h.Validation, s.h.Allow, s.h.Scopes
				h.StoreRaw = raw
			})
			twinUp := &upstream{}
			twinL := listen(t)
			serve(t, twinL, twin, twinUp)

			alice := newBrowser(t)
			if page, _ := alice.LoginAs(s.origin, "/dash", "alice"); page.StatusCode != http.StatusOK {
				t.Fatalf("alice's login at the site: %d", page.StatusCode)
			}
			cookie := alice.Cookie(s.origin, testbrowser.SessionCookie)
			for _, tc := range []struct {
				name string
				addr string
				up   *upstream
				want int
			}{
				{"the /admin/ handler (allow groups admins)", adminL.Addr().String(), adminUp, http.StatusUnauthorized},
				{"the handler of another host", otherL.Addr().String(), otherUp, http.StatusUnauthorized},
				{"a handler configured alike", twinL.Addr().String(), twinUp, http.StatusOK},
			} {
				req, _ := http.NewRequest(http.MethodGet, "http://"+tc.addr+"/secret", nil)
				req.Header.Set("Accept", "application/json")
				req.Header.Set("Cookie", sessionCookieHeader(alice, s.origin, cookie))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("alice's session at %s: %d, want %d", tc.name, resp.StatusCode, tc.want)
				}
				if tc.want != http.StatusOK && tc.up.count() != 0 {
					t.Errorf("%s: the upstream was reached with another handler's session", tc.name)
				}
			}
		})
	}
}

// sessionCookieHeader is the Cookie header b sends to origin for its
// session (all chunks, with the cookie store).
func sessionCookieHeader(b *testbrowser.Browser, origin, _ string) string {
	u, _ := url.Parse(origin)
	var parts []string
	for _, c := range b.Client.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, testbrowser.SessionCookie) && !strings.Contains(c.Name, "_state_") {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	return strings.Join(parts, "; ")
}

// TestStatesBelongToTheirHandler: a login state issued by one handler
// (its cookie and the state in the authorization request) does not finish
// a login at another handler of the same host.
func TestStatesBelongToTheirHandler(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	admin := newTestHandler(t, func(h *Handler) {
		h.AuthorizeURL, h.ClientID, h.RedirectURI = s.h.AuthorizeURL, s.h.ClientID, s.origin+"/admin/oauth/callback"
		h.Validation = s.h.Validation
		h.Allow = []AllowRule{{Claim: "groups", Patterns: []string{"admins"}}}
	})
	l := listen(t)
	serve(t, l, admin, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	b := newBrowser(t)
	req, _ := http.NewRequest(http.MethodGet, "http://"+l.Addr().String()+"/admin/oauth/login?return_to=%2Fadmin%2F", nil)
	req.Header.Set("Accept", "text/html")
	start := b.Do(req)
	var stateCookies []string
	for _, c := range start.Cookies() {
		if strings.Contains(c.Name, "_state_") {
			stateCookies = append(stateCookies, c.Name+"="+c.Value)
		}
	}
	authorize := b.AuthorizationRequest(start)
	if len(stateCookies) != 1 || authorize == "" {
		t.Fatalf("the admin handler started no login: %d state cookies", len(stateCookies))
	}
	// The server answers the site's redirect_uri with that state.
	callback := b.AuthorizeAt(strings.Replace(authorize, url.QueryEscape(admin.RedirectURI), url.QueryEscape(s.h.RedirectURI), 1), true)
	post, _ := http.NewRequest(http.MethodPost, s.origin+"/oauth/callback", strings.NewReader(callback.EscapedFragment()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.Header.Set("Origin", s.origin)
	post.Header.Set("Cookie", stateCookies[0])
	resp, err := http.DefaultClient.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	if body := bodyOf(resp); resp.StatusCode == http.StatusOK || !strings.Contains(body, "invalid_state") {
		t.Errorf("the admin handler's state at the site's callback: %d %s; want invalid_state", resp.StatusCode, body)
	}
}
