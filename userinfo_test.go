package implicitgrant

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/implicitgrant/caddy-implicit-grant/devprovider"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
)

// userinfoSite is an openid site on grant ("token": the implicit grant's
// "id_token token"; "code") against a dev provider whose ID tokens carry
// no user claims (claims_at_userinfo), as ZITADEL's and Okta's do.
func userinfoSite(t *testing.T, grant string, handler func(*Handler), provider func(*devprovider.Provider), intercept func(http.ResponseWriter, *http.Request) bool) *testSite {
	t.Helper()
	return newTestSite(t, siteOptions{
		provider: func(p *devprovider.Provider) {
			p.ClaimsAtUserinfo = true
			p.Users = map[string]devprovider.User{"bob": {Email: "bob@other.example"}, "nomail": {}}
			if provider != nil {
				provider(p)
			}
		},
		handler: func(h *Handler) {
			useOpenID(h)
			if grant == ResponseTypeCode {
				h.ResponseType = ResponseTypeCode
			}
			if handler != nil {
				handler(h)
			}
		},
		intercept: intercept,
	})
}

// loginOn logs user in to s in whichever grant s uses, and on success
// loads /dash with the new session: the callback's status, and the browser.
func loginOn(t *testing.T, s *testSite, user string) (int, *testbrowser.Browser) {
	t.Helper()
	b := newBrowser(t)
	callback := b.AuthorizeAs(b.AuthorizationRequest(b.Navigate(s.origin+"/dash")), user, true)
	if !s.h.codeFlow() {
		status, next := b.FinishAtCallback(callback)
		if status == http.StatusOK {
			b.Navigate(s.origin + next)
		}
		return status, b
	}
	landing := b.Navigate(callback.String())
	if landing.StatusCode == http.StatusOK {
		b.Navigate(s.origin + testbrowser.LandingLocation(t, landing))
	}
	return landing.StatusCode, b
}

// hasNoSession: the browser's next page load goes to the login.
func hasNoSession(t *testing.T, s *testSite, b *testbrowser.Browser) {
	t.Helper()
	if resp := b.Navigate(s.origin + "/dash"); resp.StatusCode != http.StatusFound {
		t.Errorf("after a refused login, a page load: %d, want 302 to log in", resp.StatusCode)
	}
}

func userinfoCalls(s *testSite) int64 { return devprovider.Calls(s.provider, "/userinfo") }

var bothGrants = []string{ResponseTypeToken, ResponseTypeCode}

// TestClaimsFromUserinfo: an ID token without the user's claims gets them
// from userinfo, once per login and never per request; the email reaches
// the upstream and the allow rules.
func TestClaimsFromUserinfo(t *testing.T) {
	for _, grant := range bothGrants {
		t.Run(grant, func(t *testing.T) {
			t.Parallel()
			s := userinfoSite(t, grant, func(h *Handler) { h.Allow = []AllowRule{{Claim: "email", Patterns: []string{"*@corp.example"}}} }, nil, nil)
			status, b := loginOn(t, s, "alice")
			if status != http.StatusOK || s.upstream.last(t).Header.Get("X-Seen-Email") != "alice@corp.example" {
				t.Fatalf("alice's login: %d, upstream email %q", status, s.upstream.last(t).Header.Get("X-Seen-Email"))
			}
			if n := userinfoCalls(s); n != 1 {
				t.Errorf("one login called userinfo %d times, want 1", n)
			}
			for range 100 {
				if resp := b.Navigate(s.origin + "/dash"); resp.StatusCode != http.StatusOK {
					t.Fatalf("a request of the session: %d", resp.StatusCode)
				}
			}
			if n := userinfoCalls(s); n != 1 {
				t.Errorf("a login and 100 requests called userinfo %d times, want 1", n)
			}
			if status, b := loginOn(t, s, "bob"); status != http.StatusForbidden {
				t.Errorf("bob@other.example: %d, want 403", status)
			} else {
				hasNoSession(t, s, b)
			}
		})
	}
}

// TestUserinfoOfAnotherUser: a userinfo answer whose sub is not the ID
// token's (OpenID Connect Core 5.3.2: a substituted token) gives no
// session, a clear page and a log line.
func TestUserinfoOfAnotherUser(t *testing.T) {
	for _, grant := range bothGrants {
		t.Run(grant, func(t *testing.T) {
			t.Parallel()
			s := userinfoSite(t, grant, nil, nil, func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/userinfo" {
					return false
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"sub": "mallory", "email": "mallory@corp.example", "email_verified": true})
				return true
			})
			logs := captureLogs(s.h)
			status, b := loginOn(t, s, "alice")
			if status != http.StatusUnauthorized {
				t.Errorf("userinfo naming another user: %d, want 401", status)
			}
			hasNoSession(t, s, b)
			if !strings.Contains(logs.String(), "the userinfo answer does not match the login") {
				t.Errorf("no log line says why:\n%s", logs)
			}
		})
	}
}

func captureLogs(h *Handler) *testcaddy.Buffer {
	logs := &testcaddy.Buffer{}
	h.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.DebugLevel))
	return logs
}

// userinfoDown answers every userinfo call with 503.
func userinfoDown(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != "/userinfo" {
		return false
	}
	http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	return true
}

// TestUserinfoDown: what needs the missing claims decides. An allow rule
// on email: 503 and no session. Placeholders only: a session, an empty
// email upstream, and one warning.
func TestUserinfoDown(t *testing.T) {
	for _, grant := range bothGrants {
		t.Run(grant, func(t *testing.T) {
			t.Parallel()
			ruled := userinfoSite(t, grant, func(h *Handler) { h.Allow = []AllowRule{{Claim: "email", Patterns: []string{"*@corp.example"}}} }, nil, userinfoDown)
			status, b := loginOn(t, ruled, "alice")
			if status != http.StatusServiceUnavailable {
				t.Errorf("userinfo down, an allow rule on email: %d, want 503", status)
			}
			hasNoSession(t, ruled, b)

			s := userinfoSite(t, grant, nil, nil, userinfoDown)
			logs := captureLogs(s.h)
			if status, _ := loginOn(t, s, "alice"); status != http.StatusOK {
				t.Fatalf("userinfo down, placeholders only: %d, want a session", status)
			}
			seen := s.upstream.last(t)
			if v := seen.Header.Values("X-Seen-Email"); len(v) != 1 || v[0] != "" || seen.Header.Get("X-Seen-User") != "alice" {
				t.Errorf("upstream user %q, email %q: want alice and one empty email", seen.Header.Get("X-Seen-User"), v)
			}
			if n := strings.Count(logs.String(), "userinfo is unavailable"); n != 1 {
				t.Errorf("%d warnings, want 1:\n%s", n, logs)
			}
		})
	}
}

// TestSignedUserinfo: a JWT answer (application/jwt) signed with the
// issuer's keys is taken; one signed with another key is refused.
func TestSignedUserinfo(t *testing.T) {
	signed := func(p *devprovider.Provider) { p.UserinfoJWT = true }
	for _, grant := range bothGrants {
		t.Run(grant, func(t *testing.T) {
			t.Parallel()
			s := userinfoSite(t, grant, nil, signed, nil)
			if status, _ := loginOn(t, s, "alice"); status != http.StatusOK || s.upstream.last(t).Header.Get("X-Seen-Email") != "alice@corp.example" {
				t.Errorf("a signed userinfo answer: %d, email %q", status, s.upstream.last(t).Header.Get("X-Seen-Email"))
			}

			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			var forgedIssuer string
			forged := userinfoSite(t, grant, nil, signed, func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/userinfo" {
					return false
				}
				signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, nil)
				raw, _ := jwt.Signed(signer).Claims(map[string]any{"iss": forgedIssuer, "aud": "test-client", "sub": "alice",
					"email": "alice@corp.example", "exp": time.Now().Add(time.Hour).Unix()}).Serialize()
				w.Header().Set("Content-Type", "application/jwt")
				_, _ = w.Write([]byte(raw))
				return true
			})
			forgedIssuer = forged.provider
			status, b := loginOn(t, forged, "alice")
			if status != http.StatusUnauthorized {
				t.Errorf("a userinfo JWT signed with another key: %d, want 401", status)
			}
			hasNoSession(t, forged, b)
		})
	}
}

// TestUserinfoOnlyWhenNeeded: an ID token with every claim the module
// uses makes no userinfo call with "missing", one with "always", and none
// with "never" even when claims are missing.
func TestUserinfoOnlyWhenNeeded(t *testing.T) {
	claimsInIDToken := func(p *devprovider.Provider) { p.ClaimsAtUserinfo = false }
	for _, tc := range []struct {
		mode     string
		provider func(*devprovider.Provider)
		calls    int64
		email    string
	}{
		{UserinfoMissing, claimsInIDToken, 0, "alice@corp.example"},
		{"", claimsInIDToken, 0, "alice@corp.example"},
		{UserinfoAlways, claimsInIDToken, 1, "alice@corp.example"},
		{UserinfoNever, nil, 0, ""},
	} {
		for _, grant := range bothGrants {
			t.Run(grant+"/userinfo="+tc.mode, func(t *testing.T) {
				t.Parallel()
				s := userinfoSite(t, grant, func(h *Handler) { h.Userinfo = tc.mode }, tc.provider, nil)
				if status, _ := loginOn(t, s, "alice"); status != http.StatusOK {
					t.Fatalf("login: %d", status)
				}
				if n := userinfoCalls(s); n != tc.calls {
					t.Errorf("userinfo calls: %d, want %d", n, tc.calls)
				}
				if got := s.upstream.last(t).Header.Get("X-Seen-Email"); got != tc.email {
					t.Errorf("upstream email %q, want %q", got, tc.email)
				}
			})
		}
	}
}

// TestAlwaysPrefersUserinfo: with "always", userinfo's values win over
// the ID token's, except sub; email_verified comes with the email.
func TestAlwaysPrefersUserinfo(t *testing.T) {
	t.Parallel()
	s := userinfoSite(t, ResponseTypeCode, func(h *Handler) {
		h.Userinfo = UserinfoAlways
		h.Allow = []AllowRule{{Claim: "email", Patterns: []string{"*@new.example"}}}
	}, func(p *devprovider.Provider) { p.ClaimsAtUserinfo = false }, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/userinfo" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"sub": "alice", "email": "alice@new.example", "email_verified": true, "name": "Alice New"})
		return true
	})
	if status, _ := loginOn(t, s, "alice"); status != http.StatusOK {
		t.Fatalf("login: %d", status)
	}
	seen := s.upstream.last(t)
	if seen.Header.Get("X-Seen-Email") != "alice@new.example" || seen.Header.Get("X-Seen-User") != "alice" {
		t.Errorf("upstream email %q user %q: want userinfo's email and the ID token's sub", seen.Header.Get("X-Seen-Email"), seen.Header.Get("X-Seen-User"))
	}
}

// TestUserWithoutEmail: a user with no email claim anywhere gets an empty
// X-Seen-Email, not the placeholder's text.
func TestUserWithoutEmail(t *testing.T) {
	t.Parallel()
	s := userinfoSite(t, ResponseTypeCode, nil, nil, nil)
	if status, _ := loginOn(t, s, "nomail"); status != http.StatusOK {
		t.Fatalf("login: %d", status)
	}
	if v := s.upstream.last(t).Header.Values("X-Seen-Email"); len(v) != 1 || v[0] != "" {
		t.Errorf("upstream email %q, want one empty value", v)
	}
}

// TestUserinfoAtRefresh: a refresh keeps the claims userinfo gave at the
// login ("missing": no call, since nothing is lacking), and with "always"
// asks userinfo again with the new access token.
func TestUserinfoAtRefresh(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		calls int64
	}{{UserinfoMissing, 1}, {UserinfoAlways, 2}} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			s := userinfoSite(t, ResponseTypeCode, func(h *Handler) { shortTokens(h); h.Userinfo = tc.mode }, shortLived, nil)
			status, b := loginOn(t, s, "alice")
			if status != http.StatusOK {
				t.Fatalf("login: %d", status)
			}
			first := tokenSeen(t, s)
			time.Sleep(4 * time.Second) // past refresh_at (half of the 6 s token)
			if resp := b.Navigate(s.origin + "/dash"); resp.StatusCode != http.StatusOK {
				t.Fatalf("after the refresh: %d", resp.StatusCode)
			}
			if tokenSeen(t, s) == first {
				t.Fatal("no refresh happened")
			}
			if got := s.upstream.last(t).Header.Get("X-Seen-Email"); got != "alice@corp.example" {
				t.Errorf("after a refresh the email is %q", got)
			}
			if n := userinfoCalls(s); n != tc.calls {
				t.Errorf("userinfo calls after a login and a refresh: %d, want %d", n, tc.calls)
			}
		})
	}
}

// TestEmailVerifiedGoesWithEmail: email_verified is taken from where the
// email is; sub and the token's own claims are never userinfo's.
func TestEmailVerifiedGoesWithEmail(t *testing.T) {
	idToken := func() map[string]any {
		return map[string]any{"sub": "alice", "iss": "https://as.example", "email": "old@corp.example", "email_verified": false}
	}
	for _, tc := range []struct {
		name          string
		info          map[string]any
		asked         []string
		email         any
		emailVerified any
	}{
		{"userinfo's email brings its verification", map[string]any{"email": "new@corp.example", "email_verified": true}, []string{"email"}, "new@corp.example", true},
		{"userinfo's email without one drops the ID token's", map[string]any{"email": "new@corp.example"}, []string{"email"}, "new@corp.example", nil},
		{"no email at userinfo keeps the ID token's pair", map[string]any{"email_verified": true}, []string{"email", "email_verified"}, "old@corp.example", false},
		{"not asked, not taken", map[string]any{"email": "new@corp.example", "email_verified": true}, []string{"name"}, "old@corp.example", false},
	} {
		got := withUserinfo(idToken(), tc.info, tc.asked)
		if got["email"] != tc.email || got["email_verified"] != tc.emailVerified || got["sub"] != "alice" {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
	if got := withUserinfo(idToken(), map[string]any{"sub": "mallory", "iss": "https://evil.example"}, []string{"sub", "iss"}); got["sub"] != "alice" || got["iss"] != "https://as.example" {
		t.Errorf("userinfo changed the ID token's sub or iss: %v", got)
	}
}
