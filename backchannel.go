// Back-channel logout (OpenID Connect Back-Channel Logout 1.0): the
// server POSTs a signed logout token when a user logs out there, or is
// disabled, and the sessions it names end in the store: the user's (sub),
// or one login's (sid).

package implicitgrant

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// maxLogoutBody bounds a back-channel logout request: one logout token.
const maxLogoutBody = 64 << 10

// maxSeenTokens bounds the replay cache. Only tokens the server signed
// reach it, so it fills only as fast as the server logs users out; full,
// a logout is answered 503 for the server to try again.
const maxSeenTokens = 100_000

// serveBackchannelLogout verifies a logout token and ends what it names.
func (h *Handler) serveBackchannelLogout(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "POST a logout_token"})
	}
	now := time.Now()
	addr := clientAddress(r)
	if h.limits.refusal(addr, now) == codeTooManyFailures { // (not the address's logins: the server's address may be its users')
		h.logRefusal(zap.WarnLevel, "refused a back-channel logout: this address's failure limit is used up", zap.String("client", loggable(addr)))
		return writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "invalid_request", "error_description": "too many failed logouts from this address"})
	}
	refuse := func(status int, description string, fields ...zap.Field) error {
		if status == http.StatusBadRequest {
			h.limits.countFailure(addr, now)
		}
		h.logRefusal(zap.WarnLevel, "refused a back-channel logout", append(fields, zap.String("reason", description))...)
		return writeJSON(w, status, map[string]string{"error": "invalid_request", "error_description": description})
	}
	body, refusal := readForm(w, r, maxLogoutBody)
	switch refusal {
	case codeUnsupportedMedia:
		return refuse(http.StatusBadRequest, "the body must be application/x-www-form-urlencoded")
	case codeTooLarge:
		return refuse(http.StatusRequestEntityTooLarge, "the body is larger than a logout token")
	case codeUnreadable:
		return refuse(http.StatusBadRequest, "the body could not be read")
	}
	form, err := url.ParseQuery(body)
	if err != nil || len(form["logout_token"]) != 1 || len(form["logout_token"][0]) > h.MaxTokenBytes {
		return refuse(http.StatusBadRequest, "expected one logout_token")
	}
	lt, err := h.openid.VerifyLogoutToken(r.Context(), form.Get("logout_token"))
	switch {
	case errors.Is(err, authserver.ErrUnavailable): // the keys cannot be fetched: the server may try again
		h.logRefusal(zap.ErrorLevel, "cannot verify a back-channel logout: the authorization server is unavailable", zap.Error(err))
		return writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
	case err != nil:
		return refuse(http.StatusBadRequest, err.Error())
	}
	if !h.logoutTokens.add(lt.JTI, struct{}{}, lt.IssuedAt.Add(authserver.MaxLogoutTokenAge+authserver.Leeway), now) {
		if _, seen := h.logoutTokens.get(lt.JTI, now); seen {
			return refuse(http.StatusBadRequest, "the logout token was used before (its jti)")
		}
		h.logRefusal(zap.ErrorLevel, "cannot take a back-channel logout: the record of logout tokens seen is full", zap.Int("entries", maxSeenTokens))
		return writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
	}
	revoker, ok := h.store.(tokencache.Revoker)
	if !ok {
		return writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "invalid_request", "error_description": "this session store cannot end sessions"})
	}
	var n int
	if lt.SID != "" {
		n, err = revoker.EndLogin(r.Context(), lt.SID)
	} else {
		n, err = revoker.EndUser(r.Context(), lt.Subject)
	}
	if err != nil {
		h.logRefusal(zap.ErrorLevel, "session store failed during a back-channel logout", zap.Error(err))
		return writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
	}
	fields := []zap.Field{zap.String("user", lt.Subject), zap.Bool("one_login", lt.SID != "")}
	if n != tokencache.NotCounted {
		fields = append(fields, zap.Int("ended", n))
	}
	h.logger.Info("back-channel logout", fields...)
	h.events.emit(eventLogout, map[string]any{"user": lt.Subject, "channel": "backchannel"})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}
