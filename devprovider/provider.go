package devprovider

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Provider{})
	httpcaddyfile.RegisterHandlerDirective("implicit_grant_dev_provider", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		p := new(Provider)
		return p, p.UnmarshalCaddyfile(h.Dispenser)
	})
	httpcaddyfile.RegisterDirectiveOrder("implicit_grant_dev_provider", httpcaddyfile.Before, "respond")
}

// Provider is a development OAuth 2.0 / OpenID Connect authorization
// server for the implicit grant and the code flow with PKCE.
type Provider struct {
	// Registered clients: client id → its one exact redirect_uri.
	Clients map[string]string `json:"clients,omitempty"`
	// Confidential clients: client id → the secret it must send to the
	// token endpoint (HTTP Basic or in the body). Others are public.
	ClientSecrets map[string]string `json:"client_secrets,omitempty"`
	// Leave iss out of code-flow answers although discovery says it is
	// sent (RFC 9207): a server a client must refuse.
	OmitIss bool `json:"omit_iss,omitempty"`
	// ID tokens carry only sub, iss, aud, exp, iat, nonce, at_hash and
	// sid, and userinfo the rest, as ZITADEL and Okta do (OpenID Connect
	// Core §5.4: an access token is issued with every ID token here).
	ClaimsAtUserinfo bool `json:"claims_at_userinfo,omitempty"`
	// Services: clients with no user, which get tokens with the client
	// credentials grant (RFC 6749 §4.4): client id → its secret and the
	// audience (aud) of its RFC 9068 JWT access tokens.
	Services map[string]Service `json:"services,omitempty"`
	// Clients told of logouts here (OpenID Connect Back-Channel Logout):
	// client id → its backchannel_logout_uri.
	BackchannelLogout map[string]string `json:"backchannel_logout,omitempty"`
	// Userinfo answers a signed JWT (application/jwt), as for a client
	// registered with userinfo_signed_response_alg.
	UserinfoJWT bool `json:"userinfo_jwt,omitempty"`
	// Lifetime of issued tokens, sent as expires_in. Default 1h.
	ExpiresIn caddy.Duration `json:"expires_in,omitempty"`
	// token_type to send; default "Bearer". ("bearer" imitates Ory Hydra.)
	TokenType string `json:"token_type,omitempty"`
	// Where error responses go: "fragment" (RFC 6749, default) or "query"
	// (as Spotify sends them).
	ErrorIn string `json:"error_in,omitempty"`
	// Access tokens: "opaque" (default, random) or "jwt" (signed, RFC 9068).
	AccessTokens string `json:"access_tokens,omitempty"`
	// Make access tokens about this many bytes (padding a JWT's claims, or
	// a longer opaque token): large tokens for testing. 0: natural size.
	TokenSize int `json:"token_size,omitempty"`
	// Who may call /introspect: client id → secret (HTTP Basic). Empty: anyone.
	Introspectors map[string]string `json:"introspectors,omitempty"`
	// Users with claims; anyone else who signs in gets
	// <name>@corp.example and no groups.
	Users map[string]User `json:"users,omitempty"`
	// Answer every prompt=none with interaction_required and show the
	// consent page to every login, as a server that wants the user each
	// time would.
	DemandInteraction bool `json:"demand_interaction,omitempty"`
	// Shifts the clock of issued tokens (iat, exp) by this much: a negative
	// offset past their lifetime issues tokens that have already expired.
	ClockOffset caddy.Duration `json:"clock_offset,omitempty"`
}

// Service is a machine client's registration.
type Service struct {
	Secret   string `json:"secret"`
	Audience string `json:"audience"`
}

// User is a user's claims.
type User struct {
	Email  string   `json:"email,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// EmailUnverified: email_verified is false for this user, as for an
	// account that signed itself up with an address it never proved.
	EmailUnverified bool `json:"email_unverified,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Provider) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.implicit_grant_dev_provider", New: func() caddy.Module { return new(Provider) }}
}

// Provision fills in defaults and says where to start.
func (p *Provider) Provision(ctx caddy.Context) error {
	for id, redirect := range p.Clients {
		if u, err := url.Parse(redirect); err == nil {
			ctx.Logger().Info("dev provider ready (NOT FOR PRODUCTION): open the protected site in a browser",
				zap.String("client_id", id), zap.String("open", u.Scheme+"://"+u.Host+"/"))
		}
	}
	if p.ExpiresIn == 0 {
		p.ExpiresIn = caddy.Duration(time.Hour)
	}
	if p.TokenType == "" {
		p.TokenType = "Bearer"
	}
	if p.ErrorIn == "" {
		p.ErrorIn = "fragment"
	}
	if p.AccessTokens == "" {
		p.AccessTokens = "opaque"
	}
	return nil
}

func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	counter(issuer(r), r.URL.Path).Add(1)
	switch r.URL.Path {
	case "/":
		return p.home(w, r)
	case "/forget":
		return p.forget(w, r)
	case "/authorize":
		return p.authorize(w, r)
	case "/authorize/decision":
		return p.decide(w, r)
	case "/token":
		return p.token(w, r)
	case "/userinfo":
		return p.userinfo(w, r)
	case "/introspect":
		return p.introspect(w, r)
	case "/revoke":
		return revoke(w, r)
	case "/logout":
		return p.logout(w, r)
	case "/.well-known/openid-configuration":
		return discovery(w, r)
	case "/jwks":
		return jwks(w, r)
	case "/keys/rotate":
		if r.Method != http.MethodPost {
			return page(w, http.StatusMethodNotAllowed, "Method not allowed", "POST rotates the signing key.", nil)
		}
		if err := rotate(issuer(r)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return next.ServeHTTP(w, r)
}

func (p *Provider) now() time.Time { return time.Now().Add(time.Duration(p.ClockOffset)) }

// issuer is the provider's own origin: what it signs as and is discovered at.
func issuer(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// UnmarshalCaddyfile reads:
//
//	implicit_grant_dev_provider {
//		client        <client_id> <redirect_uri> [<secret>]   # with a secret: confidential
//		omit_iss      # leave iss out of code-flow answers (discovery still says it is sent)
//		claims_at_userinfo  # ID tokens carry sub and protocol claims only; userinfo the rest
//		userinfo_jwt  # userinfo answers a signed JWT
//		backchannel_logout <client_id> <uri>   # POST logout tokens there when a user signs out here
//		service       <client_id> <secret> <audience>  # client credentials: RFC 9068 JWTs for audience
//		expires_in    <duration>
//		token_type    <type>
//		error_in      fragment|query
//		access_tokens opaque|jwt
//		token_size    <bytes>
//		introspector  <client_id> <secret>
//		user          <name> <email> [<group>...]
//		unverified_user <name> <email> [<group>...]   # email_verified false
//		clock_offset  <duration>
//		demand_interaction
//	}
func (p *Provider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		args := d.RemainingArgs()
		one := func() (string, error) {
			if len(args) != 1 {
				return "", d.Errf("%s: expected one value", opt)
			}
			return args[0], nil
		}
		switch opt {
		case "service":
			if len(args) != 3 {
				return d.Errf("service: expected a client id, a secret and an audience")
			}
			if p.Services == nil {
				p.Services = map[string]Service{}
			}
			p.Services[args[0]] = Service{Secret: args[1], Audience: args[2]}
		case "backchannel_logout":
			if len(args) != 2 {
				return d.Errf("backchannel_logout: expected a client id and a URI")
			}
			if p.BackchannelLogout == nil {
				p.BackchannelLogout = map[string]string{}
			}
			p.BackchannelLogout[args[0]] = args[1]
		case "client", "introspector":
			if opt == "client" && len(args) == 3 { // a confidential client
				if p.ClientSecrets == nil {
					p.ClientSecrets = map[string]string{}
				}
				p.ClientSecrets[args[0]] = args[2]
				args = args[:2]
			}
			if len(args) != 2 {
				return d.Errf("%s: expected two values", opt)
			}
			m := &p.Clients
			if opt == "introspector" {
				m = &p.Introspectors
			}
			if *m == nil {
				*m = map[string]string{}
			}
			(*m)[args[0]] = args[1]
		case "user", "unverified_user":
			if len(args) < 2 {
				return d.Errf("%s: expected <name> <email> [<group>...]", d.Val())
			}
			if p.Users == nil {
				p.Users = map[string]User{}
			}
			p.Users[args[0]] = User{Email: args[1], Groups: args[2:], EmailUnverified: d.Val() == "unverified_user"}
		case "expires_in", "clock_offset":
			v, err := one()
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("%s: bad duration value '%s'", opt, v)
			}
			if opt == "expires_in" {
				if dur < time.Second {
					return d.Errf("expires_in: at least 1s")
				}
				p.ExpiresIn = caddy.Duration(dur)
			} else {
				p.ClockOffset = caddy.Duration(dur)
			}
		case "token_type":
			v, err := one()
			if err != nil {
				return err
			}
			p.TokenType = v
		case "token_size":
			v, err := one()
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 100 {
				return d.Errf("token_size: expected a number of bytes, at least 100")
			}
			p.TokenSize = n
		case "error_in":
			if v, err := one(); err != nil || (v != "fragment" && v != "query") {
				return d.Errf("error_in: expected fragment or query")
			}
			p.ErrorIn = args[0]
		case "demand_interaction", "omit_iss", "claims_at_userinfo", "userinfo_jwt":
			if len(args) != 0 {
				return d.Errf("%s: takes no value", opt)
			}
			*map[string]*bool{"demand_interaction": &p.DemandInteraction, "omit_iss": &p.OmitIss,
				"claims_at_userinfo": &p.ClaimsAtUserinfo, "userinfo_jwt": &p.UserinfoJWT}[opt] = true
		case "access_tokens":
			if v, err := one(); err != nil || (v != "opaque" && v != "jwt") {
				return d.Errf("access_tokens: expected opaque or jwt")
			}
			p.AccessTokens = args[0]
		default:
			return d.Errf("unrecognized subdirective: %s", strings.ToLower(opt))
		}
	}
	return nil
}

var (
	_ caddyhttp.MiddlewareHandler = (*Provider)(nil)
	_ caddy.Provisioner           = (*Provider)(nil)
	_ caddyfile.Unmarshaler       = (*Provider)(nil)
)
