package devprovider

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// grant is what the user approved: who, for which client and scopes.
type grant struct {
	issuer, user, clientID, scope, email string
	sid                                  string // the login, as OpenID Connect's sid names it
	audience                             string // a service's token: its aud
	emailVerified                        bool
	groups                               []string
	issuedAt, expires                    time.Time
}

func (p *Provider) grant(iss, user, clientID, scope, sid string) grant {
	u, ok := p.Users[user]
	if !ok {
		u = User{Email: user + "@corp.example"}
	}
	now := p.now()
	return grant{issuer: iss, user: user, clientID: clientID, scope: scope, email: u.Email, emailVerified: !u.EmailUnverified, groups: u.Groups,
		sid: sid, issuedAt: now, expires: now.Add(time.Duration(p.ExpiresIn))}
}

// tokens remembers every access token issued, for userinfo and
// introspection. Process-wide, so a config reload keeps them.
var tokens = map[string]grant{}

// accessToken issues an opaque or JWT access token for g and remembers it.
func (p *Provider) accessToken(g grant) (string, error) {
	var token string
	if p.AccessTokens == "jwt" {
		var err error
		if token, err = p.jwtAccessToken(g); err != nil {
			return "", err
		}
	} else {
		token = randomString()
		for len(token) < p.TokenSize {
			token += randomString()
		}
		if p.TokenSize > 0 {
			token = token[:p.TokenSize]
		}
	}
	remember(token, g)
	return token, nil
}

// jwtAccessToken is an RFC 9068 access token for g.
func (p *Provider) jwtAccessToken(g grant) (string, error) {
	aud := []string{}
	if g.audience != "" {
		aud = []string{g.audience}
	}
	claims := map[string]any{
		"iss": g.issuer, "sub": g.user, "aud": aud, "client_id": g.clientID, "scope": g.scope,
		"iat": g.issuedAt.Unix(), "exp": g.expires.Unix(), "jti": randomString(), "email": g.email, "email_verified": g.emailVerified, "groups": g.groups,
	}
	if g.email == "" {
		delete(claims, "email")
		delete(claims, "email_verified")
	}
	if p.TokenSize > 0 {
		claims["pad"] = strings.Repeat("p", max(p.TokenSize*3/4-300, 1)) // base64 grows it by 4/3
	}
	return sign(g.issuer, claims, "at+jwt")
}

// remember keeps a token's grant for userinfo and introspection.
func remember(token string, g grant) {
	mu.Lock()
	defer mu.Unlock()
	if len(tokens) >= 10_000 { // a long demo or a load test: forget expired tokens
		for t, g := range tokens {
			if time.Now().After(g.expires) {
				delete(tokens, t)
			}
		}
	}
	tokens[token] = g
}

// idToken issues an OpenID Connect ID token for g, bound to the login by
// nonce and to accessToken by at_hash (OpenID Connect Core §3.2.2.10).
// The user's claims are in it unless ClaimsAtUserinfo.
func (p *Provider) idToken(g grant, nonce, accessToken string) (string, error) {
	sum := sha256.Sum256([]byte(accessToken))
	claims := map[string]any{
		"iss": g.issuer, "sub": g.user, "aud": g.clientID, "iat": g.issuedAt.Unix(), "exp": g.expires.Unix(),
		"nonce": nonce, "at_hash": base64.RawURLEncoding.EncodeToString(sum[:16]), "sid": g.sid,
	}
	if !p.ClaimsAtUserinfo {
		maps.Copy(claims, g.userClaims())
	}
	return sign(g.issuer, claims, "JWT")
}

// userClaims are what g says of the user (a user without an email has
// no email claims).
func (g grant) userClaims() map[string]any {
	claims := map[string]any{"name": g.user, "preferred_username": g.user, "groups": g.groups}
	if g.email != "" {
		claims["email"], claims["email_verified"] = g.email, g.emailVerified
	}
	return claims
}

// lookup returns the grant of a live token.
func lookup(token string) (grant, bool) {
	mu.Lock()
	g, ok := tokens[token]
	mu.Unlock()
	return g, ok && time.Now().Before(g.expires)
}

// keys holds each issuer's signing key, process-wide (a config reload
// keeps them) and per issuer (providers on other origins, as parallel
// tests run them, rotate their keys independently).
var keys = struct {
	sync.Mutex
	byIssuer map[string]*signingKey
}{byIssuer: map[string]*signingKey{}}

type signingKey struct {
	key *rsa.PrivateKey
	kid string
}

// keyOf returns iss's key, made on first use.
func keyOf(iss string) (*signingKey, error) {
	keys.Lock()
	defer keys.Unlock()
	if k, ok := keys.byIssuer[iss]; ok {
		return k, nil
	}
	return newKeyLocked(iss)
}

// rotate replaces iss's key: tokens the old one signed no longer verify,
// and the published set holds only the new key.
func rotate(iss string) error {
	keys.Lock()
	defer keys.Unlock()
	_, err := newKeyLocked(iss)
	return err
}

func newKeyLocked(iss string) (*signingKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	k := &signingKey{key: key, kid: randomString()[:16]}
	keys.byIssuer[iss] = k
	return k, nil
}

func sign(iss string, claims map[string]any, typ string) (string, error) {
	k, err := keyOf(iss)
	if err != nil {
		return "", err
	}
	key := jose.JSONWebKey{Key: k.key, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig"}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

func publicKeys(iss string) (jose.JSONWebKeySet, error) {
	k, err := keyOf(iss)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.key.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig"}}}, nil
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
