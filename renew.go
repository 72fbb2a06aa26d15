// Renewal: with renew_before, a page load on a session about to end goes
// through the authorization endpoint again (prompt=none by default) and
// comes back to the same URL, while the old session keeps serving the
// page's other requests until the new one replaces it. And session_path
// tells a page's script whether it has a session and until when.

package implicitgrant

import (
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/internal/coarseclock"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// RenewPrompt is what a renewal asks of the authorization server.
type RenewPrompt string

// The renewal prompts.
const (
	RenewPromptNone    RenewPrompt = "none"    // prompt=none: no dialog, or an error that starts a normal login
	RenewPromptDefault RenewPrompt = "default" // whatever the server does on a normal login
)

// renewPause is how long after a renewal starts no page load starts
// another: a session that comes back still inside renew_before (a server
// issuing tokens shorter than it) costs one renewal a minute, never a loop.
const renewPause = time.Minute

func (h *Handler) renewingCookie() string { return h.CookieName + "_renewing" }

// renewDue says whether r, a request on session s, should renew it. The
// hot path pays one comparison when renew_before is off, and a load and a
// comparison more when it is on.
func (h *Handler) renewDue(r *http.Request, s tokencache.Session) bool {
	if h.RenewBefore == 0 || s.Refreshable() || s.Expires.UnixNano()-coarseclock.Now() >= int64(h.RenewBefore) || !isPageLoad(r) {
		return false
	}
	_, err := r.Cookie(h.renewingCookie())
	return err != nil
}

// renew starts the renewal of the session r carries: the start page, at
// the page's own URL, so the fragment is kept as for a first login.
func (h *Handler) renew(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, h.sessionCookie(h.renewingCookie(), "1", int(renewPause/time.Second)))
	if c := h.logger.Check(zap.DebugLevel, "renewing a session before it ends"); c != nil {
		c.Write()
	}
	return h.startLogin(w, r, relay.SafeReturnPath(publicURL(r).RequestURI()), h.RenewPrompt == RenewPromptNone)
}

// interactionNeeded are the answers to prompt=none that mean "the server
// needs the user" (OpenID Connect Core §3.1.2.6): a silent renewal that
// gets one starts a normal login, so the person sees the server's login
// page, never an error.
var interactionNeeded = map[string]bool{
	"login_required": true, "consent_required": true, "interaction_required": true, "account_selection_required": true,
}

// sessionInfo is session_path's answer: never the token.
type sessionInfo struct {
	Authenticated bool   `json:"authenticated"`
	ExpiresAt     string `json:"expires_at,omitempty"`
	User          string `json:"user,omitempty"`
	LoginURL      string `json:"login_url,omitempty"`
	// For session.js: how long before expires_at to renew (renew_before,
	// in seconds; absent: the script's own default), and where.
	RenewBefore int    `json:"renew_before,omitempty"`
	RenewURL    string `json:"renew_url,omitempty"`
	// require_header, for session.js to add to the page's fetch calls.
	RequireHeader *RequiredHeader `json:"require_header,omitempty"`
}

// serveSessionInfo answers session_path.
func (h *Handler) serveSessionInfo(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed"})
	}
	if value := h.sessionValue(r); value != "" {
		s, ok, err := h.store.Get(r.Context(), value)
		if err == nil && ok {
			ok, err = h.revalidated(r.Context(), value, s)
		}
		if err != nil {
			h.logRefusal(zap.ErrorLevel, "cannot tell whether a session is live; refusing the request", zap.Error(err))
			return h.fail(w, r, failure{code: codeStoreUnavailable})
		}
		if ok {
			return writeJSON(w, http.StatusOK, sessionInfo{
				Authenticated: true, ExpiresAt: s.Expires.UTC().Format(time.RFC3339Nano), User: subjectOf(s.Identity),
				RenewBefore: int(time.Duration(h.RenewBefore) / time.Second), RenewURL: h.LoginPath + "?silent=1", RequireHeader: h.RequireHeader,
			})
		}
	}
	return writeJSON(w, http.StatusOK, sessionInfo{LoginURL: h.LoginPath + "?return_to=" + url.QueryEscape(h.returnPathFor(r))})
}
