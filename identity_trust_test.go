package implicitgrant

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/devprovider"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// loginStatus is the relay answer's status of a login as user.
func loginStatus(t *testing.T, s *testSite, user string) int {
	b := newBrowser(t)
	status, _ := b.FinishAtCallback(b.AuthorizeAs(b.AuthorizationRequest(b.Navigate(s.origin+"/dash")), user, true))
	return status
}

// TestEmailRulesNeedAVerifiedAddress: an account that merely claims a
// corp address (email_verified false: a self-service sign-up) is refused
// by allow email; a verified one enters, with its email upstream.
func TestEmailRulesNeedAVerifiedAddress(t *testing.T) {
	for _, mode := range []string{"openid", "userinfo"} {
		t.Run(mode, func(t *testing.T) {
			s := newTestSite(t, siteOptions{
				handler: func(h *Handler) {
					h.Allow = []AllowRule{{Claim: "email", Patterns: []string{"*@corp.example"}}}
					if mode == "openid" {
						useOpenID(h)
					} else {
						h.Validation = &Validation{Mode: validateUserinfo, URL: strings.TrimSuffix(h.AuthorizeURL, "/authorize") + "/userinfo"}
					}
				},
				provider: func(p *devprovider.Provider) {
					p.Users = map[string]devprovider.User{"eve": {Email: "ceo@corp.example", EmailUnverified: true}}
				},
			})
			if status := loginStatus(t, s, "eve"); status != http.StatusForbidden {
				t.Errorf("an unverified ceo@corp.example: %d, want 403", status)
			}
			if page, _ := newBrowser(t).LoginAs(s.origin, "/dash", "alice"); page.StatusCode != http.StatusOK || s.upstream.last(t).Header.Get("X-Seen-Email") != "alice@corp.example" {
				t.Errorf("a verified alice@corp.example: %d", page.StatusCode)
			}
		})
	}
}

// TestEmailVerifiedRule: what counts as verified, with and without
// allow_unverified_email.
func TestEmailVerifiedRule(t *testing.T) {
	rule := []AllowRule{{Claim: "email", Patterns: []string{"*@corp.example"}}}
	for _, tc := range []struct {
		verified any // nil: absent
		loose    bool
		admits   bool
	}{
		{true, false, true}, {"true", false, true}, {false, false, false}, {"false", false, false},
		{nil, false, false}, {nil, true, true}, {false, true, false}, {1.0, false, false},
	} {
		claims := map[string]any{"email": "a@corp.example"}
		if tc.verified != nil {
			claims["email_verified"] = tc.verified
		}
		h := &Handler{Allow: rule, AllowUnverifiedEmail: tc.loose}
		if got := h.refusedBy(authserver.Identity{Subject: "a", Claims: claims}) == nil; got != tc.admits {
			t.Errorf("email_verified %v, allow_unverified_email %v: admitted %v, want %v", tc.verified, tc.loose, got, tc.admits)
		}
	}
}

// TestControlCharactersRefuseTheLogin: an email with a NUL that would
// match *@corp.example once the NUL is dropped refuses the login, before
// any rule is matched.
func TestControlCharactersRefuseTheLogin(t *testing.T) {
	s := newTestSite(t, siteOptions{
		handler: func(h *Handler) { h.Allow = []AllowRule{{Claim: "email", Patterns: []string{"*@corp.example"}}} },
		provider: func(p *devprovider.Provider) {
			p.Users = map[string]devprovider.User{"evil": {Email: "evil@attacker.com\x00@corp.example"}, "crlf": {Email: "x@corp.example\r\nX-Admin: 1"}}
		},
	})
	for _, user := range []string{"evil", "crlf"} {
		if status := loginStatus(t, s, user); status != http.StatusUnauthorized {
			t.Errorf("%s's email with a control character: %d, want 401", user, status)
		}
	}
	if s.upstream.count() != 0 {
		t.Error("the upstream was reached")
	}
}

// TestValidateNoneCannotEvictEveryone: with validate none, made-up tokens
// open sessions without a subject; 2,000 of them from one address, into a
// store of 640, leave another address's session alone: sessions without a
// user count per address in the per-user limit.
func TestValidateNoneCannotEvictEveryone(t *testing.T) {
	s := newTestSite(t, siteOptions{handler: func(h *Handler) {
		h.Validation = &Validation{Mode: validateNone}
		h.StoreRaw = []byte(`{"type":"memory","max_sessions":640}`)
		h.MaxLoginsPerAddress = 10_000
	}})
	real := newBrowser(t)
	real.Client.Transport = &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}
	if page, _ := real.Login(s.origin, "/dash"); page.StatusCode != http.StatusOK {
		t.Fatalf("the real user's login: %d", page.StatusCode)
	}
	stranger := newBrowser(t)
	start := time.Now()
	for i := range 2000 {
		// A new session each time, not a replacement of the last one.
		stranger.Client.Jar.SetCookies(originURL(s.origin), []*http.Cookie{{Name: testbrowser.SessionCookie, Value: "", MaxAge: -1, Path: "/"}})
		authorize := stranger.AuthorizationRequest(stranger.Navigate(s.origin + "/oauth/login?interactive=1&return_to=%2F"))
		state, _ := url.Parse(authorize)
		if resp := stranger.RelayPost(s.origin+"/oauth/callback", "access_token=made-up&token_type=Bearer&state="+state.Query().Get("state"), s.origin); resp.StatusCode != http.StatusOK {
			t.Fatalf("made-up login %d: %d", i, resp.StatusCode)
		}
	}
	t.Logf("2,000 made-up logins in %s", time.Since(start).Round(time.Millisecond))
	if real.Navigate(s.origin+"/dash").StatusCode != http.StatusOK {
		t.Error("the real user's session was pushed out by a stranger's made-up logins")
	}
	if n, _, _ := s.h.store.(tokencache.Revoker).Count(t.Context()); n > tokencache.DefaultMaxSessionsPerUser+1 {
		t.Errorf("%d sessions live; the stranger's address may hold %d", n, tokencache.DefaultMaxSessionsPerUser)
	}
}
