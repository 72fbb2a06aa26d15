package relay

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"strings"
)

var (
	//go:embed relay.js
	relayScript string
	//go:embed start.js
	startScript string
	//go:embed session.js
	sessionScript []byte
	//go:embed page.css
	pageStyle string
	//go:embed head.html relay.html start.html message.html
	pageFiles embed.FS
)

var (
	styleHash = cspHash(pageStyle)
	// The pages name an empty inline icon (data:), so browsers that look
	// for /favicon.ico (Firefox does, on every page) do not, and the CSP
	// admits that one image source.
	iconSrc  = "; img-src data:"
	relayCSP = "default-src 'none'; script-src " + cspHash(relayScript) + "; style-src " + styleHash + iconSrc + "; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	startCSP = "default-src 'none'; script-src " + cspHash(startScript) + "; style-src " + styleHash + iconSrc + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	// Pages without a script still deny them all; one with a form may post
	// it to this site only.
	messageCSP = "default-src 'none'; style-src " + styleHash + iconSrc + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

	// The built-in pages.
	builtin = &Pages{
		relay:     &page{t: pageTemplate("relay.html"), csp: relayCSP},
		start:     &page{t: pageTemplate("start.html"), csp: startCSP},
		errors:    &page{t: pageTemplate("message.html"), csp: messageCSP},
		signedOut: &page{t: pageTemplate("message.html"), csp: messageCSP},
		forbidden: &page{t: pageTemplate("message.html"), csp: messageCSP},
	}
)

// Pages renders the module's pages: the built-in ones, or the site
// owner's templates (see LoadTemplate). Safe for concurrent use.
type Pages struct {
	relay, start, errors, signedOut, forbidden *page
}

// page is one page: its template and its Content-Security-Policy.
type page struct {
	t   *template.Template
	csp string
}

// Builtin returns the built-in pages, for a site to override some of.
func Builtin() *Pages {
	p := *builtin
	return &p
}

// pageData is what the page templates see. The scripts and the style go in
// as they are, so the hashes in the CSPs match them.
type pageData struct {
	Message
	Next         string // start page: where it sends the browser
	ReturnTo     string // start page: where the login comes back to
	KeepFragment bool   // start page: keep the URL's fragment too
	Answer       string // relay page after a form_post: the answer, JSON
	Continue     string // relay page after a form_post: where to go without JavaScript
	Script       template.JS
	Style        template.CSS
}

// pageTemplate parses a page together with the head all pages share.
func pageTemplate(name string) *template.Template {
	return template.Must(template.New(name).ParseFS(pageFiles, "head.html", name))
}

// execute writes a page; every page carries the same style.
func execute(w io.Writer, t *template.Template, d pageData) error {
	d.Style = template.CSS(pageStyle)
	return t.Execute(w, d)
}

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// setPageHeaders keeps a login page out of caches, referrers and frames.
func setPageHeaders(w http.ResponseWriter, csp string) { setFramedPageHeaders(w, csp, false) }

// setFramedPageHeaders is setPageHeaders; with sameOriginFrame, the page
// may be framed by its own origin (session.js renews in a hidden frame).
func setFramedPageHeaders(w http.ResponseWriter, csp string, sameOriginFrame bool) {
	frameOptions := "DENY"
	if sameOriginFrame {
		frameOptions = "SAMEORIGIN"
		csp = strings.Replace(csp, "frame-ancestors 'none'", "frame-ancestors 'self'", 1)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", frameOptions)
	h.Set("Content-Security-Policy", csp)
}

// ServePage writes the relay page: HTML whose only script is the relay
// script, allowed by its hash. inFrame: for session.js's hidden frame,
// framed by the site's own origin only.
func (p *Pages) ServePage(w http.ResponseWriter, inFrame bool) error {
	setFramedPageHeaders(w, p.relay.csp, inFrame)
	w.WriteHeader(http.StatusOK)
	return execute(w, p.relay.t, pageData{Message: Message{Title: "Signing in…"}, Script: template.JS(relayScript)})
}

// ServeSessionScript writes session.js, for pages to include.
func ServeSessionScript(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(sessionScript)
}

// Answer is what the relay script is told after the response was taken:
// where to go next, with what the start page kept in the tab.
type Answer struct {
	Location string `json:"location"`
	// Resume: go back to the path the start page kept in this tab, if it
	// kept one (a return path too long for the state cookie).
	Resume bool `json:"resume,omitempty"`
	// Relogin: Location starts a new login; the URL's fragment the start
	// page kept goes with it, for that login's start page to keep.
	Relogin bool   `json:"relogin,omitempty"`
	Error   string `json:"error,omitempty"`
	// State names what the start page kept (only on the landing page:
	// the relay script has it from the fragment). Spent by now.
	State string `json:"state,omitempty"`
}

// ServeLanding answers a response that did not come through the relay
// script (a form_post, an error in the query) with the relay page carrying
// the answer, so the original URL's fragment comes back as it does after
// a fragment response. Always 200: the page is a step, not the outcome.
func (p *Pages) ServeLanding(w http.ResponseWriter, a Answer, inFrame bool) error {
	answer, err := json.Marshal(a)
	if err != nil {
		return err
	}
	setFramedPageHeaders(w, p.relay.csp, inFrame)
	w.WriteHeader(http.StatusOK)
	return execute(w, p.relay.t, pageData{Message: Message{Title: "Signing in…"}, Answer: string(answer), Continue: a.Location, Script: template.JS(relayScript)})
}

// ServeStart writes the page that sends a browser to next (the
// authorization URL) after keeping, for the relay page, the path the login
// comes back to and (with keepFragment) the URL's fragment, which only a
// script can see. Without JavaScript a meta refresh does the redirect. The
// URL is in the body, not in a header: bodies stay out of access logs.
func (p *Pages) ServeStart(w http.ResponseWriter, next, returnTo string, keepFragment, inFrame bool) error {
	setFramedPageHeaders(w, p.start.csp, inFrame)
	w.WriteHeader(http.StatusOK)
	return execute(w, p.start.t, pageData{Message: Message{Title: "Signing in…"}, Next: next, ReturnTo: returnTo, KeepFragment: keepFragment, Script: template.JS(startScript)})
}

// Message is a page for a person: what happened, in plain words, and
// where to go next. Every field is HTML-escaped.
type Message struct {
	Title       string
	Text        string
	Code        string // the OAuth error code, if any
	Description string // the authorization server's own words, if any
	SignedInAs  string // who the person signed in as (a refused user's page)
	FormAction  string // a same-origin path the page's one button POSTs to
	FormButton  string
	LinkHref    string
	LinkText    string
}

// The pages for a person (Message) a site can restyle apart.
const (
	ErrorPage     = "error"      // a login or request that failed
	SignedOutPage = "signed_out" // after logout, and the "Sign out?" question
	ForbiddenPage = "forbidden"  // a signed-in user the allow rules refuse
)

// ServeMessage writes m, on the page of that kind, with the given status.
func (p *Pages) ServeMessage(w http.ResponseWriter, status int, kind string, m Message) error {
	pg := p.errors
	switch kind {
	case SignedOutPage:
		pg = p.signedOut
	case ForbiddenPage:
		pg = p.forbidden
	}
	csp := pg.csp
	if m.FormAction != "" { // its one button posts to this site only
		csp = strings.Replace(csp, "form-action 'none'", "form-action 'self'", 1)
	}
	setPageHeaders(w, csp)
	w.WriteHeader(status)
	return execute(w, pg.t, pageData{Message: m})
}

// Style is the stylesheet of the module's pages, for pages that should
// look like them (the development provider's).
func Style() string { return pageStyle }
