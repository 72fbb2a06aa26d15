package relay

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"io"
	"net/http"
)

var (
	//go:embed relay.js
	relayScript string
	//go:embed start.js
	startScript string
	//go:embed page.css
	pageStyle string
	//go:embed head.html relay.html start.html message.html
	pageFiles embed.FS
)

var (
	styleHash = cspHash(pageStyle)
	relayCSP  = "default-src 'none'; script-src " + cspHash(relayScript) + "; style-src " + styleHash + "; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	startCSP  = "default-src 'none'; script-src " + cspHash(startScript) + "; style-src " + styleHash + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	// Pages without a script still deny them all.
	messageCSP = "default-src 'none'; style-src " + styleHash + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

	startPage   = pageTemplate("start.html")
	messagePage = pageTemplate("message.html")
	// The relay page never changes: rendered once.
	relayPage = render(pageTemplate("relay.html"), pageData{Message: Message{Title: "Signing in…"}, Script: template.JS(relayScript)})
)

// pageData is what the page templates see. The scripts and the style go in
// as they are, so the hashes in the CSPs match them.
type pageData struct {
	Message
	Next   string // start page: where it sends the browser
	Script template.JS
	Style  template.CSS
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

func render(t *template.Template, d pageData) []byte {
	var b bytes.Buffer
	if err := execute(&b, t, d); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// setPageHeaders keeps a login page out of caches, referrers and frames.
func setPageHeaders(w http.ResponseWriter, csp string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", csp)
}

// ServePage writes the relay page: static HTML whose only script is the
// relay script, allowed by its hash.
func ServePage(w http.ResponseWriter) {
	setPageHeaders(w, relayCSP)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(relayPage)
}

// ServeStart writes the page that sends a browser to next (the
// authorization URL) after keeping the URL's fragment, which only a script
// can see, for the relay page to restore. Without JavaScript a meta refresh
// does the redirect. The URL is in the body, not in a header: bodies stay
// out of access logs.
func ServeStart(w http.ResponseWriter, next string) error {
	setPageHeaders(w, startCSP)
	w.WriteHeader(http.StatusOK)
	return execute(w, startPage, pageData{Message: Message{Title: "Signing in…"}, Next: next, Script: template.JS(startScript)})
}

// Message is a page for a person: what happened, in plain words, and
// where to go next. Every field is HTML-escaped.
type Message struct {
	Title       string
	Text        string
	Code        string // the OAuth error code, if any
	Description string // the authorization server's own words, if any
	LinkHref    string
	LinkText    string
}

// ServeMessage writes m as a page with the given status.
func ServeMessage(w http.ResponseWriter, status int, m Message) error {
	setPageHeaders(w, messageCSP)
	w.WriteHeader(status)
	return execute(w, messagePage, pageData{Message: m})
}

// ErrorMessage explains an error code to the person who met it: the
// authorization server's codes (RFC 6749 §4.2.2.1) with its own description,
// and this module's codes (invalid_state, invalid_response,
// store_unavailable) with only our words, never text taken from the URL.
// retry is where "Try again" leads: a same-origin path.
func ErrorMessage(code, description, retry string) Message {
	m := Message{Title: "Sign-in failed", Code: code, Description: description, LinkHref: retry, LinkText: "Try again"}
	switch code {
	case "invalid_state", "invalid_response", "store_unavailable":
		m.Description = ""
	}
	switch code {
	case "access_denied":
		m.Title = "Sign-in was declined"
		m.Text = "The authorization server did not grant access: the request was declined at its sign-in or consent screen. Nothing was stored. If that was a mistake, try again."
	case "invalid_state":
		m.Text = "This sign-in could not be matched to one started in this browser. It may have taken too long, been used already, or been started in another browser or tab that was closed. Nothing was stored; starting again fixes it."
	case "invalid_response":
		m.Text = "The authorization server's answer was incomplete or malformed, so it was not accepted. Nothing was stored. If this keeps happening, tell the site's administrator."
	case "store_unavailable":
		m.Title = "Sign-in is unavailable"
		m.Text = "The session store cannot be reached right now, so nobody can be signed in. Nothing was changed. Try again in a moment."
		m.Code = ""
	case "server_error", "temporarily_unavailable":
		m.Text = "The authorization server had a problem and could not complete the sign-in. Wait a moment and try again."
	case "invalid_request", "unauthorized_client", "unsupported_response_type", "invalid_scope":
		m.Text = "The authorization server refused the sign-in request because of how this site is set up. Trying again will probably not help; tell the site's administrator."
	default:
		m.Text = "The authorization server reported an error and the sign-in did not complete. Nothing was stored."
	}
	return m
}
