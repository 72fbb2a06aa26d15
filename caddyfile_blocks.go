// The directive's nested blocks (validate, store) and the argument
// readers every subdirective uses: syntax only, as in caddyfile.go.

package implicitgrant

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// unmarshalValidate reads "validate <mode> [<url>] { … }".
func (h *Handler) unmarshalValidate(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 || len(args) > 2 {
		return d.Errf("validate: expected jwt, introspect <url>, userinfo <url> or none")
	}
	v := &Validation{Mode: args[0]}
	if len(args) == 2 {
		v.URL = args[1]
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("validate: %s given more than once", opt)
		}
		seen[opt] = true
		var err error
		switch opt {
		case "issuer":
			v.Issuer, err = oneArg(d)
		case "jwks_url":
			v.JWKSURL, err = oneArg(d)
		case "client_id":
			v.ClientID, err = oneArg(d)
		case "client_secret":
			v.ClientSecret, err = oneArg(d)
		case "typ":
			v.Typ, err = oneArg(d)
		case "audience":
			if v.Audience = d.RemainingArgs(); len(v.Audience) == 0 {
				return d.Errf("audience: expected at least one audience")
			}
		default:
			return d.Errf("validate: unrecognized option: %s", opt)
		}
		if err != nil {
			return err
		}
	}
	h.Validation = v
	return nil
}

// unmarshalStore hands "store <type> …" to the store's own module.
func (h *Handler) unmarshalStore(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Errf("store: expected memory, cookie or redis")
	}
	name := d.Val()
	if _, err := caddy.GetModule(tokencache.Namespace + "." + name); err != nil {
		return d.Errf("store: '%s' is not a known store (memory, cookie, redis)", name)
	}
	unm, err := caddyfile.UnmarshalModule(d, tokencache.Namespace+"."+name)
	if err != nil {
		return err
	}
	h.StoreRaw = caddyconfig.JSONModuleObject(unm, "type", name, nil)
	return nil
}

func oneArg(d *caddyfile.Dispenser) (string, error) {
	name := d.Val()
	args := d.RemainingArgs()
	switch len(args) {
	case 0:
		return "", d.Errf("%s: expected a value", name)
	case 1:
		return args[0], nil
	}
	return "", d.Errf("%s: expected one value, got %d", name, len(args))
}

func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	name := d.Val()
	val, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(val)
	if err != nil {
		return 0, d.Errf("%s: bad duration value '%s': %v", name, val, err)
	}
	return caddy.Duration(dur), nil
}

func onOffArg(d *caddyfile.Dispenser) (*bool, error) {
	name := d.Val()
	val, err := oneArg(d)
	if err != nil {
		return nil, err
	}
	on, known := map[string]bool{"on": true, "true": true, "off": false, "false": false}[val]
	if !known {
		return nil, d.Errf("%s: expected on or off, got '%s'", name, val)
	}
	return &on, nil
}
