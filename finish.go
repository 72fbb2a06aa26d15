// Finishing a login: its state used up, the token proved the server's
// (and, in the code flow, obtained for the code), the allow rules, the
// session stored, and how long it lives.

package implicitgrant

import (
	"errors"
	"net/http"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
	"go.uber.org/zap"
)

// finishLogin turns a well-formed token response into a session, once its
// state proves the login was started by this browser, here, and not used.
func (h *Handler) finishLogin(w http.ResponseWriter, r *http.Request, tr *relay.TokenResponse) error {
	pending, err := h.states.Take(w, r, tr.State)
	resume := pending.ReturnTo == "" // too long for the state cookie: the relay page kept it
	if resume {
		pending.ReturnTo = "/" // where error pages' "Try again" leads
	}
	if err != nil {
		h.logRefusal(zap.WarnLevel, "refused a login", zap.String("reason", err.Error()))
		return h.loginFailed(w, r, failure{code: codeInvalidState})
	}
	if framedLogin(r) && !pending.Silent {
		// A frame may only renew a session without a dialog (session.js).
		h.logRefusal(zap.WarnLevel, "refused a login", zap.String("reason", "finished in a frame, but not a silent renewal"))
		return h.loginFailed(w, r, failure{code: codeInvalidState, retry: pending.ReturnTo})
	}
	// From here the login is this browser's: its address's limits apply,
	// reserved before the state is used up or the server asked.
	att, refused := h.limits.begin(clientAddress(r), time.Now())
	if refused != "" {
		h.logRefusal(zap.WarnLevel, "refused a login: a login limit of this address or of the site is reached", zap.String("limit", string(refused)))
		return h.loginFailed(w, r, failure{code: refused, retry: pending.ReturnTo})
	}
	value, ttl, f := h.openSession(r, tr, pending)
	if f != nil {
		att.end(false, f.outcome().failure)
		f.retry = pending.ReturnTo
		return h.loginFailed(w, r, *f)
	}
	att.end(true, false)
	if old := h.sessionValue(r); old != "" && !pending.Silent {
		// The browser's previous session ends with the new one. A renewal's
		// lives on until its own end (renew_before away at most), so the
		// page's requests in flight while the cookie changes still pass.
		_ = h.store.Delete(r.Context(), old)
	}
	h.setSessionCookie(w, r, value, int(ttl/time.Second))
	countLogin(loginSuccess)
	metrics.duration.Observe(time.Since(pending.Expires.Add(-time.Duration(h.StateTTL))).Seconds())
	return h.answerRelay(w, r, http.StatusOK, relay.Answer{Location: pending.ReturnTo, Resume: resume, State: tr.State})
}

// openSession uses up the login's state, proves the token, and stores the
// session: the cookie's value and the session's lifetime, or why not.
func (h *Handler) openSession(r *http.Request, tr *relay.TokenResponse, pending relay.PendingLogin) (string, time.Duration, *failure) {
	first, err := h.store.ClaimState(r.Context(), tr.State, pending.Expires)
	if err != nil {
		h.logRefusal(zap.ErrorLevel, "session store failed while finishing a login", zap.Error(err))
		return "", 0, &failure{code: codeStoreUnavailable}
	}
	if !first {
		h.logRefusal(zap.WarnLevel, "refused a login", zap.String("reason", "state already used"))
		return "", 0, &failure{code: codeInvalidState}
	}
	if tr.Code != "" {
		var f *failure
		if tr, f = h.exchangeCode(r, tr, pending); f != nil {
			return "", 0, f
		}
	}
	if len(tr.AccessToken) > h.MaxTokenBytes || len(tr.IDToken) > h.MaxTokenBytes || len(tr.RefreshToken) > h.MaxTokenBytes {
		h.logRefusal(zap.WarnLevel, "refused a login: a token is larger than max_token_bytes", zap.Int("access_token_bytes", len(tr.AccessToken)),
			zap.Int("id_token_bytes", len(tr.IDToken)), zap.Int("refresh_token_bytes", len(tr.RefreshToken)))
		return "", 0, &failure{code: codeTokenTooLarge}
	}
	id, f := h.verifyToken(r, tr)
	if f != nil {
		return "", 0, f
	}
	ttl := h.sessionLifetime(tr.ExpiresIn)
	if !id.Expires.IsZero() { // the server's own word on the token's end caps it
		ttl = min(ttl, time.Until(id.Expires)-time.Duration(h.ExpiryLeeway))
	}
	if ttl <= 0 {
		h.logRefusal(zap.WarnLevel, "refused a login", zap.String("reason", "the token expires within expiry_leeway"))
		return "", 0, &failure{code: codeInvalidToken}
	}
	now := time.Now()
	session := tokencache.Session{
		Authorization: "Bearer " + tr.AccessToken,
		Expires:       now.Add(ttl),
		Identity:      packIdentity(id, h.Claims, h.checkedNow()),
		Subject:       h.indexSubject(r, id),
	}
	h.keepForLogout(&session, id, tr.IDToken)
	if tr.RefreshToken != "" {
		// The session outlives its token, refreshed on the server, up to
		// max_session_lifetime.
		h.setTokenTimes(&session, now, tr.ExpiresIn, ttl)
		session.RefreshToken = tr.RefreshToken
		ttl = time.Duration(h.MaxSessionLifetime)
		session.Expires = now.Add(ttl)
	}
	value, err := h.store.Put(r.Context(), session)
	if err != nil {
		h.logRefusal(zap.ErrorLevel, "session store failed while finishing a login", zap.Error(err))
		return "", 0, &failure{code: codeStoreUnavailable}
	}
	if len(value) > maxSessionCookieBytes {
		// The cookie store's sealed session would not fit the browser's
		// cookie budget (and Caddy's header limit): refuse now, not with a
		// 431 on every request until the token expires.
		h.logRefusal(zap.WarnLevel, "refused a login: the sealed session is larger than the cookie store can keep", zap.Int("bytes", len(value)))
		return "", 0, &failure{code: codeTokenTooLarge}
	}
	h.logger.Info("login finished", zap.String("user", id.Subject), zap.Duration("session_lifetime", ttl), zap.String("scope", loggable(tr.Scope)),
		zap.Bool("refresh_token", tr.RefreshToken != ""))
	h.events.emit(eventLogin, map[string]any{"user": id.Subject, "store": h.storeType, "trust": h.trustMode()})
	return value, ttl, nil
}

// indexSubject is whom a new session counts against in the per-user
// limit: the user, or, for a session without one (validate none), its
// address, so made-up logins from one address cannot push everyone else
// out. (A NUL keeps it apart from any real subject.)
func (h *Handler) indexSubject(r *http.Request, id authserver.Identity) string {
	if id.Subject != "" {
		return id.Subject
	}
	return "\x00address " + addressGroup(clientAddress(r))
}

// verifyToken proves the token the server's (for this client, where the
// mode can tell) and checks the allow rules. The failure, if any, says
// what the person is shown.
func (h *Handler) verifyToken(r *http.Request, tr *relay.TokenResponse) (authserver.Identity, *failure) {
	resp := authserver.Response{AccessToken: tr.AccessToken, IDToken: tr.IDToken, FromTokenEndpoint: h.codeFlow()}
	if h.OpenID != "" {
		resp.Nonces = h.nonces(tr.State)
	}
	id, err := h.verifier.Verify(r.Context(), resp)
	if err != nil {
		if errors.Is(err, authserver.ErrUnavailable) {
			h.logRefusal(zap.ErrorLevel, "cannot verify a login: the authorization server is unavailable", zap.Error(err))
			return id, &failure{code: codeServerUnavailable}
		}
		h.logRefusal(zap.WarnLevel, "refused a login: the token is not trusted", zap.Error(err))
		return id, &failure{code: codeInvalidToken}
	}
	if len(id.Subject) > maxSubjectBytes {
		h.logRefusal(zap.WarnLevel, "refused a login: the token's subject is too long", zap.Int("bytes", len(id.Subject)))
		return id, &failure{code: codeInvalidToken}
	}
	if f := h.loginUserinfo(r.Context(), tr.AccessToken, &id); f != nil {
		return id, f
	}
	if claim := h.controlCharacterIn(id); claim != "" {
		h.logRefusal(zap.WarnLevel, "refused a login: a claim holds a control character", zap.String("claim", loggable(claim)))
		return id, &failure{code: codeInvalidToken}
	}
	if rule := h.refusedBy(id); rule != nil {
		h.logRefusal(zap.InfoLevel, "refused a login: the allow rules do not admit the user", zap.String("user", id.Subject), zap.Stringer("rule", rule))
		h.events.emit(eventForbidden, map[string]any{"user": id.Subject, "rule": rule.String()})
		return id, &failure{code: codeForbidden, description: displayName(id), verified: true}
	}
	return id, nil
}

// tokenLifetime is how long a token lasting expiresIn seconds lives (0:
// the server did not say, default_expires_in).
func (h *Handler) tokenLifetime(expiresIn int64) time.Duration {
	if expiresIn > 0 {
		return time.Duration(expiresIn) * time.Second
	}
	return time.Duration(h.DefaultExpiresIn)
}

// sessionLifetime is how long a session for a token lasting expiresIn
// seconds (0: the server did not say) may live: it ends expiry_leeway
// before the token, but never before half-way through the token's life
// (a leeway longer than that would leave no session), and it never lasts
// longer than max_session_lifetime.
func (h *Handler) sessionLifetime(expiresIn int64) time.Duration {
	lifetime := h.tokenLifetime(expiresIn)
	return min(max(lifetime-time.Duration(h.ExpiryLeeway), lifetime/2), time.Duration(h.MaxSessionLifetime))
}
