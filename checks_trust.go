// Config checks of what proves whom: the secret, how tokens are proved
// genuine (openid or the validate block) and who may enter, and the grant
// with its client authentication at the token endpoint.

package implicitgrant

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/internal/printable"
)

// checkGrant: the grant, and what the code flow needs at the token endpoint.
func (h *Handler) checkGrant() error {
	switch h.ResponseType {
	case ResponseTypeToken:
		for _, f := range []struct {
			name  string
			given bool
		}{{"token_url", h.TokenURL != ""}, {"client_secret", h.clientSecretGiven}, {"token_auth", h.TokenAuth != ""}} {
			if f.given {
				return fmt.Errorf("%s: only for response_type code (the implicit grant never calls the token endpoint)", f.name)
			}
		}
		return nil
	case ResponseTypeCode:
	default:
		return fmt.Errorf("response_type: %q must be token or code", h.ResponseType)
	}
	switch {
	case h.TokenURL == "" && h.OpenID == "":
		return errors.New("token_url: required with response_type code (or openid, whose discovery gives it)")
	case h.TokenURL != "" && !authserver.SecureURL(h.TokenURL):
		return fmt.Errorf("token_url: %q must be an https URL (http only for loopback hosts)", h.TokenURL)
	case h.clientSecretGiven && h.ClientSecret == "":
		return errors.New("client_secret: empty after replacing placeholders (is the environment variable set?)")
	}
	switch h.TokenAuth {
	case authserver.TokenAuthNone:
		if h.ClientSecret != "" {
			return errors.New("token_auth: none sends no secret, but client_secret is set; use client_secret_basic or client_secret_post")
		}
	case authserver.TokenAuthBasic, authserver.TokenAuthPost:
		if h.ClientSecret == "" {
			return fmt.Errorf("token_auth: %s needs client_secret", h.TokenAuth)
		}
	default:
		return fmt.Errorf("token_auth: %q must be client_secret_basic, client_secret_post or none", h.TokenAuth)
	}
	return nil
}

// checkSecrets: the key material.
func (h *Handler) checkSecrets() error {
	switch {
	case h.secretGiven && h.Secret == "":
		return errors.New("secret: empty after replacing placeholders (is the environment variable set?)")
	case h.Secret != "" && len(h.Secret) < minSecretBytes:
		return fmt.Errorf("secret: must be at least %d bytes, got %d", minSecretBytes, len(h.Secret))
	case h.Secret == "" && len(h.PreviousSecrets) > 0:
		return errors.New("secret: previous secrets need a current one")
	}
	for i, p := range h.PreviousSecrets {
		if len(p) < minSecretBytes {
			return fmt.Errorf("secret: previous secret %d must be at least %d bytes, got %d", i+1, minSecretBytes, len(p))
		}
	}
	return nil
}

// checkTrust: how tokens are proved genuine, and who may enter.
func (h *Handler) checkTrust() error {
	v := h.Validation
	switch {
	case h.OpenID == "" && v == nil && h.codeFlow():
		// The token endpoint's answer is the proof (trustTokenEndpoint).
	case h.OpenID == "" && v == nil:
		return errors.New(`trust: no way to prove tokens genuine is configured: add "openid <issuer>", "validate jwt", "validate introspect <url>" or "validate userinfo <url>" (or "validate none" when the upstream checks every token itself)`)
	case h.OpenID != "" && v != nil:
		return errors.New("trust: openid and validate are two ways to prove a token genuine; configure one")
	case h.OpenID != "":
		if !authserver.SecureURL(h.OpenID) {
			return fmt.Errorf("openid: issuer %q must be an https URL (http only for loopback hosts)", h.OpenID)
		}
	default:
		if err := h.checkValidation(); err != nil {
			return err
		}
	}
	if h.Revalidate != 0 && (v == nil || v.Mode != validateIntrospect && v.Mode != validateUserinfo) {
		return errors.New("revalidate: needs validate introspect or validate userinfo (only they can ask the server again)")
	}
	if h.Revalidate < 0 {
		return fmt.Errorf("revalidate: %s must be positive", time.Duration(h.Revalidate))
	}
	for _, rule := range h.Allow {
		if rule.Claim == "" || len(rule.Patterns) == 0 {
			return fmt.Errorf("allow: %q needs a claim and at least one pattern", rule.Claim)
		}
		if v != nil && v.Mode == validateNone {
			return errors.New("allow: validate none knows nobody's claims; use a mode that verifies tokens")
		}
		if v == nil && h.OpenID == "" {
			return errors.New("allow: without openid or validate, the code flow knows nobody's claims; add openid, or validate userinfo|introspect|jwt to learn who the user is")
		}
	}
	for _, c := range h.Claims {
		if c == "id" || !printable.IsToken(c) {
			return fmt.Errorf("claims: %q is not a claim name (\"id\" is the subject's placeholder)", c)
		}
	}
	switch {
	case h.Userinfo != "" && h.OpenID == "":
		return errors.New("userinfo: only with openid (validate userinfo takes every claim from the endpoint already)")
	case h.Userinfo != "" && h.Userinfo != UserinfoMissing && h.Userinfo != UserinfoAlways && h.Userinfo != UserinfoNever:
		return fmt.Errorf("userinfo: %q must be missing, always or never", h.Userinfo)
	}
	return nil
}

// checkValidation: the validate block's mode and the fields it takes.
func (h *Handler) checkValidation() error {
	v := h.Validation
	switch v.Mode {
	case validateJWT:
		if v.Typ != "" && v.Typ != authserver.TypAccessToken && v.Typ != authserver.TypAny {
			return fmt.Errorf("validate jwt: typ %q must be at+jwt or any", v.Typ)
		}
		if !authserver.SecureURL(v.Issuer) {
			return fmt.Errorf("validate jwt: issuer %q must be an https URL (http only for loopback hosts)", v.Issuer)
		}
		if v.JWKSURL != "" && !authserver.SecureURL(v.JWKSURL) {
			return fmt.Errorf("validate jwt: jwks_url %q must be an https URL (http only for loopback hosts)", v.JWKSURL)
		}
	case validateIntrospect, validateUserinfo:
		if !authserver.SecureURL(v.URL) {
			return fmt.Errorf("validate %s: url %q must be an https URL (http only for loopback hosts)", v.Mode, v.URL)
		}
		if v.Mode == validateIntrospect && v.ClientSecret != "" && v.ClientID == "" {
			return errors.New("validate introspect: client_secret without client_id")
		}
	case validateNone:
	default:
		return fmt.Errorf("validate: %q must be jwt, introspect, userinfo or none", v.Mode)
	}
	given := map[string]bool{
		"issuer": v.Issuer != "", "jwks_url": v.JWKSURL != "", "audience": len(v.Audience) > 0,
		"url": v.URL != "", "client_id": v.ClientID != "", "client_secret": v.ClientSecret != "",
	}
	for _, field := range slices.Sorted(maps.Keys(given)) {
		if given[field] && !slices.Contains(validationFields[v.Mode], field) {
			return fmt.Errorf("validate %s: %s does not apply to this mode", v.Mode, field)
		}
	}
	return nil
}
