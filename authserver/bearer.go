package authserver

import (
	"context"
	"slices"
	"time"
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

// verifyBearerJWT is RFC 9068 §4 (verifyAccessToken, typ at+jwt always),
// with an aud naming one of audiences.
func verifyBearerJWT(ctx context.Context, keys *KeySet, issuer, token string, audiences []string, now time.Time) (Identity, error) {
	at, err := verifyAccessToken(ctx, keys, issuer, token, false, now)
	if err != nil {
		return Identity{}, err
	}
	if !slices.ContainsFunc(audiences, at.std.Audience.Contains) {
		return Identity{}, untrusted("its aud names none of this site's audiences")
	}
	return at.identity(), nil
}
