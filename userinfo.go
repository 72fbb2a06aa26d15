// Claims from userinfo: with openid, what the ID token does not say about
// the user is asked of the issuer's userinfo endpoint (OpenID Connect
// Core §5.4 puts the profile and email claims there, and not in the ID
// token, whenever an access token is issued: ZITADEL and Okta do so).
// Once per login, and once per refresh that needs it; never per request.

package implicitgrant

import (
	"context"
	"errors"
	"slices"

	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
)

// The userinfo settings.
const (
	UserinfoMissing = "missing" // the default
	UserinfoAlways  = "always"
	UserinfoNever   = "never"
)

// userinfoAsked is which of names to ask userinfo for, given the claims
// known: those missing, or, with "always", all of them. None without
// openid.
func (h *Handler) userinfoAsked(claims map[string]any, names []string) []string {
	if h.openid == nil || h.Userinfo == UserinfoNever {
		return nil
	}
	var asked []string
	for _, name := range names {
		if _, has := claims[name]; h.Userinfo == UserinfoAlways || !has {
			asked = append(asked, name)
		}
	}
	return asked
}

// userClaims are those of names that describe the user, not the token
// (userinfo has only those), each once.
func userClaims(names []string) []string {
	names = slices.Clone(names)
	slices.Sort(names)
	return slices.DeleteFunc(slices.Compact(names), authserver.IsProtocolClaim)
}

// loginUserinfo fills in what userinfo says of a login's user. The
// failure, if any, is what the person is shown: another user's answer (a
// substituted token) refuses the login; an endpoint that cannot answer
// refuses it only when an allow rule needs a claim the ID token lacks,
// and otherwise leaves those claims empty.
func (h *Handler) loginUserinfo(ctx context.Context, accessToken string, id *authserver.Identity) *failure {
	asked := h.userinfoAsked(id.Claims, userClaims(h.usedClaims()))
	if len(asked) == 0 {
		return nil
	}
	info, err := h.openid.UserinfoClaims(ctx, accessToken, id.Subject)
	switch {
	case err == nil:
		id.Claims = withUserinfo(id.Claims, info, asked)
		return nil
	case !errors.Is(err, authserver.ErrUnavailable):
		h.logRefusal(zap.WarnLevel, "refused a login: the userinfo answer does not match the login", zap.String("user", id.Subject), zap.Error(err))
		return &failure{code: codeInvalidToken}
	}
	for _, rule := range h.Allow {
		if _, has := id.Claims[rule.Claim]; !has {
			h.logRefusal(zap.ErrorLevel, "cannot finish a login: an allow rule needs a claim only userinfo gives, and userinfo is unavailable",
				zap.String("user", id.Subject), zap.String("claim", rule.Claim), zap.Error(err))
			return &failure{code: codeServerUnavailable}
		}
	}
	h.logRefusal(zap.WarnLevel, "userinfo is unavailable: the login goes on, and the claims only it gives are empty", zap.String("user", id.Subject),
		zap.Strings("claims", asked), zap.Error(err))
	return nil
}

// refreshedIdentity is a refreshed session's packed identity: its kept
// claims, updated from the refresh's ID token (idClaims, nil if none)
// and from userinfo as at a login. Userinfo failing keeps what is known;
// another user's answer (Untrusted) ends the session. The allow rules
// were settled at the login and are not matched again.
func (h *Handler) refreshedIdentity(ctx context.Context, packed string, idClaims map[string]any, accessToken string) (string, error) {
	claims := keptClaims(packed)
	for name, v := range idClaims {
		if !authserver.IsProtocolClaim(name) {
			claims[name] = v
		}
	}
	asked := h.userinfoAsked(claims, userClaims(h.Claims))
	if idClaims == nil && len(asked) == 0 {
		return packed, nil // the common case: nothing new, nothing lacking
	}
	subject := subjectOf(packed)
	if len(asked) > 0 {
		info, err := h.openid.UserinfoClaims(ctx, accessToken, subject)
		switch {
		case err == nil:
			claims = withUserinfo(claims, info, asked)
		case !errors.Is(err, authserver.ErrUnavailable):
			return "", err
		default:
			h.logRefusal(zap.WarnLevel, "userinfo is unavailable at a refresh: the session keeps the claims it had", zap.String("user", subject), zap.Error(err))
		}
	}
	id := authserver.Identity{Subject: subject, Claims: claims}
	if h.controlCharacterIn(id) != "" {
		return packed, nil // what was checked at the login stands
	}
	return repackIdentity(packed, id, h.Claims), nil
}

// withUserinfo is claims with userinfo's answer for the asked names,
// never for the ID token's own claims (sub, iss, aud…). Its
// email_verified goes with its email: a verification is about the
// address it came with.
func withUserinfo(claims, info map[string]any, asked []string) map[string]any {
	if claims == nil {
		claims = map[string]any{}
	}
	for _, name := range asked {
		v, ok := info[name]
		switch {
		case !ok || name == "email_verified" || authserver.IsProtocolClaim(name):
		case name == "email":
			claims["email"] = v
			delete(claims, "email_verified")
			if verified, ok := info["email_verified"]; ok {
				claims["email_verified"] = verified
			}
		default:
			claims[name] = v
		}
	}
	if _, has := claims["email"]; !has && slices.Contains(asked, "email_verified") {
		if verified, ok := info["email_verified"]; ok {
			claims["email_verified"] = verified
		}
	}
	return claims
}
