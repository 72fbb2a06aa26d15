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
	at, err := verifyAccessToken(ctx, j.keys, j.Issuer, r.AccessToken, j.Typ == TypAny, j.now())
	if err != nil {
		return Identity{}, err
	}
	var binding struct {
		ClientID string `json:"client_id"`
		AZP      string `json:"azp"`
	}
	if json.Unmarshal(at.payload, &binding) != nil {
		return Identity{}, untrusted("access token claims are not a JSON object of the expected types")
	}
	for _, other := range []string{binding.ClientID, binding.AZP} {
		if other != "" && other != j.ClientID {
			return Identity{}, untrusted("access token was issued to another client")
		}
	}
	named := binding.ClientID == j.ClientID || binding.AZP == j.ClientID
	for _, a := range j.Audiences {
		named = named || slices.Contains(at.std.Audience, a)
	}
	if !named {
		return Identity{}, untrusted("access token names neither this client nor a configured audience")
	}
	return at.identity(), nil
}

// accessToken is a JWT access token that passed verifyAccessToken.
type accessToken struct {
	std     jwt.Claims
	claims  map[string]any
	payload []byte
}

func (at accessToken) identity() Identity {
	return Identity{Subject: at.std.Subject, Claims: at.claims, Expires: at.std.Expiry.Time()}
}

// verifyAccessToken checks a JWT access token as RFC 9068 §4 asks, all
// but whom it is for: typ at+jwt (unless anyTyp; checked before the
// signature, so an ID token costs no key fetch), a signature with one of
// the issuer's keys (asymmetric algorithms only: never none, never HMAC),
// no nonce (an ID token is not an access token, whatever its typ), exp,
// iss, nbf and iat within Leeway, and a sub.
func verifyAccessToken(ctx context.Context, keys *KeySet, issuer, token string, anyTyp bool, now time.Time) (accessToken, error) {
	var at accessToken
	if typ := headerTyp(token); !anyTyp && !isAccessTokenTyp(typ) {
		return at, untrusted("the token's typ is %q, not at+jwt (RFC 9068): an ID token or another kind of JWT is not an access token", typ)
	}
	payload, err := keys.VerifySignature(ctx, token)
	if err != nil {
		return at, err
	}
	var nonce struct {
		Nonce *json.RawMessage `json:"nonce"`
	}
	if json.Unmarshal(payload, &at.std) != nil || json.Unmarshal(payload, &nonce) != nil || json.Unmarshal(payload, &at.claims) != nil {
		return at, untrusted("access token claims are not a JSON object of the expected types")
	}
	at.payload = payload
	switch {
	case nonce.Nonce != nil:
		return at, untrusted("the token carries a nonce: it is an ID token, not an access token")
	case at.std.Expiry == nil:
		return at, untrusted("access token has no exp")
	}
	if err := at.std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, Time: now}, Leeway); err != nil {
		switch err {
		case jwt.ErrExpired:
			return at, untrusted("access token expired")
		case jwt.ErrNotValidYet:
			return at, untrusted("access token not valid yet (nbf)")
		case jwt.ErrIssuedInTheFuture:
			return at, untrusted("access token issued in the future")
		case jwt.ErrInvalidIssuer:
			return at, untrusted("access token issued by %q, not %q", at.std.Issuer, issuer)
		}
		return at, untrusted("access token: %s", err.Error())
	}
	if at.std.Subject == "" {
		return at, untrusted("access token has no sub")
	}
	return at, nil
}
