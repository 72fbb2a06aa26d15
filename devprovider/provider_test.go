package devprovider

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

const redirect = "https://app.example/oauth/callback"

func newProvider(t *testing.T, configure func(*Provider)) *httptest.Server {
	t.Helper()
	p := &Provider{Clients: map[string]string{"dash": redirect}, Introspectors: map[string]string{"rs": "rs-secret"},
		Users: map[string]User{"alice": {Email: "alice@corp.example", Groups: []string{"admins"}}}}
	if configure != nil {
		configure(p)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	notFound := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(404); return nil })
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.ServeHTTP(w, r, notFound); err != nil {
			w.WriteHeader(500)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorizeAs asks for a token and answers the consent page.
func authorizeAs(t *testing.T, s *httptest.Server, query url.Values, decision, user string) url.Values {
	t.Helper()
	resp, err := noRedirects.Get(s.URL + "/authorize?" + query.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(resp)
	if resp.StatusCode != 200 {
		t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	}
	i := strings.Index(body, `name="request" value="`)
	if i < 0 {
		t.Fatalf("no consent form in %s", body)
	}
	id := body[i+len(`name="request" value="`):]
	id = id[:strings.IndexByte(id, '"')]
	resp, err = noRedirects.PostForm(s.URL+"/authorize/decision", url.Values{"request": {id}, "decision": {decision}, "user": {user}})
	if err != nil {
		t.Fatal(err)
	}
	return fragmentOf(t, resp)
}

func fragmentOf(t *testing.T, resp *http.Response) url.Values {
	t.Helper()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), redirect) {
		t.Fatalf("want a 303 to the redirect_uri, got %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if loc.Fragment == "" { // the code flow answers in the query
		return loc.Query()
	}
	v, _ := url.ParseQuery(loc.Fragment)
	return v
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func request(extra map[string]string) url.Values {
	q := url.Values{"response_type": {"token"}, "client_id": {"dash"}, "redirect_uri": {redirect}, "state": {"state-123456"}, "scope": {"email"}}
	for k, v := range extra {
		q.Set(k, v)
	}
	return q
}

func TestApproveIssuesALiveToken(t *testing.T) {
	s := newProvider(t, nil)
	v := authorizeAs(t, s, request(nil), "approve", "alice")
	if v.Get("state") != "state-123456" || v.Get("token_type") != "Bearer" || v.Get("expires_in") != "3600" || v.Get("access_token") == "" {
		t.Fatalf("the response: %v", v)
	}
	token := v.Get("access_token")
	req, _ := http.NewRequest("GET", s.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, _ := http.DefaultClient.Do(req)
	var info map[string]any
	_ = json.Unmarshal([]byte(readAll(resp)), &info)
	if info["sub"] != "alice" || info["email"] != "alice@corp.example" {
		t.Errorf("userinfo: %v", info)
	}
	introspect := func(token, id, secret string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", s.URL+"/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, _ := http.DefaultClient.Do(req)
		var a map[string]any
		_ = json.Unmarshal([]byte(readAll(resp)), &a)
		return resp.StatusCode, a
	}
	if status, a := introspect(token, "rs", "rs-secret"); status != 200 || a["active"] != true || a["client_id"] != "dash" {
		t.Errorf("introspection of a live token: %d %v", status, a)
	}
	if status, _ := introspect(token, "rs", "wrong"); status != 401 {
		t.Errorf("introspection with a wrong secret: %d, want 401", status)
	}
	if _, a := introspect("made-up", "rs", "rs-secret"); a["active"] != false {
		t.Errorf("introspection of a made-up token: %v", a)
	}
	resp, _ = http.PostForm(s.URL+"/revoke", url.Values{"token": {token}})
	resp.Body.Close()
	if _, a := introspect(token, "rs", "rs-secret"); a["active"] != false {
		t.Errorf("a revoked token is still active: %v", a)
	}
}

func TestDenyAndRefusals(t *testing.T) {
	s := newProvider(t, nil)
	if v := authorizeAs(t, s, request(nil), "deny", ""); v.Get("error") != "access_denied" || v.Get("state") != "state-123456" || v.Has("access_token") {
		t.Errorf("deny: %v", v)
	}
	for name, q := range map[string]url.Values{
		"unknown client":       request(map[string]string{"client_id": "evil"}),
		"another redirect_uri": request(map[string]string{"redirect_uri": "https://evil.example/cb"}),
	} {
		resp, _ := noRedirects.Get(s.URL + "/authorize?" + q.Encode())
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d %q; want 400 and no redirect to an unverified redirect_uri", name, resp.StatusCode, resp.Header.Get("Location"))
		}
		resp.Body.Close()
	}
	for name, tc := range map[string]struct {
		q    url.Values
		code string
	}{
		"prompt=none, nobody signed in": {request(map[string]string{"prompt": "none"}), "login_required"},
		"id_token without a nonce":      {request(map[string]string{"response_type": "id_token token", "scope": "openid"}), "invalid_request"},
		"id_token without openid":       {request(map[string]string{"response_type": "id_token token", "nonce": "nonce-12345"}), "invalid_scope"},
		"the code flow without PKCE":    {request(map[string]string{"response_type": "code"}), "invalid_request"},
		"PKCE plain":                    {request(map[string]string{"response_type": "code", "code_challenge_method": "plain", "code_challenge": strings.Repeat("a", 43)}), "invalid_request"},
		"another response_type":         {request(map[string]string{"response_type": "id_token"}), "unsupported_response_type"},
	} {
		resp, _ := noRedirects.Get(s.URL + "/authorize?" + tc.q.Encode())
		if v := fragmentOf(t, resp); v.Get("error") != tc.code {
			t.Errorf("%s: %v, want error %s", name, v, tc.code)
		}
	}
}

func TestErrorsInTheQuery(t *testing.T) {
	s := newProvider(t, func(p *Provider) { p.ErrorIn = "query" })
	resp, _ := noRedirects.Get(s.URL + "/authorize?" + request(map[string]string{"prompt": "none"}).Encode())
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("error") != "login_required" || loc.Fragment != "" {
		t.Errorf("with error_in query: %q", resp.Header.Get("Location"))
	}
}

func TestIDTokenCarriesNonce(t *testing.T) {
	s := newProvider(t, nil)
	v := authorizeAs(t, s, request(map[string]string{"response_type": "id_token token", "scope": "openid email", "nonce": "nonce-12345"}), "approve", "alice")
	parts := strings.Split(v.Get("id_token"), ".")
	if len(parts) != 3 {
		t.Fatalf("id_token: %q", v.Get("id_token"))
	}
	var claims map[string]any
	raw, _ := base64URL(parts[1])
	_ = json.Unmarshal(raw, &claims)
	if claims["nonce"] != "nonce-12345" || claims["aud"] != "dash" || claims["sub"] != "alice" || claims["at_hash"] == nil {
		t.Errorf("id_token claims: %v", claims)
	}
	if exp, _ := claims["exp"].(float64); time.Unix(int64(exp), 0).Before(time.Now()) {
		t.Errorf("id_token already expired: %v", claims["exp"])
	}
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// TestForgetMyApproval: a remembered approval skips the consent page; the
// home page lists it, and forgetting it brings the consent page back, or,
// with "Sign in as someone else", goes on to the application's login.
func TestForgetMyApproval(t *testing.T) {
	s := newProvider(t, nil)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: noRedirects.CheckRedirect}
	resp, _ := c.Get(s.URL + "/authorize?" + request(nil).Encode())
	body := readAll(resp)
	id := body[strings.Index(body, `name="request" value="`)+len(`name="request" value="`):]
	id = id[:strings.IndexByte(id, '"')]
	resp, _ = c.PostForm(s.URL+"/authorize/decision", url.Values{"request": {id}, "decision": {"approve"}, "user": {"alice"}})
	resp.Body.Close()
	if resp, _ = c.Get(s.URL + "/authorize?" + request(nil).Encode()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a remembered approval: %d, want a 303 straight back", resp.StatusCode)
	}
	resp.Body.Close()
	resp, _ = c.Get(s.URL + "/")
	if home := readAll(resp); !strings.Contains(home, "You approved <b>dash</b> as <b>alice</b>") || !strings.Contains(home, "Sign in as someone else") || !strings.Contains(home, "Forget my approval") {
		t.Fatalf("the home page:\n%s", home)
	}
	resp, _ = c.PostForm(s.URL+"/forget", url.Values{"client_id": {"dash"}, "then": {"login"}})
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "https://app.example/oauth/login?interactive=1&return_to=%2F" {
		t.Errorf("Sign in as someone else goes to %q, want the application's login, interactive", loc)
	}
	resp, _ = c.Get(s.URL + "/authorize?" + request(nil).Encode())
	if body := readAll(resp); resp.StatusCode != 200 || !strings.Contains(body, `id="deny"`) {
		t.Errorf("after forgetting: %d; want the consent page again", resp.StatusCode)
	}
}

// TestCodeFlow: PKCE S256, single-use codes, client authentication and
// refresh tokens that rotate with reuse detection.
func TestCodeFlow(t *testing.T) {
	s := newProvider(t, func(p *Provider) {
		p.ClientSecrets = map[string]string{"conf": "conf-secret"}
		p.Clients["conf"] = redirect
	})
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	codeFor := func(client string) url.Values {
		v := authorizeAs(t, s, request(map[string]string{"response_type": "code", "client_id": client, "code_challenge": challenge, "code_challenge_method": "S256"}), "approve", "alice")
		if v.Get("code") == "" || v.Get("state") != "state-123456" || v.Get("iss") != s.URL || v.Has("access_token") {
			t.Fatalf("code answer: %v", v)
		}
		return v
	}
	post := func(form url.Values, basicID, basicSecret string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basicID != "" {
			req.SetBasicAuth(basicID, basicSecret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.Unmarshal([]byte(readAll(resp)), &body)
		return resp.StatusCode, body
	}
	exchange := func(code, v string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {v}, "client_id": {"dash"}}
	}
	live := func(token any) bool {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+token.(string))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}

	// A wrong verifier, or none, is invalid_grant, and ends the code.
	code := codeFor("dash").Get("code")
	if status, body := post(exchange(code, strings.Repeat("w", 43)), "", ""); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("wrong verifier: %d %v", status, body)
	}
	if status, body := post(exchange(code, verifier), "", ""); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("the right verifier after a wrong one: %d %v", status, body)
	}
	code = codeFor("dash").Get("code")
	if status, body := post(exchange(code, ""), "", ""); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("no verifier: %d %v", status, body)
	}

	// The right one gives tokens; a replay of the code revokes them.
	code = codeFor("dash").Get("code")
	status, tokens := post(exchange(code, verifier), "", "")
	if status != 200 || tokens["access_token"] == nil || tokens["refresh_token"] == nil || !live(tokens["access_token"]) {
		t.Fatalf("exchange: %d %v", status, tokens)
	}
	reusesBefore := ReuseDetected()
	if status, body := post(exchange(code, verifier), "", ""); status != 400 || body["error"] != "invalid_grant" || live(tokens["access_token"]) || ReuseDetected() != reusesBefore+1 {
		t.Errorf("replayed code: %d %v; its token still live: %v", status, body, live(tokens["access_token"]))
	}

	// Refresh tokens rotate; presenting one twice revokes the family.
	code = codeFor("dash").Get("code")
	_, tokens = post(exchange(code, verifier), "", "")
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens["refresh_token"].(string)}, "client_id": {"dash"}}
	status, next := post(refresh, "", "")
	if status != 200 || next["refresh_token"] == tokens["refresh_token"] || !live(next["access_token"]) {
		t.Fatalf("refresh: %d %v", status, next)
	}
	if status, body := post(refresh, "", ""); status != 400 || body["error"] != "invalid_grant" || live(next["access_token"]) {
		t.Errorf("a reused refresh token: %d %v; the family's newest token still live: %v", status, body, live(next["access_token"]))
	}
	if status, _ := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next["refresh_token"].(string)}, "client_id": {"dash"}}, "", ""); status != 400 {
		t.Errorf("the family's newest refresh token after a reuse: %d, want 400", status)
	}

	// A confidential client must authenticate, either way.
	for _, how := range []string{"basic", "post", "none", "wrong"} {
		form := exchange(codeFor("conf").Get("code"), verifier)
		form.Set("client_id", "conf")
		id, secret := "", ""
		switch how {
		case "basic":
			form.Del("client_id")
			id, secret = "conf", "conf-secret"
		case "post":
			form.Set("client_secret", "conf-secret")
		case "wrong":
			id, secret = "conf", "not-the-secret"
		}
		status, body := post(form, id, secret)
		if ok := how == "basic" || how == "post"; ok != (status == 200) || !ok && body["error"] != "invalid_client" {
			t.Errorf("confidential client, %s: %d %v", how, status, body)
		}
	}
}
