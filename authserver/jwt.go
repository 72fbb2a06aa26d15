package authserver

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// JWT verifies a JWT access token (RFC 9068): its signature with the
// issuer's published keys, its issuer, that it names this client (its
// client_id or azp) or one of the configured audiences, and exp and nbf.
// A token whose client_id or azp names another client is refused whatever
// its audience.
type JWT struct {
	Issuer    string
	ClientID  string
	Audiences []string // default: ClientID
	keys      *KeySet
	now       func() time.Time
}

// NewJWT verifies access tokens from issuer, with keys from jwksURL, or
// from the issuer's discovery document when jwksURL is empty.
func NewJWT(issuer, jwksURL, clientID string, audiences []string, timeout time.Duration) *JWT {
	url := func(context.Context) (string, error) { return jwksURL, nil }
	if jwksURL == "" {
		url = NewDiscovery(issuer, timeout).JWKSURL
	}
	if len(audiences) == 0 {
		audiences = []string{clientID}
	}
	return &JWT{Issuer: issuer, ClientID: clientID, Audiences: audiences, keys: NewKeySet(url, timeout), now: time.Now}
}

// Verify implements Verifier.
func (j *JWT) Verify(ctx context.Context, r Response) (Identity, error) {
	payload, err := j.keys.VerifySignature(ctx, r.AccessToken)
	if err != nil {
		return Identity{}, err
	}
	var std jwt.Claims
	var binding struct {
		ClientID string `json:"client_id"`
		AZP      string `json:"azp"`
	}
	var claims map[string]any
	if json.Unmarshal(payload, &std) != nil || json.Unmarshal(payload, &binding) != nil || json.Unmarshal(payload, &claims) != nil {
		return Identity{}, untrusted("access token claims are not a JSON object of the expected types")
	}
	if std.Expiry == nil {
		return Identity{}, untrusted("access token has no exp")
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: j.Issuer, Time: j.now()}, Leeway); err != nil {
		switch err {
		case jwt.ErrExpired:
			return Identity{}, untrusted("access token expired")
		case jwt.ErrInvalidIssuer:
			return Identity{}, untrusted("access token issued by %q, not %q", std.Issuer, j.Issuer)
		}
		return Identity{}, untrusted("access token: %s", err.Error())
	}
	for _, other := range []string{binding.ClientID, binding.AZP} {
		if other != "" && other != j.ClientID {
			return Identity{}, untrusted("access token was issued to another client")
		}
	}
	named := binding.ClientID == j.ClientID || binding.AZP == j.ClientID
	for _, a := range j.Audiences {
		named = named || slices.Contains(std.Audience, a)
	}
	if !named {
		return Identity{}, untrusted("access token names neither this client nor a configured audience")
	}
	if std.Subject == "" {
		return Identity{}, untrusted("access token has no sub")
	}
	return Identity{Subject: std.Subject, Claims: claims, Expires: std.Expiry.Time()}, nil
}
