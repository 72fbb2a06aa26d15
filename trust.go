// Trust: which way a token is proved to be the authorization server's
// (openid, or validate jwt|introspect|userinfo|none), and who may enter
// (allow rules on the verified claims).

package implicitgrant

import (
	"context"
	"slices"
	"strings"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/internal/printable"
)

// Validation proves access tokens genuine where openid is not used.
type Validation struct {
	// "jwt": the access token is a JWT (RFC 9068), checked with the
	// issuer's keys. "introspect": the server's introspection endpoint
	// (RFC 7662) says it is active and this client's. "userinfo": an
	// endpoint answers 200 for it (proves the token live, not that it is
	// this client's: use allow rules). "none": any token opens a session;
	// only for upstreams that check every token themselves.
	Mode string `json:"mode,omitempty"`

	// jwt: the issuer (the tokens' iss); keys come from its discovery
	// document unless jwks_url is set.
	Issuer string `json:"issuer,omitempty"`

	// jwt: where the signing keys are published.
	JWKSURL string `json:"jwks_url,omitempty"`

	// jwt: audiences that name this site, besides the token's client_id
	// or azp naming client_id. Default: client_id.
	Audience []string `json:"audience,omitempty"`

	// introspect, userinfo: the endpoint.
	URL string `json:"url,omitempty"`

	// introspect: this module's credentials at the introspection endpoint,
	// if it wants any (HTTP Basic). Use {env.*} for the secret.
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`

	// jwt: the JWT header's typ an access token must have. Default
	// "at+jwt" (RFC 9068 §2.1, which also admits "application/at+jwt");
	// "any" accepts tokens of servers that send none or another (Auth0),
	// yet never an ID token's "JWT" with a nonce.
	Typ string `json:"typ,omitempty"`
}

// The validation modes.
const (
	validateJWT        = "jwt"
	validateIntrospect = "introspect"
	validateUserinfo   = "userinfo"
	validateNone       = "none"
)

// validationFields are the fields each mode takes.
var validationFields = map[string][]string{
	validateJWT:        {"issuer", "jwks_url", "audience", "typ"},
	validateIntrospect: {"url", "client_id", "client_secret"},
	validateUserinfo:   {"url"},
	validateNone:       {},
}

// AllowRule admits a user whose claim (a string, or any member of a list)
// matches one of the patterns: "*" matches any run of characters,
// everything else is literal; "email" compares without case.
type AllowRule struct {
	Claim    string   `json:"claim"`
	Patterns []string `json:"patterns"`
}

// DefaultClaims are the claims kept with a session for placeholders.
var DefaultClaims = []string{"sub", "email", "name", "preferred_username"}

// trustMode names the configured way of proving tokens, for events.
func (h *Handler) trustMode() string {
	switch {
	case h.OpenID != "":
		return "openid"
	case h.Validation == nil: // the code flow: the token endpoint's word
		return trustTokenEndpoint
	}
	return h.Validation.Mode
}

// trustTokenEndpoint: the code flow without openid or validate. A token
// the token endpoint returned for this client's code and verifier is the
// server's, and meant for this client; who the user is, nothing says.
const trustTokenEndpoint = "token_endpoint"

// newVerifier builds what checks tokens for the configured mode.
func (h *Handler) newVerifier() authserver.Verifier {
	if h.OpenID != "" {
		h.openid = authserver.NewOpenID(h.OpenID, h.ClientID, authserver.DefaultTimeout)
		return h.openid
	}
	v := h.Validation
	if v == nil {
		return trustAnything{} // trustTokenEndpoint
	}
	switch v.Mode {
	case validateJWT:
		return authserver.NewJWT(v.Issuer, v.JWKSURL, h.ClientID, v.Audience, v.Typ, authserver.DefaultTimeout)
	case validateIntrospect:
		return authserver.NewIntrospect(v.URL, h.ClientID, v.ClientID, v.ClientSecret, authserver.DefaultTimeout)
	case validateUserinfo:
		return authserver.NewUserinfo(v.URL, authserver.DefaultTimeout)
	}
	return trustAnything{}
}

// trustAnything is "validate none", and the token endpoint's word.
type trustAnything struct{}

func (trustAnything) Verify(context.Context, authserver.Response) (authserver.Identity, error) {
	return authserver.Identity{}, nil
}

// refusedBy returns the first allow rule id does not satisfy, or nil. An
// email rule holds only for an address the server says is verified: an
// account that merely claims an address (a self-service sign-up) is not
// its owner.
func (h *Handler) refusedBy(id authserver.Identity) *AllowRule {
	for i, rule := range h.Allow {
		if !rule.admits(id.Claims[rule.Claim]) || rule.Claim == "email" && !h.emailVerified(id) {
			return &h.Allow[i]
		}
	}
	return nil
}

// emailVerified: the server's email_verified (a boolean, or the string
// some servers send), or, where it says nothing, allow_unverified_email.
func (h *Handler) emailVerified(id authserver.Identity) bool {
	switch v := id.Claims["email_verified"].(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	case nil:
		return h.AllowUnverifiedEmail
	}
	return false
}

// controlCharacterIn names a claim the module uses (the subject, a kept
// claim, one an allow rule reads) whose value holds a control character,
// or "". Such a login is refused before any rule is matched: a NUL or a
// newline can make a value match a pattern it does not, or split a header.
func (h *Handler) controlCharacterIn(id authserver.Identity) string {
	if printable.HasControl(id.Subject) {
		return "sub"
	}
	for _, name := range h.usedClaims() {
		values := []any{id.Claims[name]}
		if list, ok := id.Claims[name].([]any); ok {
			values = list
		}
		for _, v := range values {
			if s, ok := v.(string); ok && printable.HasControl(s) {
				return name
			}
		}
	}
	return ""
}

// usedClaims are the claims the module reads: the kept ones and those the
// allow rules match.
func (h *Handler) usedClaims() []string {
	names := slices.Clone(h.Claims)
	for _, rule := range h.Allow {
		names = append(names, rule.Claim)
	}
	return names
}

func (rule AllowRule) admits(claim any) bool {
	var values []string
	switch v := claim.(type) {
	case string:
		values = []string{v}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				values = append(values, s)
			}
		}
	}
	for _, value := range values {
		for _, p := range rule.Patterns {
			if rule.Claim == "email" {
				value, p = strings.ToLower(value), strings.ToLower(p)
			}
			if globMatch(p, value) {
				return true
			}
		}
	}
	return false
}

// globMatch reports whether s matches pattern, where "*" matches any run
// of characters and everything else only itself. Linear in len(s) times
// the number of stars, whatever the input.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return s == pattern
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	last := parts[len(parts)-1]
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

func (rule AllowRule) String() string {
	return rule.Claim + " " + strings.Join(rule.Patterns, " ")
}
