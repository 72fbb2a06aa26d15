// The callback: the relay page, the relay script's POST that finishes a
// login (reading the body, the checks on it, the session's lifetime), and
// the error page the relay sends a failed login to.

package implicitgrant

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/relay"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// serveCallback answers a GET of the callback. A success carries the token
// in the fragment, which only the relay page's script can read; an error
// may come in the query, straight from the server (as Spotify sends it)
// or from the relay script after a failed POST.
func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if ae, isErr := relay.ParseAuthError(q); isErr {
		f := failure{code: code(ae.Code), description: ae.Description, retry: relay.SafeReturnPath(q.Get("return_to"))}
		if ae.State == "" {
			// The relay's own error page: the server's words, if any, are
			// in the note the relay POST left for this browser.
			f.description, f.verified = h.errorNotes.Take(w, r, ae.Code)
			return h.fail(w, r, f)
		}
		if p, err := h.states.Take(w, r, ae.State); err == nil {
			f.verified, f.retry = true, p.ReturnTo
		}
		h.logger.Info("authorization server returned an error", zap.String("error", ae.Code))
		return h.loginFailed(w, r, f)
	}
	if q.Has("access_token") {
		// A token in the query has already been written to access logs and
		// history on the way here; refuse it rather than make it a session.
		h.logger.Warn("refused an access token sent in the callback's query string; the authorization server must use the fragment")
		return h.loginFailed(w, r, failure{code: codeInvalidResponse})
	}
	relay.ServePage(w)
	return nil
}

// serveRelayPost takes what the relay script posted: the callback's
// fragment, as the authorization server wrote it.
func (h *Handler) serveRelayPost(w http.ResponseWriter, r *http.Request) error {
	body, refusal := h.readRelayBody(w, r)
	if refusal != "" {
		return h.loginFailed(w, r, failure{code: refusal})
	}
	tr, ae, err := relay.ParseFragment(body)
	switch {
	case ae != nil:
		f := failure{code: code(ae.Code), description: ae.Description}
		if p, err := h.states.Take(w, r, ae.State); err == nil {
			f.verified, f.retry = true, p.ReturnTo
		}
		h.logger.Info("authorization server returned an error", zap.String("error", ae.Code))
		return h.loginFailed(w, r, f)
	case err != nil:
		h.logger.Warn("refused an authorization response", zap.Error(err))
		if vals, perr := url.ParseQuery(body); perr == nil && len(vals["state"]) == 1 {
			h.states.Take(w, r, vals.Get("state")) // the attempt is over either way
		}
		return h.loginFailed(w, r, failure{code: codeInvalidResponse})
	}
	return h.finishLogin(w, r, tr)
}

// readRelayBody applies the relay POST's checks on where it comes from and
// what it carries, and reads its bounded body.
func (h *Handler) readRelayBody(w http.ResponseWriter, r *http.Request) (string, code) {
	if !h.sameOrigin(r) {
		h.logger.Warn("refused a relay post from another origin", zap.String("origin", r.Header.Get("Origin")))
		return "", codeCrossOrigin
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return "", codeUnsupportedMedia
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, relay.MaxFragmentBytes))
	if err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			return "", codeTooLarge
		}
		return "", codeUnreadable
	}
	return string(body), ""
}

// finishLogin turns a well-formed token response into a session, once its
// state proves the login was started by this browser, here, and not used.
func (h *Handler) finishLogin(w http.ResponseWriter, r *http.Request, tr *relay.TokenResponse) error {
	pending, err := h.states.Take(w, r, tr.State)
	if err != nil {
		h.logger.Warn("refused a login", zap.String("reason", err.Error()))
		return h.loginFailed(w, r, failure{code: codeInvalidState})
	}
	first, err := h.store.ClaimState(r.Context(), tr.State, pending.Expires)
	if err != nil {
		h.logger.Error("session store failed while finishing a login", zap.Error(err))
		return h.loginFailed(w, r, failure{code: codeStoreUnavailable, retry: pending.ReturnTo})
	}
	if !first {
		h.logger.Warn("refused a login", zap.String("reason", "state already used"))
		return h.loginFailed(w, r, failure{code: codeInvalidState, retry: pending.ReturnTo})
	}

	ttl := h.sessionLifetime(tr.ExpiresIn)
	value, err := h.store.Put(r.Context(), tokencache.Session{
		Authorization: "Bearer " + tr.AccessToken,
		Expires:       time.Now().Add(ttl),
	})
	if err != nil {
		h.logger.Error("session store failed while finishing a login", zap.Error(err))
		return h.loginFailed(w, r, failure{code: codeStoreUnavailable, retry: pending.ReturnTo})
	}
	if old := h.sessionValue(r); old != "" {
		_ = h.store.Delete(r.Context(), old) // the browser's previous session ends with the new one
	}
	h.setSessionCookie(w, r, value, int(ttl/time.Second))
	h.logger.Info("login finished", zap.Duration("session_lifetime", ttl), zap.String("scope", tr.Scope))
	countLogin(loginSuccess)
	return writeJSON(w, http.StatusOK, relayAnswer{Location: pending.ReturnTo})
}

// sessionLifetime is how long a session for a token lasting expiresIn
// seconds (0: the server did not say) may live: it ends expiry_leeway
// before the token, but never later than half-way through its life.
func (h *Handler) sessionLifetime(expiresIn int64) time.Duration {
	lifetime := time.Duration(h.DefaultExpiresIn)
	if expiresIn > 0 {
		lifetime = time.Duration(expiresIn) * time.Second
	}
	return max(lifetime-time.Duration(h.ExpiryLeeway), lifetime/2)
}

// relayAnswer is what the relay script gets back: where to go next.
type relayAnswer struct {
	Location string `json:"location"`
	Error    string `json:"error,omitempty"`
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
