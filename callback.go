// The callback: the relay page, the relay script's POST that finishes a
// login, and the checks on it.

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

// serveCallback answers the authorization server's redirect. A success
// carries the token in the fragment, which only the relay page's script
// can read; an error may come in the query (as Spotify sends it).
func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if ae, isErr := relay.ParseAuthError(q); isErr {
		retry := "/"
		if ae.State != "" {
			if p, err := h.states.Take(w, r, ae.State); err == nil {
				retry = p.ReturnTo
			}
		}
		h.logger.Info("authorization server returned an error", zap.String("error", ae.Code))
		countLogin(authErrorOutcome(ae.Code))
		return h.respondError(w, r, authErrorStatus(ae.Code), ae.Code, ae.Description, retry)
	}
	if q.Has("access_token") {
		// A token in the query has already been written to access logs and
		// history on the way here; refuse it rather than make it a session.
		h.logger.Warn("refused an access token sent in the callback's query string; the authorization server must use the fragment")
		countLogin(loginInvalidResponse)
		return h.respondError(w, r, http.StatusBadRequest, "invalid_response", "", "/")
	}
	relay.ServePage(w)
	return nil
}

// serveRelayPost takes what the relay script posted: the callback's fragment.
func (h *Handler) serveRelayPost(w http.ResponseWriter, r *http.Request) error {
	if !h.sameOrigin(r) {
		h.logger.Warn("refused a relay post from another origin", zap.String("origin", r.Header.Get("Origin")))
		countLogin(loginRefused)
		return writeJSON(w, http.StatusForbidden, relayAnswer{Error: "cross_origin", Location: "/"})
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		countLogin(loginRefused)
		return writeJSON(w, http.StatusUnsupportedMediaType, relayAnswer{Error: "unsupported_media_type", Location: "/"})
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, relay.MaxFragmentBytes))
	if err != nil {
		countLogin(loginRefused)
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			return writeJSON(w, http.StatusRequestEntityTooLarge, relayAnswer{Error: "too_large", Location: "/"})
		}
		return writeJSON(w, http.StatusBadRequest, relayAnswer{Error: "invalid_request", Location: "/"})
	}

	tr, ae, err := relay.ParseFragment(string(body))
	switch {
	case ae != nil:
		retry := "/"
		if p, err := h.states.Take(w, r, ae.State); err == nil {
			retry = p.ReturnTo
		}
		h.logger.Info("authorization server returned an error", zap.String("error", ae.Code))
		countLogin(authErrorOutcome(ae.Code))
		return h.relayError(w, authErrorStatus(ae.Code), ae.Code, ae.Description, retry)
	case err != nil:
		h.logger.Warn("refused an authorization response", zap.Error(err))
		countLogin(loginInvalidResponse)
		if vals, perr := url.ParseQuery(string(body)); perr == nil && len(vals["state"]) == 1 {
			h.states.Take(w, r, vals.Get("state")) // the attempt is over either way
		}
		return h.relayError(w, http.StatusBadRequest, "invalid_response", "", "/")
	}

	pending, err := h.states.Take(w, r, tr.State)
	if err != nil {
		h.logger.Warn("refused a login", zap.String("reason", err.Error()))
		countLogin(loginInvalidState)
		return h.relayError(w, http.StatusBadRequest, "invalid_state", "", "/")
	}
	first, err := h.store.ClaimState(r.Context(), tr.State, pending.Expires)
	if err != nil {
		h.logger.Error("session store failed while finishing a login", zap.Error(err))
		countLogin(loginStoreError)
		return h.relayError(w, http.StatusServiceUnavailable, "store_unavailable", "", pending.ReturnTo)
	}
	if !first {
		h.logger.Warn("refused a login", zap.String("reason", "state already used"))
		countLogin(loginInvalidState)
		return h.relayError(w, http.StatusBadRequest, "invalid_state", "", pending.ReturnTo)
	}

	lifetime := time.Duration(h.DefaultExpiresIn)
	if tr.ExpiresIn > 0 {
		lifetime = time.Duration(tr.ExpiresIn) * time.Second
	}
	ttl := max(lifetime-time.Duration(h.ExpiryLeeway), lifetime/2)
	value, err := h.store.Put(r.Context(), tokencache.Session{
		Authorization: "Bearer " + tr.AccessToken,
		Expires:       time.Now().Add(ttl),
	})
	if err != nil {
		h.logger.Error("session store failed while finishing a login", zap.Error(err))
		countLogin(loginStoreError)
		return h.relayError(w, http.StatusServiceUnavailable, "store_unavailable", "", pending.ReturnTo)
	}
	if old := h.sessionValue(r); old != "" {
		_ = h.store.Delete(r.Context(), old) // the browser's previous session ends with the new one
	}
	h.setSessionCookie(w, r, value, int(ttl/time.Second))
	h.logger.Info("login finished", zap.Duration("session_lifetime", ttl), zap.String("scope", tr.Scope))
	countLogin(loginSuccess)
	return writeJSON(w, http.StatusOK, relayAnswer{Location: pending.ReturnTo})
}

// relayAnswer is what the relay script gets back: where to go next.
type relayAnswer struct {
	Location string `json:"location"`
	Error    string `json:"error,omitempty"`
}

// relayError answers the relay script with the error page to show.
func (h *Handler) relayError(w http.ResponseWriter, status int, code, description, retry string) error {
	return writeJSON(w, status, relayAnswer{Error: code, Location: h.errorPage(code, description, retry)})
}

// errorPage is the callback URL that shows the page for an error code. It
// carries no state: the attempt is already over.
func (h *Handler) errorPage(code, description, retry string) string {
	q := url.Values{"error": {code}}
	if description != "" {
		q.Set("error_description", description)
	}
	if retry != "/" {
		q.Set("return_to", retry)
	}
	return h.callbackPath + "?" + q.Encode()
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
