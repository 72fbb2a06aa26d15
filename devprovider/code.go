package devprovider

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// The authorization code grant (RFC 6749 §4.1) with PKCE (RFC 7636),
// as a strict server does it: S256 only, codes single-use for a minute
// and bound to client, redirect_uri and challenge, a replayed code
// revoking what it gave, and refresh tokens that rotate with reuse
// detection (a refresh token presented twice revokes its whole family,
// as Ory Hydra and fosite do).

// issuedCode is what one authorization code stands for.
type issuedCode struct {
	grant                         grant
	redirectURI, challenge, nonce string
	withIDToken                   bool
	expires                       time.Time
	used                          bool
	family                        string // the refresh-token family the exchange started
}

// refreshToken is one link of a family: a login's chain of refresh tokens.
type refreshToken struct {
	grant       grant
	family      string
	used        bool
	nonce       string
	withIDToken bool // a new ID token comes with each refresh (OpenID Connect Core §12.2)
}

var (
	codes         = map[string]*issuedCode{}
	refreshTokens = map[string]*refreshToken{}
	// families maps a family to its access tokens, revoked with it.
	families = map[string][]string{}
	revoked  = map[string]bool{} // families ended by reuse or a replayed code
	reuses   atomic.Int64
)

// ReuseDetected counts refresh tokens presented a second time (and codes
// replayed): each revoked its family. A client that refreshes correctly
// never makes it move.
func ReuseDetected() int64 { return reuses.Load() }

// issueCode answers an approved code-flow request: ?code=…&state=…&iss=….
func (p *Provider) issueCode(w http.ResponseWriter, r *http.Request, user string, req pendingRequest) error {
	code := randomString()
	mu.Lock()
	if len(codes) >= 10_000 { // a long demo: forget codes past use
		for c, ic := range codes {
			if ic.used || time.Now().After(ic.expires) {
				delete(codes, c)
			}
		}
	}
	codes[code] = &issuedCode{grant: p.grant(issuer(r), user, req.clientID, req.scope, loginSession(w, r)), redirectURI: req.redirectURI,
		challenge: req.challenge, nonce: req.nonce, withIDToken: hasScope(req.scope, "openid"), expires: time.Now().Add(time.Minute)}
	mu.Unlock()
	return p.answer(w, r, req, map[string][]string{"code": {code}})
}

// token is the token endpoint.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "POST only")
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return tokenError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
	}
	if r.PostForm.Get("grant_type") == "client_credentials" {
		return p.clientCredentials(w, r)
	}
	clientID, ok := p.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
		return tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		return p.exchange(w, r, clientID)
	case "refresh_token":
		return p.refresh(w, r, clientID)
	}
	return tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "authorization_code, refresh_token or client_credentials")
}

// clientCredentials answers a service's token request (RFC 6749 §4.4): an
// RFC 9068 JWT access token whose sub and client_id are the service and
// whose aud is its registered audience.
func (p *Provider) clientCredentials(w http.ResponseWriter, r *http.Request) error {
	id, secret, _ := credentials(r)
	svc, known := p.Services[id]
	if !known || subtle.ConstantTimeCompare([]byte(secret), []byte(svc.Secret)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
		return tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
	}
	now := p.now()
	// Like its users, a service is <name>@corp.example here (so the demo's
	// allow email rule admits it).
	g := grant{issuer: issuer(r), user: id, clientID: id, scope: r.PostForm.Get("scope"), audience: svc.Audience, email: id + "@corp.example", emailVerified: true,
		issuedAt: now, expires: now.Add(time.Duration(p.ExpiresIn))}
	token, err := p.jwtAccessToken(g)
	if err != nil {
		return err
	}
	remember(token, g)
	return writeJSON(w, http.StatusOK, map[string]any{"access_token": token, "token_type": p.TokenType, "expires_in": int(time.Duration(p.ExpiresIn) / time.Second)})
}

// authenticate applies the client's registration: a client with a secret
// must send it (HTTP Basic or in the body), a public one its client_id.
func (p *Provider) authenticate(r *http.Request) (string, bool) {
	id, secret, basic := credentials(r)
	if _, known := p.Clients[id]; !known {
		return "", false
	}
	want, confidential := p.ClientSecrets[id]
	if !confidential {
		return id, secret == "" && !basic
	}
	return id, subtle.ConstantTimeCompare([]byte(secret), []byte(want)) == 1
}

func (p *Provider) exchange(w http.ResponseWriter, r *http.Request, clientID string) error {
	f := r.PostForm
	mu.Lock()
	c, ok := codes[f.Get("code")]
	refusal := ""
	switch {
	case !ok || time.Now().After(c.expires):
		refusal = "unknown or expired code"
	case c.used:
		// RFC 6749 §4.1.2: a code used twice revokes what it gave.
		reuses.Add(1)
		revokeFamilyLocked(c.family)
		refusal = "code already used"
	case c.grant.clientID != clientID || c.redirectURI != f.Get("redirect_uri"):
		refusal = "the code was issued to another client or redirect_uri"
	case !pkceMatches(c.challenge, f.Get("code_verifier")):
		c.used = true // a wrong verifier ends the code too
		refusal = "code_verifier does not match the code_challenge"
	default:
		c.used = true
		c.family = randomString()
	}
	mu.Unlock()
	if refusal != "" {
		return tokenError(w, http.StatusBadRequest, "invalid_grant", refusal)
	}
	return p.issueTokens(w, c.grant, c.family, c.nonce, c.withIDToken)
}

func (p *Provider) refresh(w http.ResponseWriter, r *http.Request, clientID string) error {
	mu.Lock()
	rt, ok := refreshTokens[r.PostForm.Get("refresh_token")]
	refusal := ""
	switch {
	case !ok || revoked[rt.family] || rt.grant.clientID != clientID:
		refusal = "unknown or revoked refresh token"
	case rt.used:
		reuses.Add(1)
		revokeFamilyLocked(rt.family)
		refusal = "refresh token reused: its family is revoked"
	default:
		rt.used = true
	}
	mu.Unlock()
	if refusal != "" {
		return tokenError(w, http.StatusBadRequest, "invalid_grant", refusal)
	}
	g := rt.grant
	g.issuedAt, g.expires = p.now(), p.now().Add(time.Duration(p.ExpiresIn))
	return p.issueTokens(w, g, rt.family, rt.nonce, rt.withIDToken)
}

// issueTokens answers a token request: a new access token, and a new
// refresh token in family.
func (p *Provider) issueTokens(w http.ResponseWriter, g grant, family, nonce string, withIDToken bool) error {
	access, err := p.accessToken(g)
	if err != nil {
		return err
	}
	next := randomString()
	mu.Lock()
	refreshTokens[next] = &refreshToken{grant: g, family: family, nonce: nonce, withIDToken: withIDToken}
	families[family] = append(families[family], access)
	mu.Unlock()
	body := map[string]any{
		"access_token": access, "token_type": p.TokenType, "refresh_token": next,
		"expires_in": int(time.Duration(p.ExpiresIn) / time.Second),
	}
	if g.scope != "" {
		body["scope"] = g.scope
	}
	if withIDToken {
		id, err := p.idToken(g, nonce, access)
		if err != nil {
			return err
		}
		body["id_token"] = id
	}
	return writeJSON(w, http.StatusOK, body)
}

// revokeFamilyLocked ends a family's refresh tokens and access tokens.
func revokeFamilyLocked(family string) {
	if family == "" {
		return
	}
	revoked[family] = true
	for _, t := range families[family] {
		delete(tokens, t)
	}
}

func pkceMatches(challenge, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

func tokenError(w http.ResponseWriter, status int, code, description string) error {
	return writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

func hasScope(scope, want string) bool { return slices.Contains(strings.Fields(scope), want) }

// revokeLocked revokes token, and its family when it has one.
func revokeLocked(token string) {
	delete(tokens, token)
	if rt, ok := refreshTokens[token]; ok {
		revokeFamilyLocked(rt.family)
		return
	}
	for family, access := range families {
		if slices.Contains(access, token) {
			revokeFamilyLocked(family)
			return
		}
	}
}

// credentials are what a client sent to authenticate: HTTP Basic (both
// form-encoded, RFC 6749 §2.3.1), or client_id and client_secret in the body.
func credentials(r *http.Request) (id, secret string, basic bool) {
	id, secret, basic = r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		return id, secret, true
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), false
}
