package devprovider

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// grant is what the user approved: who, for which client and scopes.
type grant struct {
	issuer, user, clientID, scope, email string
	groups                               []string
	issuedAt, expires                    time.Time
}

func (p *Provider) grant(iss, user, clientID, scope string) grant {
	u, ok := p.Users[user]
	if !ok {
		u = User{Email: user + "@corp.example"}
	}
	now := p.now()
	return grant{issuer: iss, user: user, clientID: clientID, scope: scope, email: u.Email, groups: u.Groups,
		issuedAt: now, expires: now.Add(time.Duration(p.ExpiresIn))}
}

// tokens remembers every access token issued, for userinfo and
// introspection. Process-wide, so a config reload keeps them.
var tokens = map[string]grant{}

// accessToken issues an opaque or JWT access token for g and remembers it.
func (p *Provider) accessToken(g grant) (string, error) {
	var token string
	if p.AccessTokens == "jwt" {
		claims := map[string]any{
			"iss": g.issuer, "sub": g.user, "aud": []string{}, "client_id": g.clientID, "scope": g.scope,
			"iat": g.issuedAt.Unix(), "exp": g.expires.Unix(), "jti": randomString(),
		}
		if p.TokenSize > 0 {
			claims["pad"] = strings.Repeat("p", max(p.TokenSize*3/4-300, 1)) // base64 grows it by 4/3
		}
		var err error
		if token, err = signingKey.sign(claims, "at+jwt"); err != nil {
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
	return token, nil
}

// idToken issues an OpenID Connect ID token for g, bound to the login by
// nonce and to accessToken by at_hash (OpenID Connect Core §3.2.2.10).
func idToken(g grant, nonce, accessToken string) (string, error) {
	sum := sha256.Sum256([]byte(accessToken))
	return signingKey.sign(map[string]any{
		"iss": g.issuer, "sub": g.user, "aud": g.clientID, "iat": g.issuedAt.Unix(), "exp": g.expires.Unix(),
		"nonce": nonce, "at_hash": base64.RawURLEncoding.EncodeToString(sum[:16]),
		"email": g.email, "name": g.user, "preferred_username": g.user, "groups": g.groups,
	}, "JWT")
}

// lookup returns the grant of a live token.
func lookup(token string) (grant, bool) {
	mu.Lock()
	g, ok := tokens[token]
	mu.Unlock()
	return g, ok && time.Now().Before(g.expires)
}

// keyHolder is the provider's signing key, process-wide.
type keyHolder struct {
	mu  sync.Mutex
	key *rsa.PrivateKey
	kid string
}

var signingKey keyHolder

func (k *keyHolder) ensure() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil {
		return nil
	}
	return k.newKeyLocked()
}

// rotate replaces the key: tokens it signed no longer verify, and the
// published set holds only the new key.
func (k *keyHolder) rotate() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.newKeyLocked()
}

func (k *keyHolder) newKeyLocked() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	k.key, k.kid = key, randomString()[:16]
	return nil
}

func (k *keyHolder) sign(claims map[string]any, typ string) (string, error) {
	k.mu.Lock()
	key := jose.JSONWebKey{Key: k.key, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig"}
	k.mu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

func (k *keyHolder) public() jose.JSONWebKeySet {
	k.mu.Lock()
	defer k.mu.Unlock()
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.key.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig"}}}
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
