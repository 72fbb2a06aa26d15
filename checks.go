// Config checks: every rule a config value must pass, grouped, each in one
// place, for Caddyfile and JSON users alike; they run in Provision. The
// groups on trust and the grant are in checks_trust.go.

package implicitgrant

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/internal/printable"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
)

// checkConfig refuses every bad value with the field's name. It runs in
// Provision because values are known only once placeholders are replaced,
// and no store may be opened for a config that fails. Each rule lives in
// one of the groups below, and nowhere else.
func (h *Handler) checkConfig() error {
	for _, check := range []func() error{h.checkSizes, h.checkSecrets, h.checkServer, h.checkGrant, h.checkTrust, h.checkRequest, h.checkPaths, h.checkLogout, h.checkAcceptBearer, h.checkTimes, h.checkPolicies, h.checkStore} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// Bounds on config values: generous for any real setup, and small enough
// that no value can make a request's work, a cookie or a header explode.
const (
	maxURLBytes      = 2048
	maxNameBytes     = 64 // cookie_name, a param's or claim's name
	maxPathBytes     = 256
	maxValueBytes    = 1024 // client_id, a param's value, a pattern
	maxSecretBytes   = 4096
	maxListEntries   = 32 // scopes, params, claims, allow rules, patterns, audiences
	maxStateTTL      = time.Hour
	maxTokenLifetime = 365 * 24 * time.Hour
	// A user's sessions are scanned at each of their logins: a few
	// thousand is already far more than one person's browsers.
	maxSessionsPerUser = 10_000
)

// checkSizes bounds every value's size and every list's length.
func (h *Handler) checkSizes() error {
	type bound struct {
		field string
		n     int
		limit int
		unit  string
	}
	const by, entries = "bytes", "entries"
	bounds := []bound{
		{"authorize_url", len(h.AuthorizeURL), maxURLBytes, by}, {"redirect_uri", len(h.RedirectURI), maxURLBytes, by},
		{"logout_redirect", len(h.LogoutRedirect), maxURLBytes, by}, {"openid", len(h.OpenID), maxURLBytes, by},
		{"revocation_url", len(h.RevocationURL), maxURLBytes, by}, {"accept_bearer", len(h.AcceptBearer), maxListEntries, entries}, {"backchannel_logout_path", len(h.BackchannelLogoutPath), maxPathBytes, by},
		{"cookie_name", len(h.CookieName), maxNameBytes, by}, {"client_id", len(h.ClientID), maxValueBytes, by},
		{"login_path", len(h.LoginPath), maxPathBytes, by}, {"logout_path", len(h.LogoutPath), maxPathBytes, by},
		{"secret", len(h.Secret), maxSecretBytes, by}, {"secret: previous secrets", len(h.PreviousSecrets), 4, entries},
		{"scope", len(h.Scopes), maxListEntries, entries}, {"param", len(h.Params), maxListEntries, entries},
		{"claims", len(h.Claims), maxListEntries, entries}, {"allow", len(h.Allow), maxListEntries, entries},
		{"token_url", len(h.TokenURL), maxURLBytes, by}, {"client_secret", len(h.ClientSecret), maxSecretBytes, by},
	}
	if rh := h.RequireHeader; rh != nil {
		bounds = append(bounds, bound{"require_header: name", len(rh.Name), maxNameBytes, by}, bound{"require_header: value", len(rh.Value), maxValueBytes, by})
	}
	for _, p := range h.PreviousSecrets {
		bounds = append(bounds, bound{"secret: a previous secret", len(p), maxSecretBytes, by})
	}
	for _, s := range h.Scopes {
		bounds = append(bounds, bound{"scope: a scope", len(s), maxPathBytes, by})
	}
	for k, v := range h.Params {
		bounds = append(bounds, bound{"param: a name", len(k), maxNameBytes, by}, bound{"param " + k[:min(len(k), 32)], len(v), maxValueBytes, by})
	}
	for _, c := range h.Claims {
		bounds = append(bounds, bound{"claims: a name", len(c), maxNameBytes, by})
	}
	for _, rule := range h.Allow {
		bounds = append(bounds, bound{"allow: a claim name", len(rule.Claim), maxNameBytes, by}, bound{"allow: patterns", len(rule.Patterns), maxListEntries, entries})
		for _, p := range rule.Patterns {
			bounds = append(bounds, bound{"allow: a pattern", len(p), maxValueBytes, by})
		}
	}
	if v := h.Validation; v != nil {
		bounds = append(bounds, bound{"validate: issuer", len(v.Issuer), maxURLBytes, by}, bound{"validate: jwks_url", len(v.JWKSURL), maxURLBytes, by},
			bound{"validate: url", len(v.URL), maxURLBytes, by}, bound{"validate: client_id", len(v.ClientID), maxURLBytes, by},
			bound{"validate: client_secret", len(v.ClientSecret), maxURLBytes, by}, bound{"validate: audience", len(v.Audience), maxListEntries, entries})
	}
	for _, b := range bounds {
		if b.n > b.limit {
			return fmt.Errorf("%s: %d %s; at most %d", b.field, b.n, b.unit, b.limit)
		}
	}
	return nil
}

// checkServer: where the authorization server and the callback are.
func (h *Handler) checkServer() error {
	if h.AuthorizeURL == "" {
		if h.OpenID == "" { // with openid, discovery gives it
			return errors.New("authorize_url: required (or openid, whose discovery gives it)")
		}
	} else if err := authserver.CheckAuthorizeURL(h.AuthorizeURL); err != nil {
		return fmt.Errorf("authorize_url: %w", err)
	}
	if h.ClientID == "" {
		return errors.New("client_id: required")
	}
	if h.RedirectURI == "" {
		return errors.New("redirect_uri: required")
	}
	ru, err := url.Parse(h.RedirectURI)
	if err != nil || ru.Host == "" || (ru.Scheme != "https" && ru.Scheme != "http") || ru.Fragment != "" || ru.RawQuery != "" {
		return fmt.Errorf("redirect_uri: %q must be an absolute http(s) URL without query or fragment", h.RedirectURI)
	}
	if ru.Scheme == "http" && !authserver.IsLoopback(ru.Hostname()) {
		return fmt.Errorf("redirect_uri: %q must use https (http is allowed only for loopback hosts: browsers keep no secure cookie elsewhere)", h.RedirectURI)
	}
	return nil
}

// checkRequest: what the authorization request asks for.
func (h *Handler) checkRequest() error {
	for _, s := range h.Scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") || !printable.IsToken(s) {
			return fmt.Errorf("scope: %q is not a valid scope token", s)
		}
	}
	for name := range h.Params {
		switch {
		case name == "":
			return errors.New("param: empty parameter name")
		case name == "response_mode":
			return errors.New("param: response_mode is the response_mode subdirective (fragment or form_post)")
		case slices.Contains(authserver.OwnParams, name):
			return fmt.Errorf("param: %q is set by implicit_grant itself and cannot be overridden", name)
		case name == "scope" && len(h.Scopes) > 0:
			return errors.New("param: scope is already set by the scope subdirective")
		case name == "show_dialog" && h.ShowDialog:
			return errors.New("param: show_dialog is already set by the show_dialog subdirective")
		}
	}
	return nil
}

// checkPaths: the handler's own paths and cookie.
func (h *Handler) checkPaths() error {
	callback := callbackPathOf(h.RedirectURI)
	paths := []struct{ field, path string }{{"login_path", h.LoginPath}, {"logout_path", h.LogoutPath}, {"session_path", h.SessionPath}}
	if h.BackchannelLogoutPath != "" {
		paths = append(paths, struct{ field, path string }{"backchannel_logout_path", h.BackchannelLogoutPath})
	}
	for i, p := range paths {
		if !strings.HasPrefix(p.path, "/") || strings.HasPrefix(p.path, "//") || strings.ContainsAny(p.path, "?#\\%") || !printable.IsToken(p.path) {
			return fmt.Errorf("%s: %q must be a plain path starting with / (no query, fragment, escapes or spaces)", p.field, p.path)
		}
		if p.path == callback {
			return fmt.Errorf("%s: %q is the redirect_uri's path; they must differ", p.field, p.path)
		}
		if p.field == "backchannel_logout_path" {
			for _, other := range paths[:i] {
				if p.path == other.path {
					return fmt.Errorf("backchannel_logout_path: %q is also the %s", p.path, other.field)
				}
			}
		}
	}
	if h.LoginPath == h.LogoutPath {
		return fmt.Errorf("logout_path: %q is also the login_path", h.LogoutPath)
	}
	if h.SessionPath == h.LoginPath || h.SessionPath == h.LogoutPath {
		return fmt.Errorf("session_path: %q is also the login_path or logout_path", h.SessionPath)
	}
	if lr := h.LogoutRedirect; lr != "" {
		// A path gets the return-path rule browsers are held to ("/\host" is
		// another host to them); an absolute URL must be http(s).
		lu, err := url.Parse(lr)
		isURL := err == nil && lu.Host != "" && (lu.Scheme == "https" || lu.Scheme == "http") && !strings.ContainsAny(lr, "\\\t\r\n")
		if !isURL && relay.SafeReturnPath(lr) != lr {
			return fmt.Errorf("logout_redirect: %q must be an absolute http(s) URL or a same-origin path", lr)
		}
	}
	if h.CookieName == "" || strings.ContainsAny(h.CookieName, " \t\r\n;,=\"") || !printable.IsToken(h.CookieName) {
		return fmt.Errorf("cookie_name: %q is not a valid cookie name", h.CookieName)
	}
	return nil
}

// checkTimes: lifetimes.
func (h *Handler) checkTimes() error {
	switch {
	case time.Duration(h.DefaultExpiresIn) < 0:
		return fmt.Errorf("default_expires_in: %s must be positive", time.Duration(h.DefaultExpiresIn))
	case time.Duration(h.ExpiryLeeway) < 0:
		return fmt.Errorf("expiry_leeway: %s must not be negative", time.Duration(h.ExpiryLeeway))
	case time.Duration(h.StateTTL) < time.Second:
		return fmt.Errorf("state_ttl: %s is too short for anyone to log in (minimum 1s)", time.Duration(h.StateTTL))
	case time.Duration(h.StateTTL) > maxStateTTL:
		return fmt.Errorf("state_ttl: %s; at most %s (a pending login is a door held open)", time.Duration(h.StateTTL), maxStateTTL)
	case time.Duration(h.DefaultExpiresIn) > maxTokenLifetime:
		return fmt.Errorf("default_expires_in: %s; at most a year", time.Duration(h.DefaultExpiresIn))
	case time.Duration(h.MaxSessionLifetime) < time.Minute || time.Duration(h.MaxSessionLifetime) > maxTokenLifetime:
		return fmt.Errorf("max_session_lifetime: %s must be between 1m and a year", time.Duration(h.MaxSessionLifetime))
	case h.RenewBefore < 0 || time.Duration(h.RenewBefore) > time.Duration(h.MaxSessionLifetime)/2:
		return fmt.Errorf("renew_before: %s must be between 0 and half of max_session_lifetime (%s)", time.Duration(h.RenewBefore), time.Duration(h.MaxSessionLifetime))
	case h.MaxLoginsPerAddress < 0 || h.MaxLoginsPerAddress > 1_000_000:
		return fmt.Errorf("max_logins_per_address: %d must be between 1 and 1000000", h.MaxLoginsPerAddress)
	case h.MaxSessionsPerUser < 0 || h.MaxSessionsPerUser > maxSessionsPerUser:
		return fmt.Errorf("max_sessions_per_user: %d must be between 1 and %d", h.MaxSessionsPerUser, maxSessionsPerUser)
	case h.MaxTokenBytes < 256 || h.MaxTokenBytes > relay.MaxFragmentBytes/2:
		return fmt.Errorf("max_token_bytes: %d must be between 256 and %d", h.MaxTokenBytes, relay.MaxFragmentBytes/2)
	}
	return nil
}

// checkPolicies: the modes.
func (h *Handler) checkPolicies() error {
	switch h.Unauthenticated {
	case UnauthenticatedAuto, UnauthenticatedRedirect, UnauthenticatedReject:
	default:
		return fmt.Errorf("unauthenticated: %q must be auto, redirect or reject", h.Unauthenticated)
	}
	switch h.ErrorPages {
	case ErrorPagesBuiltin, ErrorPagesHandleErrors:
	default:
		return fmt.Errorf("error_pages: %q must be builtin or handle_errors", h.ErrorPages)
	}
	switch h.ResponseMode {
	case ResponseModeFragment, ResponseModeFormPost:
	default:
		return fmt.Errorf("response_mode: %q must be fragment or form_post", h.ResponseMode)
	}
	switch h.SameSite {
	case "lax", "strict":
	default:
		return fmt.Errorf("same_site: %q must be lax or strict", h.SameSite)
	}
	if rh := h.RequireHeader; rh != nil {
		if rh.Name == "" || !printable.IsToken(rh.Name) || strings.ContainsAny(rh.Name, ":()<>@,;\\\"/[]?={} ") {
			return fmt.Errorf("require_header: %q is not a header name", rh.Name)
		}
		if rh.Value == "" || !printable.IsVSChars(rh.Value) {
			return errors.New("require_header: the value must be printable and not empty")
		}
		if http.CanonicalHeaderKey(rh.Name) == "Authorization" || http.CanonicalHeaderKey(rh.Name) == "Cookie" {
			return fmt.Errorf("require_header: %s is not a header a page's script may choose", rh.Name)
		}
	}
	switch h.RenewPrompt {
	case RenewPromptNone, RenewPromptDefault:
	default:
		return fmt.Errorf("renew_prompt: %q must be none or default", h.RenewPrompt)
	}
	if _, set := h.Params["prompt"]; set && h.RenewBefore > 0 && h.RenewPrompt == RenewPromptNone {
		return errors.New("param prompt: renew_before sends prompt=none on renewals; set renew_prompt default to keep your prompt")
	}
	return nil
}

// checkStore: what the chosen store can do.
func (h *Handler) checkStore() error {
	if h.sessionInCookie && h.MaxSessionsPerUser != 0 {
		return errors.New("max_sessions_per_user: the cookie store keeps no sessions on the server to count; use the memory or redis store")
	}
	return nil
}
