// Request classification: what the browser says a request is (a person's
// page load or a script's call, a frame, the same origin, the server's
// form post, a wanted logout), where it really came from (the public URL,
// the client's address), and so what a request without a session gets.
// The CSRF rules are the functions in this file, on one screen.

package implicitgrant

import (
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/implicitgrant/caddy-implicit-grant/relay"
)

// UnauthenticatedPolicy is what a request without a session gets.
type UnauthenticatedPolicy string

// The unauthenticated policies.
const (
	UnauthenticatedAuto     UnauthenticatedPolicy = "auto"
	UnauthenticatedRedirect UnauthenticatedPolicy = "redirect"
	UnauthenticatedReject   UnauthenticatedPolicy = "reject"
)

// publicURL is the URL the browser asked for, before handle_path, uri
// strip_prefix or rewrite changed it: the handler's own paths and every
// return path are the browser's.
func publicURL(r *http.Request) *url.URL {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		return orig.URL
	}
	return r.URL
}

// redirectsToLogin applies the unauthenticated policy to a request
// without a session.
func (h *Handler) redirectsToLogin(r *http.Request) bool {
	switch h.Unauthenticated {
	case UnauthenticatedRedirect:
		return r.Method == http.MethodGet || r.Method == http.MethodHead
	case UnauthenticatedReject:
		return false
	}
	return isPageLoad(r)
}

// isPageLoad tells a person's page load, which can be sent to log in or
// shown a page, from a script's or client's call, which cannot follow a
// login redirect and wants JSON.
func isPageLoad(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" && mode != "navigate" {
		return false
	}
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// returnPathFor is where a login started on behalf of r should come back
// to: the page itself for a page load; for a script's call, the page that
// made it (its same-origin Referer), or "/".
func (h *Handler) returnPathFor(r *http.Request) string {
	if isPageLoad(r) {
		return relay.SafeReturnPath(publicURL(r).RequestURI())
	}
	if ref, err := url.Parse(r.Header.Get("Referer")); err == nil && ref.Host != "" && originOf(ref) == h.origin {
		return relay.SafeReturnPath(ref.RequestURI())
	}
	return "/"
}

// inFrame: the browser loads this page in a frame (Sec-Fetch-Dest).
func inFrame(r *http.Request) bool { return r.Header.Get("Sec-Fetch-Dest") == "iframe" }

// framedLogin: the response arrives from a frame: the relay script there
// says so (its fetch is not itself a frame's load); a form_post lands in
// the frame.
func framedLogin(r *http.Request) bool {
	return r.Header.Get("X-Implicit-Grant-Frame") == "1" || inFrame(r)
}

// sameOrigin accepts only requests a browser marks as coming from the
// redirect_uri's own origin.
func (h *Handler) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		ou, err := url.Parse(o)
		return err == nil && ou.Host != "" && originOf(ou) == h.origin
	}
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

// postedByServer: with form_post, the response is a navigation POSTed by
// the authorization server's page, from its origin ("null" when a
// no-referrer policy or a redirect hides it): top-level, or in session.js's
// frame (finishLogin lets a frame finish only a silent renewal). A
// script's fetch and a page of any other origin are refused; the state,
// bound to this browser, is what proves the login is this browser's.
func (h *Handler) postedByServer(r *http.Request) bool {
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" && mode != "navigate" {
		return false
	}
	if dest := r.Header.Get("Sec-Fetch-Dest"); dest != "" && dest != "document" && dest != "iframe" { // a frame: session.js's renewal (finishLogin checks)
		return false
	}
	o := r.Header.Get("Origin")
	if o == "null" {
		return true
	}
	prefix, err := h.authorizeRequest(r.Context())
	ou, oerr := url.Parse(o)
	au, aerr := url.Parse(prefix)
	return err == nil && oerr == nil && aerr == nil && ou.Host != "" && originOf(ou) == originOf(au)
}

// logoutIsWanted: a same-origin POST, or a GET the browser marks as coming
// from this site (its own "sign out" link) or typed by the user
// (Sec-Fetch-Site: none). A cross-site link or redirect to the logout path
// must not end anyone's session (page scripts cannot set Sec-Fetch-Site).
func (h *Handler) logoutIsWanted(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost:
		return h.sameOrigin(r)
	case http.MethodGet, http.MethodHead:
		site := r.Header.Get("Sec-Fetch-Site")
		return site == "same-origin" || site == "none"
	}
	return false
}

// clientAddress is the client's IP as Caddy determined it (trusted
// proxies considered), else the connection's.
func clientAddress(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// originOf is a URL's origin as browsers write it in Origin: lower case,
// without the scheme's default port.
func originOf(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if p := u.Port(); (scheme == "https" && p == "443") || (scheme == "http" && p == "80") {
		host = strings.ToLower(u.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return scheme + "://" + host
}

// RequiredHeader is require_header's name and value.
type RequiredHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// lacksRequiredHeader says whether r, a request with a session, is a
// script's call or a write without require_header's header: what another
// site can make a browser send with its cookie, but never with a custom
// header (that needs a CORS preflight the site does not grant). Page loads
// and the page's own images, scripts and styles (GETs that cannot carry a
// header) pass, as do WebSockets (their Origin is the upstream's to check).
func (h *Handler) lacksRequiredHeader(r *http.Request) bool {
	rh := h.RequireHeader
	if rh == nil {
		return false
	}
	mode := r.Header.Get("Sec-Fetch-Mode")
	script := r.Method != http.MethodGet && r.Method != http.MethodHead || mode == "cors" || mode == "same-origin"
	return script && r.Header.Get(rh.Name) != rh.Value
}

// readForm reads a form-encoded body of at most limit bytes, or says why
// not: another media type, too large, unreadable.
func readForm(w http.ResponseWriter, r *http.Request, limit int64) (string, code) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return "", codeUnsupportedMedia
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			return "", codeTooLarge
		}
		return "", codeUnreadable
	}
	return string(body), ""
}
