package relay

import (
	"html/template"
	"net/http"
)

// The page that takes a logged-out browser to the server's
// end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0 §2), by a
// top-level GET: the server's own cookies (SameSite=Lax at most servers)
// go only with that, and without them it cannot tell whose login to end.
// The URL, which carries the ID token as id_token_hint, is in the body,
// never in a header: bodies stay out of Caddy's access log.
var (
	endSessionScript = `location.replace(document.getElementById("next").href)`
	endSessionPage   = template.Must(template.New("end_session").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,">
<noscript><meta http-equiv="refresh" content="0;url={{.Next}}"></noscript><title>Signing out…</title><style>{{.Style}}</style></head>
<body><main><h1>Signing out…</h1><p>You are signed out of this site. If nothing happens, <a id="next" href="{{.Next}}">sign out at the authorization server too</a>.</p></main>
<script>{{.Script}}</script></body></html>`))
)

// ServeEndSession writes the page that sends the browser to next. Its CSP
// admits its one script.
func ServeEndSession(w http.ResponseWriter, next string) error {
	csp := "default-src 'none'; script-src " + cspHash(endSessionScript) + "; style-src " + styleHash + iconSrc + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	setPageHeaders(w, csp)
	w.WriteHeader(http.StatusOK)
	return endSessionPage.Execute(w, struct {
		Style  template.CSS
		Script template.JS
		Next   string
	}{template.CSS(pageStyle), template.JS(endSessionScript), next})
}
