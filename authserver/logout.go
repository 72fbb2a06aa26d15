package authserver

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/implicitgrant/caddy-implicit-grant/internal/printable"
)

// LogoutToken is a verified back-channel logout token (OpenID Connect
// Back-Channel Logout 1.0 §2.4): whose sessions end (Subject), or which
// login session's (SID), or both.
type LogoutToken struct {
	Subject, SID, JTI string
	IssuedAt          time.Time
}

// BackchannelLogoutEvent is the member of a logout token's events claim.
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// MaxLogoutTokenAge is how old a logout token's iat may be: the server
// sends it as the user logs out, and the replay cache need remember a jti
// only this long.
const MaxLogoutTokenAge = 5 * time.Minute

// maxLogoutName bounds a logout token's sub and sid.
const maxLogoutName = 256

// VerifyLogoutToken checks a logout token as §2.6 says: signed with one
// of the issuer's keys (never alg none or HMAC), iss the issuer, aud this
// client, iat within MaxLogoutTokenAge (and not in the future), the
// back-channel logout event, a jti, sub or sid, and no nonce (an ID token
// is not a logout token). The jti's replay is the caller's to refuse.
func (o *OpenID) VerifyLogoutToken(ctx context.Context, raw string) (LogoutToken, error) {
	switch typ := strings.ToLower(headerTyp(raw)); typ {
	case "", "jwt", "logout+jwt", "application/logout+jwt":
	default:
		return LogoutToken{}, untrusted("the logout token's typ is %q", typ)
	}
	payload, err := o.keys.VerifySignature(ctx, raw)
	if err != nil {
		return LogoutToken{}, err
	}
	var c struct {
		jwt.Claims
		SID    string           `json:"sid"`
		Events json.RawMessage  `json:"events"`
		Nonce  *json.RawMessage `json:"nonce"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return LogoutToken{}, untrusted("the logout token's claims are not a JSON object of the expected types")
	}
	var events map[string]json.RawMessage
	now := o.now()
	switch {
	case c.Issuer != o.Discovery.Issuer:
		return LogoutToken{}, untrusted("the logout token was issued by %q, not %q", c.Issuer, o.Discovery.Issuer)
	case !c.Audience.Contains(o.ClientID):
		return LogoutToken{}, untrusted("the logout token is for another client")
	case c.IssuedAt == nil:
		return LogoutToken{}, untrusted("the logout token has no iat")
	case c.IssuedAt.Time().Before(now.Add(-MaxLogoutTokenAge)):
		return LogoutToken{}, untrusted("the logout token is older than %s", MaxLogoutTokenAge)
	case c.IssuedAt.Time().After(now.Add(Leeway)):
		return LogoutToken{}, untrusted("the logout token was issued in the future")
	case c.Expiry != nil && c.Expiry.Time().Before(now.Add(-Leeway)):
		return LogoutToken{}, untrusted("the logout token expired")
	case c.Nonce != nil:
		return LogoutToken{}, untrusted("the token carries a nonce: an ID token is not a logout token")
	case json.Unmarshal(c.Events, &events) != nil || !isObject(events[BackchannelLogoutEvent]):
		return LogoutToken{}, untrusted("the logout token's events has no back-channel logout event")
	case c.ID == "":
		return LogoutToken{}, untrusted("the logout token has no jti")
	case c.Subject == "" && c.SID == "":
		return LogoutToken{}, untrusted("the logout token has neither sub nor sid")
	case !printableName(c.Subject) || !printableName(c.SID) || len(c.ID) > maxLogoutName:
		return LogoutToken{}, untrusted("the logout token's sub, sid or jti is too long or holds a control character")
	}
	return LogoutToken{Subject: c.Subject, SID: c.SID, JTI: c.ID, IssuedAt: c.IssuedAt.Time()}, nil
}

func isObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return raw != nil && json.Unmarshal(raw, &m) == nil && m != nil
}

func printableName(s string) bool { return len(s) <= maxLogoutName && !printable.HasControl(s) }

// EndSessionEndpoint is the issuer's end_session_endpoint, "" when its
// discovery names none.
func (o *OpenID) EndSessionEndpoint(ctx context.Context) (string, error) {
	doc, err := o.Discovery.Get(ctx)
	if err != nil {
		return "", err
	}
	return doc.EndSessionEndpoint, nil
}
