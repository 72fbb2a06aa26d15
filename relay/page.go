package relay

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"strings"
)

var (
	//go:embed relay.js
	relayScript string
	//go:embed relay.html
	relayHTML string
	//go:embed page.css
	pageStyle string
	//go:embed message.html
	messageHTML string
	//go:embed start.js
	startScript string
	//go:embed start.html
	startHTML string
)

var (
	relayPage   = strings.NewReplacer("{{STYLE}}", pageStyle, "{{SCRIPT}}", relayScript).Replace(relayHTML)
	messagePage = template.Must(template.New("message").Parse(messageHTML))
	styleHash   = cspHash(pageStyle)
	relayCSP    = "default-src 'none'; script-src " + cspHash(relayScript) + "; style-src " + styleHash + "; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	messageCSP  = "default-src 'none'; style-src " + styleHash + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	startPage   = template.Must(template.New("start").Parse(startHTML))
	startCSP    = "default-src 'none'; script-src " + cspHash(startScript) + "; style-src " + styleHash + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

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
	_, _ = w.Write([]byte(relayPage))
}

// ServeStart writes the page that sends a browser to next (the
// authorization URL) after keeping the URL's fragment, which only a script
// can see, for the relay page to restore. Without JavaScript a meta refresh
// does the redirect. The URL is in the body, not in a header: bodies stay
// out of access logs.
func ServeStart(w http.ResponseWriter, next string) error {
	setPageHeaders(w, startCSP)
	w.WriteHeader(http.StatusOK)
	return startPage.Execute(w, struct {
		Next   string
		Style  template.CSS
		Script template.JS
	}{next, template.CSS(pageStyle), template.JS(startScript)})
}

// Message is a page for a person: what happened, in plain words, and
// where to go next. Every field is HTML-escaped.
type Message struct {
	Title       string
	Message     string
	Code        string // the OAuth error code, if any
	Description string // the authorization server's own words, if any
	LinkHref    string
	LinkText    string
	Style       template.CSS
}

// ServeMessage writes m as a page with the given status.
func ServeMessage(w http.ResponseWriter, status int, m Message) error {
	m.Style = template.CSS(pageStyle)
	setPageHeaders(w, messageCSP)
	w.WriteHeader(status)
	return messagePage.Execute(w, m)
}

// ErrorMessage explains an OAuth error code to the person who met it.
// retry is where "Try again" leads: a same-origin path.
func ErrorMessage(code, description, retry string) Message {
	m := Message{Title: "Sign-in failed", Code: code, Description: description, LinkHref: retry, LinkText: "Try again"}
	switch code {
	case "access_denied":
		m.Title = "Sign-in was declined"
		m.Message = "The authorization server did not grant access: the request was declined at its sign-in or consent screen. Nothing was stored. If that was a mistake, try again."
	case "invalid_state":
		m.Message = "This sign-in could not be matched to one started in this browser. It may have taken too long, been used already, or been started in another browser or tab that was closed. Nothing was stored; starting again fixes it."
	case "invalid_response":
		m.Message = "The authorization server's answer was incomplete or malformed, so it was not accepted. Nothing was stored. If this keeps happening, tell the site's administrator."
	case "server_error", "temporarily_unavailable":
		m.Message = "The authorization server had a problem and could not complete the sign-in. Wait a moment and try again."
	case "invalid_request", "unauthorized_client", "unsupported_response_type", "invalid_scope":
		m.Message = "The authorization server refused the sign-in request because of how this site is set up. Trying again will probably not help; tell the site's administrator."
	default:
		m.Message = "The authorization server reported an error and the sign-in did not complete. Nothing was stored."
	}
	return m
}
