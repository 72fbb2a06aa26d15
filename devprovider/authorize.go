package devprovider

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/relay"
)

// pendingRequest is an authorization request waiting at the consent page.
type pendingRequest struct {
	clientID, redirectURI, state, scope, nonce string
	withIDToken                                bool
	formPost                                   bool   // response_mode=form_post: answer with a self-submitting form
	code                                       bool   // response_type=code
	challenge                                  string // its PKCE code_challenge (S256)
	expires                                    time.Time
}

// The provider's memory is process-wide, so a config reload keeps it.
var (
	mu      sync.Mutex
	pending = map[string]pendingRequest{}
)

// The provider remembers who approved which client in two cookies: a Lax
// one (which WebKit keeps on plain http) and a SameSite=None; Secure one,
// which comes along when the provider is loaded in another site's frame
// (session.js's silent renewal), where a Lax cookie is not sent.
const (
	rememberCookie          = "dev_provider_approved"
	rememberCrossSiteCookie = "dev_provider_approved_cross_site"
)

// remembered is who approved clientID in this browser, if anyone.
func remembered(r *http.Request, clientID string) (string, bool) {
	for _, name := range []string{rememberCookie, rememberCrossSiteCookie} {
		if c, err := r.Cookie(name); err == nil {
			if user, ok := strings.CutPrefix(c.Value, clientID+":"); ok && user != "" {
				return user, true
			}
		}
	}
	return "", false
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
	req := pendingRequest{clientID: clientID, redirectURI: redirectURI, state: q.Get("state"), scope: q.Get("scope"), nonce: q.Get("nonce")}
	switch q.Get("response_mode") {
	case "", "fragment":
	case "form_post":
		req.formPost = true
	default:
		return p.redirectError(w, r, req, "invalid_request", "response_mode must be fragment or form_post")
	}
	switch q.Get("response_type") {
	case "token":
	case "id_token token", "token id_token":
		req.withIDToken = true
		if !strings.Contains(" "+req.scope+" ", " openid ") {
			return p.redirectError(w, r, req, "invalid_scope", "id_token needs the openid scope")
		}
		if len(req.nonce) < 8 { // as Ory Hydra: the implicit flow's ID token needs a nonce
			return p.redirectError(w, r, req, "invalid_request", "a nonce of at least 8 characters is required")
		}
	case "code":
		req.code = true
		// OAuth 2.1: PKCE for every client, S256 only.
		if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
			return p.redirectError(w, r, req, "invalid_request", "code_challenge with code_challenge_method S256 is required")
		}
		req.challenge = q.Get("code_challenge")
	default:
		return p.redirectError(w, r, req, "unsupported_response_type", "only code, token and id_token token are supported")
	}
	user, known := remembered(r, clientID)
	if q.Get("prompt") == "none" {
		// OpenID Connect Core §3.1.2.1: answer without any page, or say why not.
		switch {
		case p.DemandInteraction:
			return p.redirectError(w, r, req, "interaction_required", "this provider is set to demand interaction")
		case !known:
			return p.redirectError(w, r, req, "login_required", "no user is signed in here")
		}
		return p.issue(w, r, user, req)
	}
	if known && q.Get("show_dialog") != "true" && q.Get("prompt") == "" && !p.DemandInteraction {
		return p.issue(w, r, user, req)
	}
	id := randomString()
	req.expires = time.Now().Add(10 * time.Minute)
	mu.Lock()
	pending[id] = req
	mu.Unlock()
	return page(w, http.StatusOK, "Sign in to the dev provider", "", &consent{
		RequestID: id, ClientID: clientID, Scopes: strings.Fields(req.scope), RedirectHost: hostOf(redirectURI),
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
		return p.redirectError(w, r, req, "access_denied", "The user denied the request")
	}
	user := strings.TrimSpace(r.PostFormValue("user"))
	if user == "" {
		user = "demo-user"
	}
	http.SetCookie(w, &http.Cookie{Name: rememberCookie, Value: req.clientID + ":" + user, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: rememberCrossSiteCookie, Value: req.clientID + ":" + user, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode})
	return p.issue(w, r, user, req)
}

// issue makes the tokens and sends them to the client.
func (p *Provider) issue(w http.ResponseWriter, r *http.Request, user string, req pendingRequest) error {
	if req.code {
		return p.issueCode(w, r, user, req)
	}
	grant := p.grant(issuer(r), user, req.clientID, req.scope, loginSession(w, r))
	token, err := p.accessToken(grant)
	if err != nil {
		return err
	}
	v := url.Values{
		"access_token": {token},
		"token_type":   {p.TokenType},
		"expires_in":   {strconv.Itoa(int(time.Duration(p.ExpiresIn) / time.Second))},
	}
	if req.withIDToken {
		idToken, err := p.idToken(grant, req.nonce, token)
		if err != nil {
			return err
		}
		v.Set("id_token", idToken)
	}
	if req.scope != "" {
		v.Set("scope", req.scope)
	}
	return p.answer(w, r, req, v)
}

func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, req pendingRequest, code, description string) error {
	return p.answer(w, r, req, url.Values{"error": {code}, "error_description": {description}})
}

// answer sends the authorization response to the client: in the fragment
// (errors in the query with error_in query, as Spotify does), or, with
// response_mode=form_post, in a form the browser posts to redirect_uri.
func (p *Provider) answer(w http.ResponseWriter, r *http.Request, req pendingRequest, v url.Values) error {
	if req.state != "" {
		v.Set("state", req.state)
	}
	if req.code && !p.OmitIss {
		v.Set("iss", issuer(r)) // RFC 9207
	}
	if req.formPost {
		return formPost(w, req.redirectURI, v)
	}
	sep := "#"
	if v.Has("error") && p.ErrorIn == "query" || req.code { // the code flow answers in the query (RFC 6749 §4.1.2)
		sep = "?"
	}
	http.Redirect(w, r, req.redirectURI+sep+v.Encode(), http.StatusSeeOther)
	return nil
}

var formPostTmpl = template.Must(template.New("form_post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Submit this form</title></head>
<body><form method="post" action="{{.Action}}">{{range $name, $values := .Fields}}{{range $values}}<input type="hidden" name="{{$name}}" value="{{.}}">{{end}}{{end}}
<noscript><button>Continue</button></noscript></form>
<script>document.forms[0].submit()</script></body></html>`))

// formPost writes the OAuth 2.0 Form Post Response Mode page: the
// response as hidden fields, submitted at once by the browser.
func formPost(w http.ResponseWriter, action string, fields url.Values) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return formPostTmpl.Execute(w, struct {
		Action string
		Fields url.Values
	}{action, fields})
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

// The provider's pages look like the module's own (relay.Style), with a
// badge that says what it is.
var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.Title}}</title>
<style>{{.Style}}
.badge{background:#b58900;color:#fff;padding:.1rem .5rem;border-radius:4px;font-size:.8rem}
input{font:inherit;padding:.3rem}.secondary{background:#5b6475}form.inline{display:inline}</style></head>
<body><main><p><span class="badge">DEV PROVIDER: NOT FOR PRODUCTION</span></p><h1>{{.Title}}</h1>
{{with .Message}}<p>{{.}}</p>{{end}}
{{with .Consent}}<p><b>{{.ClientID}}</b> (at {{.RedirectHost}}) wants to use your account{{if .Scopes}} with these scopes:{{end}}</p>
{{if .Scopes}}<ul>{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
<form method="post" action="/authorize/decision"><input type="hidden" name="request" value="{{.RequestID}}">
<p><label>Sign in as <input id="user" name="user" value="demo-user" autocomplete="off"></label></p>
<p>Any name works; a name set up with its own email (the demo's <code>mallory</code>) keeps it, anyone else becomes <code>name@corp.example</code>.</p>
<button class="button" id="approve" name="decision" value="approve">Approve</button> <button class="button secondary" id="deny" name="decision" value="deny">Deny</button></form>{{end}}
{{range .Approvals}}<p class="detail">You approved <b>{{.ClientID}}</b> as <b>{{.User}}</b>: its sign-ins skip this provider's pages.</p>
<form class="inline" method="post" action="/forget"><input type="hidden" name="client_id" value="{{.ClientID}}"><button class="button" id="switch-user" name="then" value="login">Sign in as someone else</button></form>
<form class="inline" method="post" action="/forget"><input type="hidden" name="client_id" value="{{.ClientID}}"><button class="button secondary" id="forget" name="then" value="">Forget my approval</button></form>{{end}}
{{if .Approvals}}<form method="post" action="/logout"><button class="button secondary" id="sign-out-everywhere">Sign out everywhere</button></form>{{end}}
{{with .Link}}<p><a href="{{.}}">Back to the application</a></p>{{end}}
</main></body></html>`))

// approval is a client this browser approved, and as whom.
type approval struct{ ClientID, User string }

type pageData struct {
	Title, Message string
	Style          template.CSS
	Consent        *consent
	Approvals      []approval
	Link           string
}

func page(w http.ResponseWriter, status int, title, message string, c *consent) error {
	return writePage(w, status, pageData{Title: title, Message: message, Consent: c})
}

// writePage writes one of the provider's pages, in the module's look.
func writePage(w http.ResponseWriter, status int, d pageData) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	d.Style = template.CSS(relay.Style())
	return pageTmpl.Execute(w, d)
}
