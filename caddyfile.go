package implicitgrant

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
//		scope              <scope...>
//		show_dialog
//		preserve_fragment  on|off
//		param              <name> <value>
//		secret             <secret>
//		cookie_name        <name>
//		login_path         <path>
//		logout_path        <path>
//		logout_redirect    <url>
//		default_expires_in <duration>
//		expiry_leeway      <duration>
//		state_ttl          <duration>
//		unauthenticated    auto|redirect|reject
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
		if seen[sub] && sub != "param" {
			return d.Errf("%s: given more than once", sub)
		}
		seen[sub] = true

		switch sub {
		case "authorize_url", "client_id", "redirect_uri", "secret", "cookie_name",
			"login_path", "logout_path", "logout_redirect", "unauthenticated":
			val, err := oneArg(d)
			if err != nil {
				return err
			}
			*h.stringField(sub) = val

		case "scope":
			h.Scopes = d.RemainingArgs()
			if len(h.Scopes) == 0 {
				return d.Errf("scope: expected at least one scope")
			}

		case "show_dialog":
			if d.NextArg() {
				return d.Errf("show_dialog: takes no arguments")
			}
			h.ShowDialog = true

		case "preserve_fragment":
			val, err := oneArg(d)
			if err != nil {
				return err
			}
			on, known := map[string]bool{"on": true, "true": true, "off": false, "false": false}[val]
			if !known {
				return d.Errf("preserve_fragment: expected on or off, got '%s'", val)
			}
			h.PreserveFragment = &on

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

		case "default_expires_in", "expiry_leeway", "state_ttl":
			val, err := oneArg(d)
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(val)
			if err != nil {
				return d.Errf("%s: bad duration value '%s': %v", sub, val, err)
			}
			if dur <= 0 && sub != "expiry_leeway" {
				return d.Errf("%s: must be positive, got '%s'", sub, val)
			}
			*h.durationField(sub) = caddy.Duration(dur)

		case "store":
			if err := h.unmarshalStore(d); err != nil {
				return err
			}

		default:
			return d.Errf("unrecognized subdirective: %s", sub)
		}
	}
	for _, req := range []string{"authorize_url", "client_id", "redirect_uri"} {
		if !seen[req] {
			return d.Errf("%s: required", req)
		}
	}
	return nil
}

func (h *Handler) unmarshalStore(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Errf("store: expected memory, cookie or redis")
	}
	h.Store = &StoreConfig{Type: d.Val()}
	switch h.Store.Type {
	case "memory", "cookie":
		if d.NextArg() {
			return d.Errf("store: %s takes no further arguments", h.Store.Type)
		}
	case "redis":
		if !d.NextArg() {
			return d.Errf("store: redis needs a url, e.g. redis://127.0.0.1:6379/0")
		}
		h.Store.URL = d.Val()
		if d.NextArg() {
			return d.Errf("store: redis takes one url")
		}
	default:
		return d.Errf("store: '%s' is not memory, cookie or redis", h.Store.Type)
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("store: %s given more than once", opt)
		}
		seen[opt] = true
		allowed := map[string]string{"max_sessions": "memory", "key_prefix": "redis", "timeout": "redis"}[opt]
		if allowed == "" {
			return d.Errf("store: unrecognized option: %s", opt)
		}
		if allowed != h.Store.Type {
			return d.Errf("store: %s applies to the %s store, not %s", opt, allowed, h.Store.Type)
		}
		val, err := oneArg(d)
		if err != nil {
			return err
		}
		switch opt {
		case "max_sessions":
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 {
				return d.Errf("max_sessions: expected a positive integer, got '%s'", val)
			}
			h.Store.MaxSessions = n
		case "key_prefix":
			h.Store.KeyPrefix = val
		case "timeout":
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur <= 0 {
				return d.Errf("timeout: bad duration value '%s'", val)
			}
			h.Store.Timeout = caddy.Duration(dur)
		}
	}
	return nil
}

func oneArg(d *caddyfile.Dispenser) (string, error) {
	name := d.Val()
	if !d.NextArg() {
		return "", d.Errf("%s: expected a value", name)
	}
	val := d.Val()
	if d.NextArg() {
		return "", d.Errf("%s: expected one value, got more", name)
	}
	return val, nil
}

func (h *Handler) stringField(name string) *string {
	return map[string]*string{
		"authorize_url":   &h.AuthorizeURL,
		"client_id":       &h.ClientID,
		"redirect_uri":    &h.RedirectURI,
		"secret":          &h.Secret,
		"cookie_name":     &h.CookieName,
		"login_path":      &h.LoginPath,
		"logout_path":     &h.LogoutPath,
		"logout_redirect": &h.LogoutRedirect,
		"unauthenticated": &h.Unauthenticated,
	}[name]
}

func (h *Handler) durationField(name string) *caddy.Duration {
	return map[string]*caddy.Duration{
		"default_expires_in": &h.DefaultExpiresIn,
		"expiry_leeway":      &h.ExpiryLeeway,
		"state_ttl":          &h.StateTTL,
	}[name]
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)
