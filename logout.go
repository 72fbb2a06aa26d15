// Logout: ending the session in the store and in the browser, but only
// when the browser says the request is the site's own or the user's.

package implicitgrant

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/relay"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// serveLogout ends the session in the store and in the browser, then at
// the server: its tokens revoked, and with end_session the browser sent
// to end its login there (its return: finishEndSession).
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) error {
	if !h.logoutIsWanted(r) {
		// Another site linked here, or an old browser says nothing: ask.
		return h.pages.ServeMessage(w, http.StatusOK, relay.SignedOutPage, relay.Message{
			Title:      "Sign out?",
			Text:       "Do you want to sign out of this site?",
			FormAction: h.LogoutPath,
			FormButton: "Sign out",
		})
	}
	metrics.logouts.Inc()
	var s tokencache.Session
	found := false
	if value := h.sessionValue(r); value != "" {
		s, found, _ = h.store.Get(r.Context(), value)
		if err := h.store.Delete(r.Context(), value); err != nil {
			h.logRefusal(zap.ErrorLevel, "session store failed during logout", zap.Error(err))
			return h.fail(w, r, failure{code: codeStoreUnavailable})
		}
		if found {
			h.logger.Info("logged out", zap.String("user", subjectOf(s.Identity)))
			h.events.emit(eventLogout, map[string]any{"user": subjectOf(s.Identity)})
			h.revokeAtLogout(r.Context(), s)
		}
	}
	h.setSessionCookie(w, r, "", -1)
	w.Header().Set("Cache-Control", "no-store")
	if h.EndSession && found {
		if sent, err := h.endSession(w, r, s); sent {
			return err
		}
	}
	if h.LogoutRedirect != "" {
		http.Redirect(w, r, h.LogoutRedirect, http.StatusSeeOther)
		return nil
	}
	return h.serveSignedOut(w, "You are signed out of this site. Your account at the authorization server may still be signed in.")
}

// serveSignedOut is the page after a logout, saying what text says.
func (h *Handler) serveSignedOut(w http.ResponseWriter, text string) error {
	return h.pages.ServeMessage(w, http.StatusOK, relay.SignedOutPage, relay.Message{Title: "Signed out", Text: text, LinkHref: "/", LinkText: "Sign in again"})
}
