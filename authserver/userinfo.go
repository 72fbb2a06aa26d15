package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// Userinfo calls a userinfo-style endpoint with the token: an answer of
// 200 with a JSON object proves the token is live at the server. It does
// not prove the token was issued to this client; allow rules are then what
// keeps strangers out.
type Userinfo struct {
	URL    string
	client client
}

// NewUserinfo calls endpoint.
func NewUserinfo(endpoint string, timeout time.Duration) *Userinfo {
	return &Userinfo{URL: endpoint, client: newClient(timeout)}
}

// Verify implements Verifier.
func (u *Userinfo) Verify(ctx context.Context, r Response) (Identity, error) {
	status, mediaType, body, err := callUserinfo(ctx, u.client, u.URL, r.AccessToken)
	switch {
	case err != nil:
		return Identity{}, err
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return Identity{}, untrusted("the userinfo endpoint refused the token (%d)", status)
	case status != http.StatusOK:
		return Identity{}, fmt.Errorf("%w: the userinfo endpoint answered %d", ErrUnavailable, status)
	case mediaType == "application/jwt":
		return Identity{}, untrusted("the userinfo endpoint answered a JWT: use openid, which verifies it")
	}
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil || claims == nil {
		return Identity{}, untrusted("the userinfo endpoint's answer is not a JSON object")
	}
	id := Identity{Claims: claims}
	// Spotify's /v1/me has "id" where OpenID's userinfo has "sub".
	for _, name := range []string{"sub", "id"} {
		switch v := claims[name].(type) {
		case string:
			id.Subject = v
		case float64:
			id.Subject = strconv.FormatFloat(v, 'f', -1, 64)
		}
		if id.Subject != "" {
			break
		}
	}
	if id.Subject == "" {
		return Identity{}, untrusted("the userinfo endpoint's answer has neither sub nor id")
	}
	return id, nil
}

// callUserinfo GETs endpoint with the bearer token; the answer's status,
// media type (lower case) and bounded body.
func callUserinfo(ctx context.Context, c client, endpoint, accessToken string) (int, string, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, endpoint, nil)
	if err != nil {
		return 0, "", nil, fmt.Errorf("%w: userinfo url: %w", ErrUnavailable, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json, application/jwt")
	status, header, body, err := c.doWithHeader(ctx, req)
	if err != nil {
		return 0, "", nil, err
	}
	mediaType, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	return status, strings.ToLower(mediaType), body, nil
}

// protocolClaims are what an ID token says about itself and the login.
// A userinfo answer never changes them (OpenID Connect Core §5.3.2: the
// ID token's word stands for sub, iss and aud; the rest describe the
// token, not the user).
var protocolClaims = []string{"iss", "sub", "aud", "azp", "exp", "iat", "nbf", "jti", "nonce", "at_hash", "c_hash", "auth_time", "acr", "amr", "sid"}

// IsProtocolClaim says whether a claim describes the token or the login
// rather than the user: userinfo never supplies one.
func IsProtocolClaim(name string) bool { return slices.Contains(protocolClaims, name) }

// UserinfoClaims asks the issuer's userinfo endpoint (OpenID Connect Core
// §5.3) who the access token's user is: a JSON object, or a JWT signed
// with the issuer's keys (its iss and aud, when present, must be the
// issuer and this client). Its sub must be subject, the ID token's: a
// different one means the access token is not this login's (§5.3.2), and
// is Untrusted. No claims and no error: discovery names no endpoint.
// Anything else that keeps the claims from being known wraps ErrUnavailable.
func (o *OpenID) UserinfoClaims(ctx context.Context, accessToken, subject string) (map[string]any, error) {
	doc, err := o.Discovery.Get(ctx)
	if err != nil {
		return nil, err
	}
	if doc.UserinfoEndpoint == "" {
		return nil, nil
	}
	status, mediaType, body, err := callUserinfo(ctx, o.Discovery.client, doc.UserinfoEndpoint, accessToken)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("%w: the userinfo endpoint answered %d", ErrUnavailable, status)
	}
	if mediaType == "application/jwt" {
		if body, err = o.signedUserinfo(ctx, strings.TrimSpace(string(body))); err != nil {
			return nil, err
		}
	}
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil || claims == nil {
		return nil, fmt.Errorf("%w: the userinfo endpoint's answer is not a JSON object", ErrUnavailable)
	}
	if sub, _ := claims["sub"].(string); sub != subject {
		return nil, untrusted("the userinfo answer is another user's (its sub is not the id_token's)")
	}
	return claims, nil
}

// signedUserinfo verifies a JWT userinfo answer (§5.3.2) and returns its
// claims.
func (o *OpenID) signedUserinfo(ctx context.Context, raw string) ([]byte, error) {
	if strings.Count(raw, ".") == 4 {
		return nil, fmt.Errorf("%w: the userinfo answer is encrypted (JWE), which is not supported", ErrUnavailable)
	}
	payload, err := o.keys.VerifySignature(ctx, raw)
	if err != nil {
		if u, ok := errors.AsType[*Untrusted](err); ok {
			return nil, untrusted("the signed userinfo answer: %s", u.Reason)
		}
		return nil, err
	}
	var c struct {
		Iss *string      `json:"iss"`
		Aud jwt.Audience `json:"aud"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return nil, untrusted("the signed userinfo answer's claims are not a JSON object of the expected types")
	}
	if c.Iss != nil && *c.Iss != o.Discovery.Issuer {
		return nil, untrusted("the signed userinfo answer was issued by %q, not %q", *c.Iss, o.Discovery.Issuer)
	}
	if c.Aud != nil && !slices.Contains(c.Aud, o.ClientID) {
		return nil, untrusted("the signed userinfo answer is for another client")
	}
	return payload, nil
}
