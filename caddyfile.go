// The implicit_grant Caddyfile directive. The parser checks syntax only:
// which subdirectives there are, how many arguments each takes, and the
// form of each (a number, a duration, on|off, a page's or a store's name).
// What a value must be is checked in Provision (checks.go), so Caddyfile
// and JSON users get the same errors.

package implicitgrant

import (
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/implicitgrant/caddy-implicit-grant/relay"
)

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	implicit_grant {
//		authorize_url      <url>
//		client_id          <id>
//		redirect_uri       <url>
//		response_type      token|code
//		token_url          <url>                # code
//		client_secret      <secret>             # code: a confidential client
//		token_auth         client_secret_basic|client_secret_post|none  # code
//		same_site          lax|strict
//		require_header     <name> <value>
//		scope              <scope...>
//		show_dialog
//		preserve_fragment  on|off
//		param              <name> <value>
//		secret             <secret> [<previous secret>...]
//		cookie_name        <name>
//		login_path         <path>
//		logout_path        <path>
//		logout_redirect    <url>
//		accept_bearer      <audience...>
//		revocation_url     <url>
//		end_session
//		backchannel_logout_path <path>
//		session_path       <path>
//		template           relay|start|error|signed_out|forbidden <file>
//		response_mode      fragment|form_post
//		renew_before       <duration>
//		renew_prompt       none|default
//		default_expires_in <duration>
//		expiry_leeway      <duration>
//		state_ttl          <duration>
//		max_session_lifetime <duration>
//		max_token_bytes    <bytes>
//		max_sessions_per_user <n>
//		max_logins_per_address <n>
//		unauthenticated    auto|redirect|reject
//		error_pages        builtin|handle_errors
//		openid             <issuer>
//		validate           jwt|introspect|userinfo|none [<url>] {
//			issuer        <url>       # jwt
//			jwks_url      <url>       # jwt
//			audience      <aud...>    # jwt
//			typ           at+jwt|any  # jwt
//			client_id     <id>        # introspect
//			client_secret <secret>    # introspect
//		}
//		allow              <claim> <pattern...>
//		allow_unverified_email
//		claims             <name...>
//		userinfo           missing|always|never
//		revalidate         <duration>
//		store              memory|cookie|redis [<url>] {
//			max_sessions <n>         # memory
//			key_prefix   <prefix>    # redis
//			timeout      <duration>  # redis
//		}
//	}
//
// Placeholders such as {env.CLIENT_ID} are kept as written and replaced
// when the handler is provisioned.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] && sub != "param" && sub != "allow" && sub != "template" {
			return d.Errf("%s: given more than once", sub)
		}
		seen[sub] = true

		var err error
		switch sub {
		case "authorize_url":
			h.AuthorizeURL, err = oneArg(d)
		case "client_id":
			h.ClientID, err = oneArg(d)
		case "redirect_uri":
			h.RedirectURI, err = oneArg(d)
		case "response_type":
			h.ResponseType, err = oneArg(d)
		case "token_url":
			h.TokenURL, err = oneArg(d)
		case "client_secret":
			h.ClientSecret, err = oneArg(d)
		case "token_auth":
			h.TokenAuth, err = oneArg(d)
		case "same_site":
			h.SameSite, err = oneArg(d)
		case "require_header":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("require_header: expected a header name and its value")
			}
			h.RequireHeader = &RequiredHeader{Name: args[0], Value: args[1]}
		case "secret":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("secret: expected a value")
			}
			h.Secret = args[0]
			if len(args) > 1 {
				h.PreviousSecrets = args[1:]
			}
		case "cookie_name":
			h.CookieName, err = oneArg(d)
		case "login_path":
			h.LoginPath, err = oneArg(d)
		case "logout_path":
			h.LogoutPath, err = oneArg(d)
		case "logout_redirect":
			h.LogoutRedirect, err = oneArg(d)
		case "accept_bearer":
			h.AcceptBearer = d.RemainingArgs()
			if len(h.AcceptBearer) == 0 {
				return d.Errf("accept_bearer: expected at least one audience")
			}
		case "revocation_url":
			h.RevocationURL, err = oneArg(d)
		case "backchannel_logout_path":
			h.BackchannelLogoutPath, err = oneArg(d)
		case "template":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("template: expected a page (%s) and a file", strings.Join(relay.TemplateKinds(), ", "))
			}
			if !slices.Contains(relay.TemplateKinds(), args[0]) {
				return d.Errf("template: unknown page '%s'; one of %s", args[0], strings.Join(relay.TemplateKinds(), ", "))
			}
			if _, dup := h.Templates[args[0]]; dup {
				return d.Errf("template: %s given more than once", args[0])
			}
			if h.Templates == nil {
				h.Templates = map[string]string{}
			}
			h.Templates[args[0]] = args[1]
		case "session_path":
			h.SessionPath, err = oneArg(d)
		case "response_mode":
			var v string
			v, err = oneArg(d)
			h.ResponseMode = ResponseMode(v)
		case "renew_before":
			h.RenewBefore, err = durationArg(d)
		case "renew_prompt":
			var v string
			v, err = oneArg(d)
			h.RenewPrompt = RenewPrompt(v)
		case "unauthenticated":
			var v string
			v, err = oneArg(d)
			h.Unauthenticated = UnauthenticatedPolicy(v)
		case "error_pages":
			var v string
			v, err = oneArg(d)
			h.ErrorPages = ErrorPages(v)
		case "default_expires_in":
			h.DefaultExpiresIn, err = durationArg(d)
		case "expiry_leeway":
			h.ExpiryLeeway, err = durationArg(d)
		case "state_ttl":
			h.StateTTL, err = durationArg(d)
		case "max_session_lifetime":
			h.MaxSessionLifetime, err = durationArg(d)
		case "max_token_bytes":
			var v string
			if v, err = oneArg(d); err == nil {
				if h.MaxTokenBytes, err = strconv.Atoi(v); err != nil {
					return d.Errf("max_token_bytes: expected a number of bytes, got '%s'", v)
				}
			}
		case "max_logins_per_address":
			var v string
			if v, err = oneArg(d); err == nil {
				if h.MaxLoginsPerAddress, err = strconv.Atoi(v); err != nil || h.MaxLoginsPerAddress <= 0 {
					return d.Errf("max_logins_per_address: expected a positive number of logins, got '%s'", v)
				}
			}
		case "max_sessions_per_user":
			var v string
			if v, err = oneArg(d); err == nil {
				if h.MaxSessionsPerUser, err = strconv.Atoi(v); err != nil || h.MaxSessionsPerUser <= 0 {
					return d.Errf("max_sessions_per_user: expected a positive number of sessions, got '%s'", v)
				}
			}
		case "scope":
			h.Scopes = d.RemainingArgs()
			if len(h.Scopes) == 0 {
				return d.Errf("scope: expected at least one scope")
			}
		case "show_dialog", "allow_unverified_email", "end_session":
			if d.NextArg() {
				return d.Errf("%s: takes no arguments", sub)
			}
			switch sub {
			case "show_dialog":
				h.ShowDialog = true
			case "end_session":
				h.EndSession = true
			default:
				h.AllowUnverifiedEmail = true
			}
		case "preserve_fragment":
			h.PreserveFragment, err = onOffArg(d)
		case "param":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("param: expected a name and a value, got %d arguments", len(args))
			}
			if _, dup := h.Params[args[0]]; dup {
				return d.Errf("param: %s given more than once", args[0])
			}
			if h.Params == nil {
				h.Params = map[string]string{}
			}
			h.Params[args[0]] = args[1]
		case "store":
			err = h.unmarshalStore(d)
		case "openid":
			h.OpenID, err = oneArg(d)
		case "validate":
			err = h.unmarshalValidate(d)
		case "allow":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("allow: expected a claim and at least one pattern")
			}
			h.Allow = append(h.Allow, AllowRule{Claim: args[0], Patterns: args[1:]})
		case "claims":
			h.Claims = d.RemainingArgs()
			if len(h.Claims) == 0 {
				return d.Errf("claims: expected at least one claim name")
			}
		case "userinfo":
			h.Userinfo, err = oneArg(d)
		case "revalidate":
			h.Revalidate, err = durationArg(d)
		default:
			return d.Errf("unrecognized subdirective: %s", sub)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)
