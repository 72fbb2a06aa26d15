// The hot path: every request that is not for one of the handler's own
// paths, and what a request without a session gets.

package implicitgrant

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/cookieheader"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
)

// serveProtected is the hot path: every proxied request passes here.
func (h *Handler) serveProtected(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if value := h.sessionValue(r); value != "" {
		s, ok, err := h.store.Get(r.Context(), value)
		if err != nil {
			// Fail closed: without the store nobody can be trusted.
			metrics.storeError.Inc()
			h.logger.Error("session store failed; refusing the request", zap.Error(err))
			if !h.isNavigation(r) && !hasErrorRoutes(r) {
				return writeJSON(w, http.StatusServiceUnavailable, map[string]string{
					"error":             "store_unavailable",
					"error_description": "the session store cannot be reached; try again shortly",
				})
			}
			return h.respondError(w, r, http.StatusServiceUnavailable, "store_unavailable", "", r.URL.RequestURI())
		}
		if ok {
			metrics.authenticated.Inc()
			cookieheader.Strip(r.Header, h.CookieName)
			if v := r.Header["Authorization"]; len(v) == 1 {
				v[0] = s.Authorization // replace the client's own in place: no allocation
			} else {
				r.Header["Authorization"] = []string{s.Authorization}
			}
			return next.ServeHTTP(w, r)
		}
	}
	if !h.isNavigation(r) {
		metrics.unauthenticated.Inc()
		return h.respondUnauthenticated(w, r)
	}
	metrics.loginRedirect.Inc()
	return h.startLogin(w, r, r.URL.RequestURI())
}

// isNavigation tells a person's page load, which can be sent to log in,
// from a script's or client's call, which cannot follow that redirect.
func (h *Handler) isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch h.Unauthenticated {
	case "redirect":
		return true
	case "reject":
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

// respondUnauthenticated answers a call that cannot follow a login
// redirect: 401 with a JSON body saying where a person can log in.
func (h *Handler) respondUnauthenticated(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("WWW-Authenticate", `Bearer realm="implicit_grant"`)
	if hasErrorRoutes(r) {
		return caddyhttp.Error(http.StatusUnauthorized, errors.New("implicit_grant: no valid session"))
	}
	returnTo := "/"
	if ref, err := url.Parse(r.Header.Get("Referer")); err == nil && ref.Host != "" && originOf(ref) == h.origin {
		returnTo = relay.SafeReturnPath(ref.RequestURI())
	}
	return writeJSON(w, http.StatusUnauthorized, map[string]string{
		"error":             "unauthenticated",
		"error_description": "no valid session: log in at login_url",
		"login_url":         h.LoginPath + "?return_to=" + url.QueryEscape(returnTo),
	})
}
