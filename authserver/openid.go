package authserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// OpenID verifies an "id_token token" response (OpenID Connect Core 1.0
// §3.2), or the ID token the token endpoint gave for a code (§3.1.3.7): the ID token's signature with the issuer's published keys, its
// issuer, audience (and authorized party), expiry, issue time and nonce,
// and that its at_hash matches the access token that came with it. The
// access token is then known to be the issuer's, for this client and this
// login.
type OpenID struct {
	ClientID  string
	Discovery *Discovery
	keys      *KeySet
	verifier  *oidc.IDTokenVerifier
	now       func() time.Time
}

// NewOpenID verifies ID tokens from issuer for clientID.
func NewOpenID(issuer, clientID string, timeout time.Duration) *OpenID {
	d := NewDiscovery(issuer, timeout)
	o := &OpenID{ClientID: clientID, Discovery: d, keys: NewKeySet(d.JWKSURL, timeout), now: time.Now}
	o.verifier = oidc.NewVerifier(issuer, o.keys, &oidc.Config{
		ClientID:             clientID,
		SupportedSigningAlgs: algNames(),
		Now:                  func() time.Time { return o.now().Add(-Leeway) }, // exp gets the same skew as iat
	})
	return o
}

func algNames() []string {
	names := make([]string, len(signingAlgs))
	for i, a := range signingAlgs {
		names[i] = string(a)
	}
	return names
}

// Verify implements Verifier.
func (o *OpenID) Verify(ctx context.Context, r Response) (Identity, error) {
	tok, err := o.idToken(ctx, r.IDToken)
	if err != nil {
		return Identity{}, err
	}
	if !nonceMatches(tok.Nonce, r.Nonces) {
		return Identity{}, untrusted("id_token nonce does not match this login")
	}
	if tok.AccessTokenHash == "" {
		// §3.1.3.8: optional for tokens from the token endpoint, which
		// hands them to this client alone; the fragment's need it.
		if !r.FromTokenEndpoint {
			return Identity{}, untrusted("id_token has no at_hash binding it to the access token")
		}
	} else if err := tok.VerifyAccessToken(r.AccessToken); err != nil {
		return Identity{}, untrusted("id_token at_hash does not match the access token")
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Identity{}, untrusted("id_token claims are not a JSON object")
	}
	if tok.Subject == "" {
		return Identity{}, untrusted("id_token has no sub")
	}
	return Identity{Subject: tok.Subject, Claims: claims}, nil
}

// idToken checks an ID token's signature, issuer, audience (and
// authorized party), expiry and issue time: what every ID token must pass
// (§3.1.3.7, §3.2.2.11).
func (o *OpenID) idToken(ctx context.Context, raw string) (*oidc.IDToken, error) {
	if raw == "" {
		return nil, untrusted("the response has no id_token")
	}
	note := &keyFetchNote{}
	tok, err := o.verifier.Verify(context.WithValue(ctx, keyFetchNoteKey{}, note), raw)
	if note.err != nil {
		return nil, note.err
	}
	if err != nil {
		return nil, idTokenRefusal(err)
	}
	// go-oidc checks iss, aud and exp; these are the rest.
	if len(tok.Audience) > 1 || tok.Audience[0] != o.ClientID {
		var c struct {
			AZP string `json:"azp"`
		}
		if err := tok.Claims(&c); err != nil || c.AZP != o.ClientID {
			return nil, untrusted("id_token has several audiences and its azp is not this client")
		}
	}
	if tok.IssuedAt.After(o.now().Add(Leeway)) {
		return nil, untrusted("id_token issued in the future")
	}
	return tok, nil
}

// VerifyRefreshed checks the ID token a refresh brought (OpenID Connect
// Core §12.2): an ID token like any, for the same user (sub), and bound to
// the new access token when it has at_hash. Its nonce, if any, is the
// login's, which is not kept: the login proved it. It returns the token's
// claims.
func (o *OpenID) VerifyRefreshed(ctx context.Context, idToken, accessToken, subject string) (map[string]any, error) {
	tok, err := o.idToken(ctx, idToken)
	if err != nil {
		return nil, err
	}
	if tok.Subject != subject {
		return nil, untrusted("the refreshed id_token is another user's")
	}
	if tok.AccessTokenHash != "" && tok.VerifyAccessToken(accessToken) != nil {
		return nil, untrusted("the refreshed id_token's at_hash does not match the access token")
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, untrusted("the refreshed id_token's claims are not a JSON object")
	}
	return claims, nil
}

// idTokenRefusal turns go-oidc's error into a reason safe to log (its
// messages name claims, never the token).
func idTokenRefusal(err error) error {
	var expired *oidc.TokenExpiredError
	var u *Untrusted
	switch {
	case errors.As(err, &expired):
		return untrusted("id_token expired")
	case errors.As(err, &u):
		return u
	}
	return untrusted("id_token: %s", err.Error())
}

// AuthorizationEndpoint is the issuer's, from discovery.
func (o *OpenID) AuthorizationEndpoint(ctx context.Context) (string, error) {
	doc, err := o.Discovery.Get(ctx)
	if err != nil {
		return "", err
	}
	return doc.AuthorizationEndpoint, nil
}

func nonceMatches(got string, want []string) bool {
	for _, w := range want {
		if w != "" && subtle.ConstantTimeCompare([]byte(got), []byte(w)) == 1 {
			return true
		}
	}
	return false
}
