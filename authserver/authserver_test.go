package authserver

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// server is a hand-made authorization server: discovery, its signing keys,
// and introspection and userinfo endpoints answering as the test says.
type server struct {
	*httptest.Server
	key        *rsa.PrivateKey
	kid        string
	introspect atomic.Value // func() (int, string)
	userinfo   atomic.Value // func(token string) (int, string)
}

func newServer(t *testing.T) *server {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{key: key, kid: "k1"}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": s.URL, "authorization_endpoint": s.URL + "/authorize", "jwks_uri": s.URL + "/jwks", "userinfo_endpoint": s.URL + "/userinfo",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("/introspect", func(w http.ResponseWriter, r *http.Request) {
		status, body := s.introspect.Load().(func() (int, string))()
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	})
	mux.HandleFunc("/userinfo", func(w http.ResponseWriter, r *http.Request) {
		status, body := s.userinfo.Load().(func(string) (int, string))(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if !strings.HasPrefix(body, "{") && strings.Count(body, ".") >= 2 { // a JWT: OpenID Connect Core §5.3.2
			w.Header().Set("Content-Type", "application/jwt; charset=utf-8")
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// sign makes a JWT with the server's key (or key, when given), with header
// fields extra.
func (s *server) sign(t *testing.T, claims map[string]any, key *rsa.PrivateKey, alg jose.SignatureAlgorithm) string {
	t.Helper()
	if key == nil {
		key = s.key
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: s.kid}}, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func (s *server) claims(over map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": s.URL, "sub": "alice", "aud": "api", "client_id": "dash", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func refusedAsUntrusted(t *testing.T, name string, err error) {
	t.Helper()
	var u *Untrusted
	if !errors.As(err, &u) {
		t.Errorf("%s: err = %v, want a refusal (*Untrusted)", name, err)
	}
}

func TestJWTRefusals(t *testing.T) {
	s := newServer(t)
	v := NewJWT(s.URL, "", "dash", []string{"api"}, "", DefaultTimeout)
	ctx := context.Background()
	id, err := v.Verify(ctx, Response{AccessToken: s.sign(t, s.claims(nil), nil, jose.RS256)})
	if err != nil || id.Subject != "alice" || id.Expires.IsZero() {
		t.Fatalf("a good token: %+v, %v", id, err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"k1"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(mustJSON(s.claims(nil))) + "."
	for name, token := range map[string]string{
		"expired":                 s.sign(t, s.claims(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), nil, jose.RS256),
		"without exp":             s.sign(t, s.claims(map[string]any{"exp": nil}), nil, jose.RS256),
		"not yet valid":           s.sign(t, s.claims(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}), nil, jose.RS256),
		"another issuer":          s.sign(t, s.claims(map[string]any{"iss": "https://evil.example"}), nil, jose.RS256),
		"another client":          s.sign(t, s.claims(map[string]any{"client_id": "other"}), nil, jose.RS256),
		"another audience only":   s.sign(t, s.claims(map[string]any{"aud": "billing", "client_id": nil}), nil, jose.RS256),
		"without sub":             s.sign(t, s.claims(map[string]any{"sub": nil}), nil, jose.RS256),
		"another key, same kid":   s.sign(t, s.claims(nil), other, jose.RS256),
		"alg none":                unsigned,
		"not a JWT":               "opaque-token-value",
		"a broken signature":      s.sign(t, s.claims(nil), nil, jose.RS256) + "x",
		"a JSON list for payload": s.signRaw(t, []byte(`["a"]`)),
	} {
		_, err := v.Verify(ctx, Response{AccessToken: token})
		refusedAsUntrusted(t, name, err)
	}
}

func (s *server) signRaw(t *testing.T, payload []byte) string { return s.signTyp(t, payload, "") }

// signTyp signs payload with the server's key and typ ("": no typ).
func (s *server) signTyp(t *testing.T, payload []byte, typ string) string {
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: s.key, KeyID: s.kid}}, opts)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// TestJWTTyp: an ID token is not an access token (RFC 9068 §4).
func TestJWTTyp(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	strict := NewJWT(s.URL, "", "dash", []string{"api"}, "", DefaultTimeout)
	loose := NewJWT(s.URL, "", "dash", []string{"api"}, TypAny, DefaultTimeout)
	good := mustJSON(s.claims(nil))
	withNonce := mustJSON(s.claims(map[string]any{"nonce": "n-1"}))
	for _, tc := range []struct {
		name          string
		token         string
		strict, loose bool // accepted by each
	}{
		{"at+jwt", s.signTyp(t, good, "at+jwt"), true, true},
		{"application/at+jwt in capitals", s.signTyp(t, good, "Application/AT+JWT"), true, true},
		{"an ID token's JWT", s.signTyp(t, good, "JWT"), false, true},
		{"no typ (Auth0)", s.signTyp(t, good, ""), false, true},
		{"an ID token with its nonce", s.signTyp(t, withNonce, "JWT"), false, false},
		{"a nonce under at+jwt", s.signTyp(t, withNonce, "at+jwt"), false, false},
	} {
		for _, v := range []struct {
			j    *JWT
			want bool
		}{{strict, tc.strict}, {loose, tc.loose}} {
			_, err := v.j.Verify(ctx, Response{AccessToken: tc.token})
			if (err == nil) != v.want {
				t.Errorf("%s with typ %q: err = %v, want accepted=%v", tc.name, v.j.Typ, err, v.want)
			}
		}
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func TestJWTKeysUnavailable(t *testing.T) {
	s := newServer(t)
	token := s.sign(t, s.claims(nil), nil, jose.RS256)
	s.Close()
	_, err := NewJWT(s.URL, "", "dash", []string{"api"}, "", time.Second).Verify(context.Background(), Response{AccessToken: token})
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("keys out of reach: err = %v, want ErrUnavailable (503, not a refusal)", err)
	}
}

func TestIntrospectRefusals(t *testing.T) {
	s := newServer(t)
	v := NewIntrospect(s.URL+"/introspect", "dash", "rs", "rs-secret", DefaultTimeout)
	ctx := context.Background()
	answer := func(status int, body string) { s.introspect.Store(func() (int, string) { return status, body }) }

	answer(200, `{"active":true,"sub":"alice","client_id":"dash","exp":`+jsonInt(time.Now().Add(time.Hour).Unix())+`}`)
	if id, err := v.Verify(ctx, Response{AccessToken: "t"}); err != nil || id.Subject != "alice" {
		t.Fatalf("an active token: %+v, %v", id, err)
	}
	for name, body := range map[string]string{
		"inactive":       `{"active":false}`,
		"another client": `{"active":true,"sub":"alice","client_id":"other"}`,
		"expired":        `{"active":true,"sub":"alice","exp":` + jsonInt(time.Now().Add(-time.Hour).Unix()) + `}`,
	} {
		answer(200, body)
		_, err := v.Verify(ctx, Response{AccessToken: "t"})
		refusedAsUntrusted(t, name, err)
	}
	for name, a := range map[string]struct {
		status int
		body   string
	}{
		"server error":        {500, ""},
		"credentials refused": {401, `{"error":"invalid_client"}`},
		"not RFC 7662":        {200, `{"sub":"alice"}`},
		"not JSON":            {200, `<html>`},
	} {
		answer(a.status, a.body)
		if _, err := v.Verify(ctx, Response{AccessToken: "t"}); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: err = %v, want ErrUnavailable", name, err)
		}
	}
}

func TestUserinfoRefusals(t *testing.T) {
	s := newServer(t)
	v := NewUserinfo(s.URL+"/userinfo", DefaultTimeout)
	ctx := context.Background()
	s.userinfo.Store(func(token string) (int, string) {
		switch token {
		case "good":
			return 200, `{"sub":"alice","email":"alice@corp.example"}`
		case "spotify":
			return 200, `{"id":"31abc","display_name":"A"}`
		case "nobody":
			return 200, `{"name":"no subject"}`
		case "list":
			return 200, `[1,2]`
		case "down":
			return 502, ""
		}
		return 401, `{"error":"invalid_token"}`
	})
	if id, err := v.Verify(ctx, Response{AccessToken: "good"}); err != nil || id.Subject != "alice" || id.Claims["email"] != "alice@corp.example" {
		t.Errorf("a good token: %+v, %v", id, err)
	}
	if id, err := v.Verify(ctx, Response{AccessToken: "spotify"}); err != nil || id.Subject != "31abc" {
		t.Errorf("Spotify's id as the subject: %+v, %v", id, err)
	}
	for _, token := range []string{"made-up", "nobody", "list"} {
		_, err := v.Verify(ctx, Response{AccessToken: token})
		refusedAsUntrusted(t, token, err)
	}
	if _, err := v.Verify(ctx, Response{AccessToken: "down"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("a failing endpoint: err = %v, want ErrUnavailable", err)
	}
}

func TestOpenIDRefusals(t *testing.T) {
	s := newServer(t)
	v := NewOpenID(s.URL, "dash", DefaultTimeout)
	ctx := context.Background()
	access := "an-access-token"
	sum := sha256.Sum256([]byte(access))
	atHash := base64.RawURLEncoding.EncodeToString(sum[:16])
	idToken := func(over map[string]any) string {
		c := s.claims(map[string]any{"aud": "dash", "client_id": nil, "nonce": "n-1", "at_hash": atHash})
		for k, val := range over {
			if val == nil {
				delete(c, k)
			} else {
				c[k] = val
			}
		}
		return s.signRaw(t, mustJSON(c))
	}
	good := Response{AccessToken: access, IDToken: idToken(nil), Nonces: []string{"n-0", "n-1"}}
	if id, err := v.Verify(ctx, good); err != nil || id.Subject != "alice" {
		t.Fatalf("a good ID token: %+v, %v", id, err)
	}
	for name, r := range map[string]Response{
		"no id_token":               {AccessToken: access, Nonces: good.Nonces},
		"another login's nonce":     {AccessToken: access, IDToken: idToken(nil), Nonces: []string{"n-2"}},
		"another access token":      {AccessToken: "other-token", IDToken: idToken(nil), Nonces: good.Nonces},
		"no at_hash":                {AccessToken: access, IDToken: idToken(map[string]any{"at_hash": nil}), Nonces: good.Nonces},
		"another client":            {AccessToken: access, IDToken: idToken(map[string]any{"aud": "other"}), Nonces: good.Nonces},
		"several audiences, no azp": {AccessToken: access, IDToken: idToken(map[string]any{"aud": []string{"dash", "other"}}), Nonces: good.Nonces},
		"issued in the future":      {AccessToken: access, IDToken: idToken(map[string]any{"iat": time.Now().Add(time.Hour).Unix()}), Nonces: good.Nonces},
		"expired":                   {AccessToken: access, IDToken: idToken(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), Nonces: good.Nonces},
		"another issuer":            {AccessToken: access, IDToken: idToken(map[string]any{"iss": "https://evil.example"}), Nonces: good.Nonces},
		"a tampered signature":      {AccessToken: access, IDToken: idToken(nil) + "A", Nonces: good.Nonces},
	} {
		_, err := v.Verify(ctx, r)
		refusedAsUntrusted(t, name, err)
	}

	// A refresh's ID token: any nonce (or none), but the same user, and the
	// new access token when it has at_hash.
	if claims, err := v.VerifyRefreshed(ctx, idToken(map[string]any{"nonce": nil}), access, "alice"); err != nil || claims["sub"] != "alice" {
		t.Errorf("a good refreshed ID token: %v, claims %v", err, claims)
	}
	if _, err := v.VerifyRefreshed(ctx, idToken(map[string]any{"at_hash": nil}), "any-token", "alice"); err != nil {
		t.Errorf("a refreshed ID token without at_hash: %v", err)
	}
	refreshed := func(claims map[string]any, access string) error {
		_, err := v.VerifyRefreshed(ctx, idToken(claims), access, "alice")
		return err
	}
	for name, err := range map[string]error{
		"another user":         refreshed(map[string]any{"sub": "mallory"}, access),
		"another access token": refreshed(nil, "other-token"),
		"another client":       refreshed(map[string]any{"aud": "other"}, access),
		"expired":              refreshed(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}, access),
	} {
		refusedAsUntrusted(t, "refreshed: "+name, err)
	}
}

func TestAuthorizationRequest(t *testing.T) {
	a := AuthorizationRequest{ResponseType: "id_token token", ClientID: "dash", RedirectURI: "https://app.example/cb",
		Scopes: []string{"openid", "email"}, ResponseMode: "form_post", Params: map[string]string{"audience": "api"}}
	got := a.Prefix("https://as.example/authorize?tenant=1")
	want := "https://as.example/authorize?audience=api&client_id=dash&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_mode=form_post&response_type=id_token%20token&scope=openid%20email&tenant=1&state="
	if got != want {
		t.Errorf("Prefix:\n got %s\nwant %s", got, want)
	}
	for endpoint, ok := range map[string]bool{
		"https://as.example/authorize":             true,
		"http://127.0.0.1:8081/authorize":          true,
		"http://as.example/authorize":              false,
		"https://as.example/authorize#x":           false,
		"/authorize":                               false,
		"https://as.example/authorize?state=fixed": false,
		"https://as.example/a?response_type=code":  false,
	} {
		if err := CheckAuthorizeURL(endpoint); (err == nil) != ok {
			t.Errorf("CheckAuthorizeURL(%q) = %v, want ok=%v", endpoint, err, ok)
		}
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestUserinfoClaims: the claims of an OpenID issuer's userinfo endpoint,
// as JSON or a signed JWT, for the ID token's user only.
func TestUserinfoClaims(t *testing.T) {
	s := newServer(t)
	o := NewOpenID(s.URL, "dash", DefaultTimeout)
	ctx := context.Background()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	answer := func(status int, body string) { s.userinfo.Store(func(string) (int, string) { return status, body }) }
	signed := func(over map[string]any, key *rsa.PrivateKey) string {
		c := map[string]any{"iss": s.URL, "aud": "dash", "sub": "alice", "email": "a@corp.example"}
		for k, v := range over {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		if key != nil {
			return s.sign(t, c, key, jose.RS256)
		}
		return s.signRaw(t, mustJSON(c))
	}
	for name, body := range map[string]string{
		"json":             `{"sub":"alice","email":"a@corp.example"}`,
		"jwt":              signed(nil, nil),
		"jwt without iss":  signed(map[string]any{"iss": nil, "aud": nil}, nil),
		"jwt, aud in list": signed(map[string]any{"aud": []string{"other", "dash"}}, nil),
		"jwt with newline": signed(nil, nil) + "\n",
	} {
		answer(http.StatusOK, body)
		if claims, err := o.UserinfoClaims(ctx, "at", "alice"); err != nil || claims["email"] != "a@corp.example" {
			t.Errorf("%s: %v, %v", name, claims, err)
		}
	}
	for name, body := range map[string]string{
		"json of another user":   `{"sub":"mallory","email":"a@corp.example"}`,
		"json without sub":       `{"email":"a@corp.example"}`,
		"a numeric sub":          `{"sub":1,"email":"a@corp.example"}`,
		"jwt of another key":     signed(nil, other),
		"jwt of another user":    signed(map[string]any{"sub": "mallory"}, nil),
		"jwt of another issuer":  signed(map[string]any{"iss": "https://evil.example"}, nil),
		"jwt for another client": signed(map[string]any{"aud": "other"}, nil),
		"jwt, alg none":          "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.",
	} {
		answer(http.StatusOK, body)
		_, err := o.UserinfoClaims(ctx, "at", "alice")
		refusedAsUntrusted(t, name, err)
	}
	for name, a := range map[string]struct {
		status int
		body   string
	}{
		"503": {http.StatusServiceUnavailable, `{"sub":"alice"}`}, "401": {http.StatusUnauthorized, `{"error":"invalid_token"}`},
		"not json": {http.StatusOK, `<html>`}, "a list": {http.StatusOK, `[1]`}, "encrypted": {http.StatusOK, "a.b.c.d.e"},
		"too large": {http.StatusOK, `{"sub":"alice","pad":"` + strings.Repeat("p", maxDocument) + `"}`},
	} {
		answer(a.status, a.body)
		if _, err := o.UserinfoClaims(ctx, "at", "alice"); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: err = %v, want ErrUnavailable", name, err)
		}
	}
}

// TestRevoke: RFC 7009 with each client authentication; 2xx is success,
// anything else an error that never holds the token.
func TestRevoke(t *testing.T) {
	var got *http.Request
	var form url.Values
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got, form = r, r.PostForm
		w.WriteHeader(status)
	}))
	defer srv.Close()
	ctx := context.Background()
	for _, auth := range []string{TokenAuthNone, TokenAuthBasic, TokenAuthPost} {
		r := NewRevocation(srv.URL, "dash board", "s3cret", auth, nil, time.Second)
		if err := r.Revoke(ctx, "the-token", "refresh_token"); err != nil {
			t.Fatalf("%s: %v", auth, err)
		}
		user, pass, basic := got.BasicAuth()
		switch {
		case form.Get("token") != "the-token" || form.Get("token_type_hint") != "refresh_token":
			t.Errorf("%s: form %v", auth, form)
		case auth == TokenAuthBasic && (!basic || user != "dash+board" || pass != "s3cret" || form.Has("client_secret")):
			t.Errorf("basic: %q %q %v, form %v", user, pass, basic, form)
		case auth == TokenAuthPost && (basic || form.Get("client_id") != "dash board" || form.Get("client_secret") != "s3cret"):
			t.Errorf("post: form %v", form)
		case auth == TokenAuthNone && (basic || form.Get("client_id") != "dash board" || form.Has("client_secret")):
			t.Errorf("none: form %v", form)
		}
	}
	r := NewRevocation(srv.URL, "dash", "", TokenAuthNone, nil, time.Second)
	for code, ok := range map[int]bool{http.StatusNoContent: true, http.StatusServiceUnavailable: false, http.StatusBadRequest: false} {
		status = code
		err := r.Revoke(ctx, "the-token", "access_token")
		if (err == nil) != ok || err != nil && (!errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "the-token")) {
			t.Errorf("answer %d: %v", code, err)
		}
	}
	if err := NewRevocation("", "dash", "", TokenAuthNone, nil, time.Second).Revoke(ctx, "t", "access_token"); !errors.Is(err, ErrNoRevocation) {
		t.Errorf("no endpoint: %v", err)
	}
}
