// The router: the handler's own paths, and every other request guarded;
// and what Caddy calls on the handler besides (Validate, Cleanup).

package implicitgrant

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
)

// ServeHTTP routes the handler's own paths and guards everything else.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	path := publicURL(r).Path
	if h.returnsFromEndSession(r, path) { // the logout path, or logout_redirect's page on this site
		return h.finishEndSession(w, r)
	}
	switch path {
	case h.callbackPath:
		switch r.Method {
		case http.MethodPost:
			return h.serveRelayPost(w, r)
		case http.MethodGet, http.MethodHead:
			return h.serveCallback(w, r)
		}
		w.Header().Set("Allow", "GET, HEAD, POST")
		return caddyhttp.Error(http.StatusMethodNotAllowed, errors.New("implicit_grant: the callback takes GET, HEAD and POST"))
	case h.LoginPath:
		return h.serveLogin(w, r)
	case h.LogoutPath:
		return h.serveLogout(w, r)
	case h.SessionPath:
		return h.serveSessionInfo(w, r)
	case h.SessionPath + ".js":
		relay.ServeSessionScript(w)
		return nil
	case h.BackchannelLogoutPath:
		if h.BackchannelLogoutPath != "" {
			return h.serveBackchannelLogout(w, r)
		}
	}
	return h.serveProtected(w, r, next)
}

// Validate is part of caddy.Validator; the checks run in Provision (see
// checkConfig), where placeholders have been replaced.
func (h *Handler) Validate() error { return nil }

// Cleanup releases this config's hold on the shared session store.
func (h *Handler) Cleanup() error {
	unregister(h)
	if h.releaseClock != nil {
		h.releaseClock()
	}
	if h.storePoolKey != "" {
		_, err := stores.Delete(h.storePoolKey)
		return err
	}
	return nil
}
