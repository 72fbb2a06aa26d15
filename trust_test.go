package implicitgrant

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/devprovider"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
)

// otherClientRedirect is where the provider sends tokens it issues to
// another client registered with it.
const otherClientRedirect = "http://other.example/callback"

// trustSite runs a site that proves tokens with mode against the dev
// provider, which also knows another client and the users alice, bob,
// carol and dave. provider may change the provider further.
func trustSite(t testing.TB, mode string, handler func(*Handler), provider func(*devprovider.Provider)) *testSite {
	return newTestSite(t, siteOptions{
		provider: func(p *devprovider.Provider) {
			p.Clients["other-client"] = otherClientRedirect
			p.Introspectors = map[string]string{"introspector": "intro-secret"}
			p.Users = map[string]devprovider.User{
				"alice": {Email: "alice@corp.example", Groups: []string{"dashboards"}},
				"bob":   {Email: "bob@other.example", Groups: []string{"dashboards"}},
				"carol": {Email: "Carol@CORP.Example", Groups: []string{"ops", "admins"}},
				"dave":  {Email: "dave@corp.example"},
			}
			if mode == validateJWT {
				p.AccessTokens = "jwt"
			}
			if provider != nil {
				provider(p)
			}
		},
		handler: func(h *Handler) {
			issuer := strings.TrimSuffix(h.AuthorizeURL, "/authorize")
			switch mode {
			case "openid":
				h.OpenID, h.AuthorizeURL, h.Validation = issuer, "", nil
			case validateJWT:
				h.Validation = &Validation{Mode: validateJWT, Issuer: issuer}
			case validateIntrospect:
				h.Validation = &Validation{Mode: validateIntrospect, URL: issuer + "/introspect", ClientID: "introspector", ClientSecret: "intro-secret"}
			case validateUserinfo:
				h.Validation = &Validation{Mode: validateUserinfo, URL: issuer + "/userinfo"}
			case validateNone:
				h.Validation = &Validation{Mode: validateNone}
			}
			if handler != nil {
				handler(h)
			}
		},
	})
}

// startLogin navigates to target without a session and returns the
// authorization request the site sent the browser to, and its state.
func startLogin(t testing.TB, b *testbrowser.Browser, s *testSite, target string) (string, string) {
	t.Helper()
	resp := b.Navigate(s.origin + target)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("first visit: %d %s", resp.StatusCode, bodyOf(resp))
	}
	loc := b.AuthorizationRequest(resp)
	u, _ := url.Parse(loc)
	return loc, u.Query().Get("state")
}

// approved is the fragment the provider answers authorizeURL with after
// user approves.
func approved(t testing.TB, b *testbrowser.Browser, authorizeURL, user string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(b.AuthorizeAs(authorizeURL, user, true).Fragment)
	if err != nil || v.Get("access_token") == "" {
		t.Fatalf("the provider issued no token: %v", v)
	}
	return v
}

// otherClientsTokens asks the provider for tokens issued to another client.
func otherClientsTokens(t testing.TB, s *testSite, withIDToken bool) url.Values {
	t.Helper()
	q := url.Values{"response_type": {"token"}, "client_id": {"other-client"}, "redirect_uri": {otherClientRedirect}, "state": {"other-state"}}
	if withIDToken {
		q.Set("response_type", "id_token token")
		q.Set("scope", "openid")
		q.Set("nonce", "other-client-nonce")
	}
	return approved(t, newBrowser(t), s.provider+"/authorize?"+q.Encode(), "alice")
}

// postTokens posts v, as the relay script would, with state, and returns the
// answer.
func postTokens(b *testbrowser.Browser, s *testSite, v url.Values, state string) *http.Response {
	v.Set("state", state)
	return b.RelayPost(s.origin+"/oauth/callback", v.Encode(), s.origin)
}

// refusedWith fails unless resp refused the login with status and the
// browser has no session.
func refusedWith(t testing.TB, b *testbrowser.Browser, s *testSite, resp *http.Response, status int) {
	t.Helper()
	testbrowser.AssertNoSession(t, resp)
	if resp.StatusCode != status {
		t.Errorf("relay answered %d, want %d: %s", resp.StatusCode, status, bodyOf(resp))
	}
	if next := b.Navigate(s.origin + "/dash"); next.StatusCode != http.StatusFound {
		t.Errorf("after a refused login the browser has a session (%d)", next.StatusCode)
	}
}

var trustModes = []string{"openid", validateJWT, validateIntrospect, validateUserinfo}

// TestTrustModes: in every mode a genuine login opens a session that
// carries the user to Caddy's placeholders; a made-up token, a genuine
// token issued to another client (where the mode can tell) and an
// expired token are refused.
func TestTrustModes(t *testing.T) {
	for _, mode := range trustModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := trustSite(t, mode, nil, nil)

			t.Run("genuine", func(t *testing.T) {
				b := newBrowser(t)
				page, _ := b.Login(s.origin, "/dash?x=1")
				if page.StatusCode != http.StatusOK {
					t.Fatalf("genuine login: %d %s", page.StatusCode, bodyOf(page))
				}
				up := s.upstream.last(t)
				if up.Header.Get("X-Seen-User") != "alice" || up.Header.Get("X-Seen-Email") != "alice@corp.example" {
					t.Errorf("placeholders: user %q, email %q", up.Header.Get("X-Seen-User"), up.Header.Get("X-Seen-Email"))
				}
			})

			t.Run("made-up token", func(t *testing.T) {
				b := newBrowser(t)
				_, state := startLogin(t, b, s, "/dash")
				v := url.Values{"access_token": {"made-up-token"}, "token_type": {"Bearer"}, "expires_in": {"3600"}}
				if mode == "openid" {
					v.Set("id_token", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl")
				}
				refusedWith(t, b, s, postTokens(b, s, v, state), http.StatusUnauthorized)
			})

			t.Run("issued to another client", func(t *testing.T) {
				b := newBrowser(t)
				_, state := startLogin(t, b, s, "/dash")
				resp := postTokens(b, s, otherClientsTokens(t, s, mode == "openid"), state)
				if mode == validateUserinfo {
					// A userinfo endpoint cannot tell whose client a token
					// is: allow rules are what keep strangers out.
					if resp.StatusCode != http.StatusOK {
						t.Errorf("userinfo mode: %d", resp.StatusCode)
					}
					return
				}
				refusedWith(t, b, s, resp, http.StatusUnauthorized)
			})

			t.Run("expired", func(t *testing.T) {
				// The provider's clock runs two hours behind: its tokens,
				// good for one hour, have already expired.
				old := trustSite(t, mode, nil, func(p *devprovider.Provider) { p.ClockOffset = caddy.Duration(-2 * time.Hour) })
				b := newBrowser(t)
				authorize, state := startLogin(t, b, old, "/dash")
				refusedWith(t, b, old, postTokens(b, old, approved(t, b, authorize, "alice"), state), http.StatusUnauthorized)
			})
		})
	}
}

// TestOpenIDAttacks: ID tokens that are not this login's, not the
// issuer's, or not bound to the access token that came with them.
func TestOpenIDAttacks(t *testing.T) {
	s := trustSite(t, "openid", nil, nil)

	t.Run("ID token of another login (nonce)", func(t *testing.T) {
		b := newBrowser(t)
		first, _ := startLogin(t, b, s, "/one")
		_, second := startLogin(t, b, s, "/two")
		refusedWith(t, b, s, postTokens(b, s, approved(t, b, first, "alice"), second), http.StatusUnauthorized)
	})
	t.Run("tampered signature", func(t *testing.T) {
		b := newBrowser(t)
		authorize, state := startLogin(t, b, s, "/dash")
		v := approved(t, b, authorize, "alice")
		tok := v.Get("id_token")
		sig := []byte(tok[strings.LastIndexByte(tok, '.')+1:])
		if sig[len(sig)/2] == 'A' { // another base64url character, so only the signature is wrong
			sig[len(sig)/2] = 'B'
		} else {
			sig[len(sig)/2] = 'A'
		}
		v.Set("id_token", tok[:strings.LastIndexByte(tok, '.')+1]+string(sig))
		refusedWith(t, b, s, postTokens(b, s, v, state), http.StatusUnauthorized)
	})
	t.Run("alg none", func(t *testing.T) {
		b := newBrowser(t)
		authorize, state := startLogin(t, b, s, "/dash")
		v := approved(t, b, authorize, "alice")
		parts := strings.Split(v.Get("id_token"), ".")
		v.Set("id_token", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))+"."+parts[1]+".")
		refusedWith(t, b, s, postTokens(b, s, v, state), http.StatusUnauthorized)
	})
	t.Run("at_hash of another access token", func(t *testing.T) {
		b := newBrowser(t)
		first, state := startLogin(t, b, s, "/one")
		second, _ := startLogin(t, b, s, "/two")
		v := approved(t, b, first, "alice")
		v.Set("access_token", approved(t, b, second, "alice").Get("access_token"))
		refusedWith(t, b, s, postTokens(b, s, v, state), http.StatusUnauthorized)
	})
	t.Run("unknown key, and a flood of them", func(t *testing.T) {
		key, _ := rsa.GenerateKey(rand.Reader, 2048)
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "attacker"}}, nil)
		before := devprovider.Calls(s.provider, "/jwks")
		for range 20 {
			b := newBrowser(t)
			authorize, state := startLogin(t, b, s, "/dash")
			v := approved(t, b, authorize, "alice")
			forged, _ := jwt.Signed(signer).Claims(map[string]any{
				"iss": s.provider, "sub": "mallory", "aud": "test-client", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
			}).Serialize()
			v.Set("id_token", forged)
			refusedWith(t, b, s, postTokens(b, s, v, state), http.StatusUnauthorized)
		}
		if n := devprovider.Calls(s.provider, "/jwks") - before; n > 1 {
			t.Errorf("20 tokens with an unknown key fetched the key set %d times; at most once per %s", n, authserver.MinRefetch)
		}
	})
	t.Run("the server rotates its keys", func(t *testing.T) {
		if page, _ := newBrowser(t).Login(s.origin, "/before"); page.StatusCode != http.StatusOK {
			t.Fatalf("login before rotation: %d", page.StatusCode)
		}
		resp, err := http.Post(s.provider+"/keys/rotate", "", nil)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("rotating the provider's keys: %v %v", resp, err)
		}
		time.Sleep(authserver.MinRefetch) // the module refetches at most this often
		if page, _ := newBrowser(t).Login(s.origin, "/after"); page.StatusCode != http.StatusOK {
			t.Fatalf("login after rotation (new kid): %d", page.StatusCode)
		}
	})
}

// TestServerDownAtLogin: a login that cannot be verified because the
// server is unreachable gets a 503 and no session.
func TestServerDownAtLogin(t *testing.T) {
	for _, mode := range []string{"openid", validateIntrospect} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := trustSite(t, mode, nil, nil)
			b := newBrowser(t)
			authorize, state := startLogin(t, b, s, "/dash")
			v := approved(t, b, authorize, "alice")
			s.providerSrv.Close()
			resp := postTokens(b, s, v, state)
			testbrowser.AssertNoSession(t, resp)
			status, next := testbrowser.RelayAnswer(t, resp)
			if status != http.StatusServiceUnavailable {
				t.Fatalf("relay: %d, want 503", status)
			}
			page := b.Navigate(s.origin + next)
			if page.StatusCode != http.StatusServiceUnavailable || !strings.Contains(bodyOf(page), "authorization server cannot be reached") {
				t.Errorf("error page: %d\n%s", page.StatusCode, bodyOf(page))
			}
		})
	}
}

// TestAllowRules: every allow line must hold; a claim matches when one of
// its values matches one pattern; email without case.
func TestAllowRules(t *testing.T) {
	s := trustSite(t, "openid", func(h *Handler) {
		h.Allow = []AllowRule{
			{Claim: "email", Patterns: []string{"*@corp.example"}},
			{Claim: "groups", Patterns: []string{"dashboards", "admins"}},
		}
	}, nil)
	for user, admitted := range map[string]bool{"alice": true, "carol": true, "bob": false, "dave": false} {
		t.Run(user, func(t *testing.T) {
			b := newBrowser(t)
			authorize, state := startLogin(t, b, s, "/dash")
			resp := postTokens(b, s, approved(t, b, authorize, user), state)
			if admitted {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s refused: %d %s", user, resp.StatusCode, bodyOf(resp))
				}
				return
			}
			testbrowser.AssertNoSession(t, resp)
			status, next := testbrowser.RelayAnswer(t, resp)
			page := b.Navigate(s.origin + next)
			body := bodyOf(page)
			if status != http.StatusForbidden || page.StatusCode != http.StatusForbidden ||
				!strings.Contains(body, "Signed in as <strong>"+user+"@") || !strings.Contains(body, `href="/oauth/logout"`) {
				t.Errorf("%s: relay %d, page %d\n%s", user, status, page.StatusCode, body)
			}
			if again := b.Navigate(s.origin + "/dash"); again.StatusCode != http.StatusFound {
				t.Errorf("a refused user has a session: %d", again.StatusCode)
			}
		})
	}
}

func TestAllowRuleMatching(t *testing.T) {
	for _, tc := range []struct {
		rule  AllowRule
		claim any
		want  bool
	}{
		{AllowRule{"email", []string{"*@corp.example"}}, "a@corp.example", true},
		{AllowRule{"email", []string{"*@corp.example"}}, "A@CORP.EXAMPLE", true},
		{AllowRule{"email", []string{"*@corp.example"}}, "a@corp.example.evil", false},
		{AllowRule{"email", []string{"*@corp.example"}}, "a@evilcorp.example", false},
		{AllowRule{"sub", []string{"Alice"}}, "alice", false},
		{AllowRule{"groups", []string{"dash*", "admins"}}, []any{"ops", "dashboards"}, true},
		{AllowRule{"groups", []string{"admins"}}, []any{"ops", 7.0}, false},
		{AllowRule{"groups", []string{"admins"}}, nil, false},
		{AllowRule{"sub", []string{"*"}}, "", true},
		{AllowRule{"sub", []string{"a*b*c"}}, "abxxc", true},
		{AllowRule{"sub", []string{"a*b*c"}}, "acb", false},
		{AllowRule{"sub", []string{"ab*ba"}}, "aba", false},
		{AllowRule{"sub", []string{"*.*"}}, strings.Repeat("a", 100000), false},
	} {
		if got := tc.rule.admits(tc.claim); got != tc.want {
			t.Errorf("%v admits %v = %v, want %v", tc.rule, tc.claim, got, tc.want)
		}
	}
}

// TestRevalidate: a token revoked at the server stops working within the
// revalidate interval; a burst of requests makes one check; a server that
// cannot be asked refuses the request (503), never serves it unchecked.
func TestRevalidate(t *testing.T) {
	for _, mode := range []string{validateIntrospect, validateUserinfo} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := trustSite(t, mode, func(h *Handler) { h.Revalidate = caddy.Duration(time.Second) }, nil)
			endpoint := map[string]string{validateIntrospect: "/introspect", validateUserinfo: "/userinfo"}[mode]
			b := newBrowser(t)
			b.Login(s.origin, "/dash")
			token := strings.TrimPrefix(s.upstream.last(t).Header.Get("Authorization"), "Bearer ")
			api := func() int {
				req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/data", nil)
				req.Header.Set("Accept", "application/json")
				return b.Do(req).StatusCode
			}

			// Past the interval, a burst of requests checks once, and goes on.
			time.Sleep(1100 * time.Millisecond)
			before := devprovider.Calls(s.provider, endpoint)
			var wg sync.WaitGroup
			codes := make([]int, 10)
			for i := range codes {
				wg.Add(1)
				go func() { defer wg.Done(); codes[i] = api() }()
			}
			wg.Wait()
			for _, c := range codes {
				if c != http.StatusOK {
					t.Fatalf("a request during the recheck got %d: %v", c, codes)
				}
			}
			if n := devprovider.Calls(s.provider, endpoint) - before; n != 1 {
				t.Errorf("10 requests past the interval made %d checks, want 1", n)
			}

			// Revoked at the server: within the interval the session ends.
			if resp, err := http.PostForm(s.provider+"/revoke", url.Values{"token": {token}}); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("revoking: %v %v", resp, err)
			}
			time.Sleep(1100 * time.Millisecond)
			if c := api(); c != http.StatusUnauthorized {
				t.Errorf("after revocation: %d, want 401", c)
			}
			if again := b.Navigate(s.origin + "/dash"); again.StatusCode != http.StatusFound {
				t.Errorf("after revocation a page load got %d, want a new login", again.StatusCode)
			}

			// The server down when a check is due: 503, never served unchecked.
			b2 := newBrowser(t)
			b2.Login(s.origin, "/dash")
			served := s.upstream.count()
			time.Sleep(1100 * time.Millisecond)
			s.providerSrv.Close()
			req, _ := http.NewRequest(http.MethodGet, s.origin+"/api/data", nil)
			req.Header.Set("Accept", "application/json")
			if resp := b2.Do(req); resp.StatusCode != http.StatusServiceUnavailable || s.upstream.count() != served {
				t.Errorf("server down at recheck: %d, upstream reached %d more times", resp.StatusCode, s.upstream.count()-served)
			}
		})
	}
}

// BenchmarkLoginFinish is the relay POST that finishes a login, per trust
// mode: state checks, the proof of the token at the dev provider over
// loopback, the allow rules, and the session stored. Starting the login
// and the consent are outside the timer. "openid+userinfo" is openid
// against ID tokens without the user's claims: one userinfo call more.
func BenchmarkLoginFinish(b *testing.B) {
	for _, name := range append(trustModes, validateNone, "openid+userinfo") {
		mode, provider := name, func(*devprovider.Provider) {}
		if name == "openid+userinfo" {
			mode, provider = "openid", func(p *devprovider.Provider) { p.ClaimsAtUserinfo = true }
		}
		b.Run(name, func(b *testing.B) {
			s := trustSite(b, mode, nil, provider)
			for b.Loop() {
				b.StopTimer()
				br := newBrowser(b)
				authorize, state := startLogin(b, br, s, "/dash")
				v := approved(b, br, authorize, "alice")
				b.StartTimer()
				if resp := postTokens(br, s, v, state); resp.StatusCode != http.StatusOK {
					b.Fatalf("login: %d %s", resp.StatusCode, bodyOf(resp))
				}
			}
		})
	}
}
