// Logout: ending the session in the store and in the browser.

package implicitgrant

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/relay"
)

// serveLogout ends the session in the store and in the browser.
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) error {
	metrics.logouts.Inc()
	if value := h.sessionValue(r); value != "" {
		if err := h.store.Delete(r.Context(), value); err != nil {
			h.logRefusal(zap.ErrorLevel, "session store failed during logout", zap.Error(err))
			return h.fail(w, r, failure{code: codeStoreUnavailable})
		}
		h.logRefusal(zap.InfoLevel, "logged out") // a stranger can send any cookie value here
	}
	h.setSessionCookie(w, r, "", -1)
	w.Header().Set("Cache-Control", "no-store")
	if h.LogoutRedirect != "" {
		http.Redirect(w, r, h.LogoutRedirect, http.StatusSeeOther)
		return nil
	}
	return relay.ServeMessage(w, http.StatusOK, relay.Message{
		Title:    "Signed out",
		Text:     "You are signed out of this site. Your account at the authorization server may still be signed in.",
		LinkHref: "/",
		LinkText: "Sign in again",
	})
}
