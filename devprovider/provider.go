package devprovider

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
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

// Provider is a development OAuth 2.0 authorization server for the
// implicit grant. It serves GET /authorize (the consent page), POST
// /authorize/decision, and GET /userinfo; other paths go to the next handler.
type Provider struct {
	// Registered clients: client id → its one exact redirect_uri.
	Clients map[string]string `json:"clients,omitempty"`
	// Lifetime of issued tokens, sent as expires_in. Default 1h.
	ExpiresIn caddy.Duration `json:"expires_in,omitempty"`
	// token_type to send; default "Bearer". ("bearer" imitates Ory Hydra.)
	TokenType string `json:"token_type,omitempty"`
	// Where error responses go: "fragment" (RFC 6749, default) or "query"
	// (as Spotify sends them).
	ErrorIn string `json:"error_in,omitempty"`
	// Issue JWT-shaped tokens of about this many bytes (header.claims.sig,
	// random, unsigned) instead of 43-character opaque ones: large tokens
	// for testing. 0 means opaque.
	TokenSize int `json:"token_size,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Provider) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.implicit_grant_dev_provider", New: func() caddy.Module { return new(Provider) }}
}

type issuedToken struct {
	user, clientID, scope string
	expires               time.Time
}

type pendingRequest struct {
	clientID, redirectURI, state, scope string
	expires                             time.Time
}

// The provider's memory is process-wide, so a config reload keeps tokens.
var (
	mu      sync.Mutex
	tokens  = map[string]issuedToken{}
	pending = map[string]pendingRequest{}
)

const rememberCookie = "dev_provider_approved"

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
	return nil
}

func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	switch r.URL.Path {
	case "/authorize":
		return p.authorize(w, r)
	case "/authorize/decision":
		return p.decide(w, r)
	case "/userinfo":
		return userinfo(w, r)
	}
	return next.ServeHTTP(w, r)
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	registered, known := p.Clients[clientID]
	if !known || redirectURI != registered {
		// RFC 6749 §4.2.2.1: never redirect to an unverified redirect_uri.
		return page(w, http.StatusBadRequest, "Unknown client or redirect_uri",
			"This authorization request names a client or redirect_uri that is not registered here, so it cannot be answered.", nil)
	}
	state := q.Get("state")
	if q.Get("response_type") != "token" {
		return p.redirectError(w, r, redirectURI, state, "unsupported_response_type", "only response_type=token is supported")
	}
	scope := q.Get("scope")
	if q.Get("show_dialog") != "true" {
		if c, err := r.Cookie(rememberCookie); err == nil && c.Value != "" {
			if user, ok := strings.CutPrefix(c.Value, clientID+":"); ok {
				return p.issue(w, r, user, clientID, redirectURI, state, scope)
			}
		}
	}
	id := randomString()
	mu.Lock()
	pending[id] = pendingRequest{clientID, redirectURI, state, scope, time.Now().Add(10 * time.Minute)}
	mu.Unlock()
	return page(w, http.StatusOK, "Sign in to the dev provider", "", &consent{
		RequestID: id, ClientID: clientID, Scopes: strings.Fields(scope), RedirectHost: hostOf(redirectURI),
	})
}

func (p *Provider) decide(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return page(w, http.StatusMethodNotAllowed, "Method not allowed", "Use the buttons on the consent page.", nil)
	}
	id := r.PostFormValue("request")
	mu.Lock()
	req, ok := pending[id]
	delete(pending, id) // one decision per request
	mu.Unlock()
	if !ok || time.Now().After(req.expires) {
		return page(w, http.StatusBadRequest, "This request has expired", "Go back to the application and sign in again.", nil)
	}
	if r.PostFormValue("decision") != "approve" {
		return p.redirectError(w, r, req.redirectURI, req.state, "access_denied", "The user denied the request")
	}
	user := strings.TrimSpace(r.PostFormValue("user"))
	if user == "" {
		user = "demo-user"
	}
	http.SetCookie(w, &http.Cookie{Name: rememberCookie, Value: req.clientID + ":" + user, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return p.issue(w, r, user, req.clientID, req.redirectURI, req.state, req.scope)
}

// issue makes a token and sends it to the client in the fragment.
func (p *Provider) issue(w http.ResponseWriter, r *http.Request, user, clientID, redirectURI, state, scope string) error {
	token := randomString()
	if p.TokenSize > 0 {
		token = jwtShaped(p.TokenSize)
	}
	lifetime := time.Duration(p.ExpiresIn)
	mu.Lock()
	if len(tokens) >= 10_000 { // a long demo or a load test: forget expired tokens
		for t, it := range tokens {
			if time.Now().After(it.expires) {
				delete(tokens, t)
			}
		}
	}
	tokens[token] = issuedToken{user, clientID, scope, time.Now().Add(lifetime)}
	mu.Unlock()
	v := url.Values{
		"access_token": {token},
		"token_type":   {p.TokenType},
		"expires_in":   {strconv.Itoa(int(lifetime / time.Second))},
	}
	if scope != "" {
		v.Set("scope", scope)
	}
	if state != "" {
		v.Set("state", state)
	}
	http.Redirect(w, r, redirectURI+"#"+v.Encode(), http.StatusSeeOther)
	return nil
}

func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, code, description string) error {
	v := url.Values{"error": {code}, "error_description": {description}}
	if state != "" {
		v.Set("state", state)
	}
	sep := "#"
	if p.ErrorIn == "query" {
		sep = "?"
	}
	http.Redirect(w, r, redirectURI+sep+v.Encode(), http.StatusSeeOther)
	return nil
}

// userinfo says whether a bearer token is valid, and whose it is.
func userinfo(w http.ResponseWriter, r *http.Request) error {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	mu.Lock()
	t, ok := tokens[token]
	mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok || time.Now().After(t.expires) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return json.NewEncoder(w).Encode(map[string]string{"error": "invalid_token"})
	}
	return json.NewEncoder(w).Encode(map[string]any{
		"sub": t.user, "client_id": t.clientID, "scope": t.scope,
		"expires_in": int(time.Until(t.expires).Seconds()),
	})
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// jwtShaped returns header.claims.signature, size bytes in all: the shape
// and size of a JWT with many claims, without pretending to be signed.
func jwtShaped(size int) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	claims := make([]byte, max(size-len(header)-45, 1)*3/4)
	_, _ = rand.Read(claims)
	return header + "." + base64.RawURLEncoding.EncodeToString(claims) + "." + randomString()
}

func hostOf(u string) string {
	if pu, err := url.Parse(u); err == nil {
		return pu.Host
	}
	return u
}

type consent struct {
	RequestID, ClientID, RedirectHost string
	Scopes                            []string
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;background:#fdf6e3;margin:0}main{max-width:32rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;border-top:6px solid #b58900}
.badge{background:#b58900;color:#fff;padding:.1rem .5rem;border-radius:4px;font-size:.8rem}button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}input{font-size:1rem;padding:.3rem}</style></head>
<body><main><p><span class="badge">DEV PROVIDER: NOT FOR PRODUCTION</span></p><h1>{{.Title}}</h1>
{{with .Message}}<p>{{.}}</p>{{end}}
{{with .Consent}}<p><b>{{.ClientID}}</b> (at {{.RedirectHost}}) wants to use your account{{if .Scopes}} with these scopes:{{end}}</p>
{{if .Scopes}}<ul>{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
<form method="post" action="/authorize/decision"><input type="hidden" name="request" value="{{.RequestID}}">
<p><label>Sign in as <input id="user" name="user" value="demo-user" autocomplete="off"></label></p>
<button id="approve" name="decision" value="approve">Approve</button><button id="deny" name="decision" value="deny">Deny</button></form>{{end}}
</main></body></html>`))

func page(w http.ResponseWriter, status int, title, message string, c *consent) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	return pageTmpl.Execute(w, struct {
		Title, Message string
		Consent        *consent
	}{title, message, c})
}

// UnmarshalCaddyfile reads:
//
//	implicit_grant_dev_provider {
//		client     <client_id> <redirect_uri>
//		expires_in <duration>
//		token_type <type>
//		error_in   fragment|query
//		token_size <bytes>
//	}
func (p *Provider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "client":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("client: expected <client_id> <redirect_uri>")
			}
			if p.Clients == nil {
				p.Clients = map[string]string{}
			}
			p.Clients[args[0]] = args[1]
		case "expires_in":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur < time.Second {
				return d.Errf("expires_in: bad duration value '%s' (at least 1s)", d.Val())
			}
			p.ExpiresIn = caddy.Duration(dur)
		case "token_type":
			if !d.NextArg() {
				return d.ArgErr()
			}
			p.TokenType = d.Val()
		case "token_size":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n < 100 {
				return d.Errf("token_size: expected a number of bytes, at least 100")
			}
			p.TokenSize = n
		case "error_in":
			if !d.NextArg() || (d.Val() != "fragment" && d.Val() != "query") {
				return d.Errf("error_in: expected fragment or query")
			}
			p.ErrorIn = d.Val()
		default:
			return d.Errf("unrecognized subdirective: %s", d.Val())
		}
	}
	return nil
}

var (
	_ caddyhttp.MiddlewareHandler = (*Provider)(nil)
	_ caddy.Provisioner           = (*Provider)(nil)
	_ caddyfile.Unmarshaler       = (*Provider)(nil)
)
