package authserver

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// A bearer is a token a script or a service presents for itself, not a
// login's: the checks are a resource server's (RFC 9068 §4 for a JWT,
// RFC 7662 for introspection), and the token must name one of this site's
// audiences, so that a token for another API does not open this one.

// BearerVerifier checks a presented bearer token.
type BearerVerifier interface {
	VerifyBearer(ctx context.Context, token string, audiences []string) (Identity, error)
}

// VerifyBearer implements BearerVerifier: a JWT access token signed with
// the issuer's keys (see verifyBearerJWT).
func (o *OpenID) VerifyBearer(ctx context.Context, token string, audiences []string) (Identity, error) {
	return verifyBearerJWT(ctx, o.keys, o.Discovery.Issuer, token, audiences, o.now())
}

// VerifyBearer implements BearerVerifier, with the keys validate jwt uses.
func (j *JWT) VerifyBearer(ctx context.Context, token string, audiences []string) (Identity, error) {
	return verifyBearerJWT(ctx, j.keys, j.Issuer, token, audiences, j.now())
}

// verifyBearerJWT is RFC 9068 §4: typ at+jwt (an ID token, typ JWT or
// with a nonce, is not an access token), a signature with one of the
// issuer's keys (asymmetric algorithms only: never none, never HMAC), iss
// the issuer, aud naming one of audiences, exp, nbf and iat within
// Leeway, and a sub.
func verifyBearerJWT(ctx context.Context, keys *KeySet, issuer, token string, audiences []string, now time.Time) (Identity, error) {
	if typ := headerTyp(token); !isAccessTokenTyp(typ) {
		return Identity{}, untrusted("typ is %q, not at+jwt (RFC 9068): not an access token", typ)
	}
	payload, err := keys.VerifySignature(ctx, token)
	if err != nil {
		return Identity{}, err
	}
	var std jwt.Claims
	var extra struct {
		Nonce *json.RawMessage `json:"nonce"`
	}
	var claims map[string]any
	if json.Unmarshal(payload, &std) != nil || json.Unmarshal(payload, &extra) != nil || json.Unmarshal(payload, &claims) != nil {
		return Identity{}, untrusted("the claims are not a JSON object of the expected types")
	}
	switch {
	case extra.Nonce != nil:
		return Identity{}, untrusted("it carries a nonce: an ID token, not an access token")
	case std.Expiry == nil:
		return Identity{}, untrusted("it has no exp")
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, Time: now}, Leeway); err != nil {
		switch err {
		case jwt.ErrExpired:
			return Identity{}, untrusted("it expired")
		case jwt.ErrNotValidYet:
			return Identity{}, untrusted("its nbf is in the future")
		case jwt.ErrIssuedInTheFuture:
			return Identity{}, untrusted("its iat is in the future")
		case jwt.ErrInvalidIssuer:
			return Identity{}, untrusted("it was issued by %q, not %q", std.Issuer, issuer)
		}
		return Identity{}, untrusted("%s", err.Error())
	}
	if !slices.ContainsFunc(audiences, std.Audience.Contains) {
		return Identity{}, untrusted("its aud names none of this site's audiences")
	}
	if std.Subject == "" {
		return Identity{}, untrusted("it has no sub")
	}
	return Identity{Subject: std.Subject, Claims: claims, Expires: std.Expiry.Time()}, nil
}
