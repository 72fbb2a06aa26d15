package devprovider

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Dashboard{})
	httpcaddyfile.RegisterHandlerDirective("implicit_grant_demo_dashboard", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		d := new(Dashboard)
		return d, d.UnmarshalCaddyfile(h.Dispenser)
	})
	httpcaddyfile.RegisterDirectiveOrder("implicit_grant_demo_dashboard", httpcaddyfile.Before, "respond")
}

// Dashboard is the demo's upstream: a page (and /api/whoami as JSON) that
// shows what implicit_grant sent it, and whether the authorization server
// says the bearer token is valid.
type Dashboard struct {
	// The provider's userinfo endpoint, to check the token it received.
	UserinfoURL string `json:"userinfo_url,omitempty"`

	client *http.Client
}

// CaddyModule returns the Caddy module information.
func (Dashboard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.implicit_grant_demo_dashboard", New: func() caddy.Module { return new(Dashboard) }}
}

// Provision sets up the client that checks tokens.
func (d *Dashboard) Provision(caddy.Context) error {
	d.client = &http.Client{Timeout: 5 * time.Second}
	return nil
}

type received struct {
	Path          string         `json:"path"`
	Authorization string         `json:"authorization"` // masked: enough to recognise, not to use
	TokenValid    bool           `json:"token_valid"`
	User          string         `json:"user,omitempty"`
	Scope         string         `json:"scope,omitempty"`
	SecondsLeft   int            `json:"seconds_left,omitempty"`
	Cookies       []string       `json:"cookies"` // names only
	ForwardedUser string         `json:"forwarded_user,omitempty"`
	ForwardedMail string         `json:"forwarded_email,omitempty"`
	Userinfo      map[string]any `json:"-"`
	ProviderHome  string         `json:"-"` // the dev provider's home page, from userinfo_url
}

func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	rec := received{Path: r.URL.RequestURI(), Authorization: mask(r.Header.Get("Authorization")), Cookies: []string{},
		ForwardedUser: r.Header.Get("X-Forwarded-User"), ForwardedMail: r.Header.Get("X-Forwarded-Email")}
	for _, c := range r.Cookies() {
		rec.Cookies = append(rec.Cookies, c.Name)
	}
	sort.Strings(rec.Cookies)
	if u, err := url.Parse(d.UserinfoURL); err == nil && u.Host != "" {
		rec.ProviderHome = u.Scheme + "://" + u.Host + "/"
	}
	if auth := r.Header.Get("Authorization"); auth != "" && d.UserinfoURL != "" {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, d.UserinfoURL, nil)
		req.Header.Set("Authorization", auth)
		if resp, err := d.client.Do(req); err == nil {
			var info struct {
				Sub       string `json:"sub"`
				Scope     string `json:"scope"`
				ExpiresIn int    `json:"expires_in"`
			}
			if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&info) == nil {
				rec.TokenValid, rec.User, rec.Scope, rec.SecondsLeft = true, info.Sub, info.Scope, info.ExpiresIn
			}
			resp.Body.Close()
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if strings.HasPrefix(r.URL.Path, "/api/") {
		w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode(rec)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	return dashboardTmpl.Execute(w, rec)
}

// mask shows the scheme, the first characters and the length of a token.
func mask(auth string) string {
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || len(token) < 12 {
		if auth == "" {
			return ""
		}
		return "(present, too short to show)"
	}
	return scheme + " " + token[:6] + "…" + " (" + strconv.Itoa(len(token)) + " characters)"
}

var dashboardTmpl = template.Must(template.New("dash").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo dashboard</title>
<style>body{font:16px/1.5 system-ui,sans-serif;background:#eef3f8;margin:0}main{max-width:40rem;margin:8vh auto;background:#fff;padding:2rem;border-radius:8px}
dt{font-weight:600;margin-top:.6rem}dd{margin:0}.ok{color:#1a7f37}.bad{color:#b42318}code{overflow-wrap:anywhere}</style></head>
<body><main><h1>Demo dashboard</h1>
<p>This page is the upstream behind <code>implicit_grant</code>. It shows what it received.</p>
<dl>
<dt>Path</dt><dd><code id="path">{{.Path}}</code></dd>
<dt>Authorization header</dt><dd><code id="authorization">{{if .Authorization}}{{.Authorization}}{{else}}none{{end}}</code></dd>
<dt>Token check at the provider</dt><dd id="token-status">{{if .TokenValid}}<span class="ok">valid</span>{{else}}<span class="bad">not valid</span>{{end}}</dd>
{{if .TokenValid}}<dt>User</dt><dd id="user">{{.User}}</dd><dt>Scope</dt><dd>{{.Scope}}</dd><dt>Time left on the token</dt><dd id="time-left">{{.SecondsLeft}} s</dd>{{end}}
<dt>X-Forwarded-User / X-Forwarded-Email (from Caddy's header_up)</dt><dd><code id="forwarded-user">{{.ForwardedUser}}</code> <code id="forwarded-email">{{.ForwardedMail}}</code></dd>
<dt>Cookies received</dt><dd>{{range .Cookies}}<code>{{.}}</code> {{else}}none (implicit_grant strips its own){{end}}</dd>
</dl>
<p><a href="/oauth/logout">Log out</a>{{with .ProviderHome}} · <a id="provider-home" href="{{.}}">Your account at the dev provider</a> (sign in as someone else, or forget your approval){{end}}</p>
</main></body></html>`))

// UnmarshalCaddyfile reads:
//
//	implicit_grant_demo_dashboard {
//		userinfo_url <url>
//	}
func (d *Dashboard) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next()
	for nesting := disp.Nesting(); disp.NextBlock(nesting); {
		switch disp.Val() {
		case "userinfo_url":
			if !disp.NextArg() {
				return disp.ArgErr()
			}
			d.UserinfoURL = disp.Val()
		default:
			return disp.Errf("unrecognized subdirective: %s", disp.Val())
		}
	}
	return nil
}

var (
	_ caddyhttp.MiddlewareHandler = (*Dashboard)(nil)
	_ caddy.Provisioner           = (*Dashboard)(nil)
	_ caddyfile.Unmarshaler       = (*Dashboard)(nil)
)
