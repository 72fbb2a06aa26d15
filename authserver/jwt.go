package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// JWT verifies a JWT access token (RFC 9068): its signature with the
// issuer's published keys, its issuer, that it names this client (its
// client_id or azp) or one of the configured audiences, and exp and nbf.
// A token whose client_id or azp names another client is refused whatever
// its audience.
//
// An ID token is not an access token: unless Typ is TypAny, the header's
// typ must say at+jwt (RFC 9068 §4), and a token carrying a nonce is
// refused whatever its typ.
type JWT struct {
	Issuer    string
	ClientID  string
	Audiences []string // default: ClientID
	Typ       string   // TypAccessToken (default) or TypAny
	keys      *KeySet
	now       func() time.Time
}

// The typ settings of JWT.
const (
	TypAccessToken = "at+jwt" // RFC 9068: "at+jwt" or "application/at+jwt", any case
	TypAny         = "any"    // servers that send another typ or none (Auth0)
)

// headerTyp is a compact JWS's typ header, "" when it has none.
func headerTyp(token string) string {
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Typ string `json:"typ"`
	}
	_ = json.Unmarshal(raw, &h)
	return h.Typ
}

func isAccessTokenTyp(typ string) bool {
	return strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt")
}

// NewJWT verifies access tokens from issuer, with keys from jwksURL, or
// from the issuer's discovery document when jwksURL is empty.
func NewJWT(issuer, jwksURL, clientID string, audiences []string, typ string, timeout time.Duration) *JWT {
	url := func(context.Context) (string, error) { return jwksURL, nil }
	if jwksURL == "" {
		url = NewDiscovery(issuer, timeout).JWKSURL
	}
	if len(audiences) == 0 {
		audiences = []string{clientID}
	}
	if typ == "" {
		typ = TypAccessToken
	}
	return &JWT{Issuer: issuer, ClientID: clientID, Audiences: audiences, Typ: typ, keys: NewKeySet(url, timeout), now: time.Now}
}

// Verify implements Verifier.
func (j *JWT) Verify(ctx context.Context, r Response) (Identity, error) {
	if typ := headerTyp(r.AccessToken); j.Typ != TypAny && !isAccessTokenTyp(typ) {
		// Checked before the signature: no key fetch for an ID token.
		return Identity{}, untrusted("the token's typ is %q, not at+jwt (RFC 9068): an ID token or another kind of JWT is not an access token", typ)
	}
	payload, err := j.keys.VerifySignature(ctx, r.AccessToken)
	if err != nil {
		return Identity{}, err
	}
	var std jwt.Claims
	var binding struct {
		ClientID string  `json:"client_id"`
		AZP      string  `json:"azp"`
		Nonce    *string `json:"nonce"`
	}
	var claims map[string]any
	if json.Unmarshal(payload, &std) != nil || json.Unmarshal(payload, &binding) != nil || json.Unmarshal(payload, &claims) != nil {
		return Identity{}, untrusted("access token claims are not a JSON object of the expected types")
	}
	if binding.Nonce != nil {
		return Identity{}, untrusted("the token carries a nonce: it is an ID token, not an access token")
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
