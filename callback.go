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

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// ResponseMode is how the authorization server sends its response.
type ResponseMode string

// The response modes.
const (
	ResponseModeFragment ResponseMode = "fragment"
	ResponseModeFormPost ResponseMode = "form_post"
)

// serveCallback answers a GET of the callback. A success carries the token
// in the fragment, which only the relay page's script can read; an error
// may come in the query, straight from the server (as Spotify sends it)
// or from the relay script after a failed POST.
func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if h.codeFlow() && h.ResponseMode != ResponseModeFormPost && (q.Has("code") || q.Has("state")) {
		if limited, err := h.addressLimited(w, r); limited {
			return err
		}
		return h.finishCodeLogin(w, r, q)
	}
	if ae, isErr := relay.ParseAuthError(q); isErr {
		f := failure{code: code(ae.Code), description: ae.Description, retry: relay.SafeReturnPath(q.Get("return_to"))}
		if ae.State == "" {
			// The relay's own error page: the server's words, if any, are
			// in the note the relay POST left for this browser.
			f.description, f.verified = h.errorNotes.Take(w, r, ae.Code)
			return h.fail(w, r, f)
		}
		return h.serverError(w, r, ae)
	}
	if q.Has("access_token") {
		// A token in the query has already been written to access logs and
		// history on the way here; refuse it rather than make it a session.
		h.logRefusal(zap.WarnLevel, "refused an access token sent in the callback's query string; the authorization server must use the fragment")
		return h.loginFailed(w, r, failure{code: codeInvalidResponse})
	}
	if h.ResponseMode == ResponseModeFormPost {
		// The server was asked to POST its answer: a token in this URL's
		// fragment is not taken (no relay page posts it back).
		h.logRefusal(zap.WarnLevel, "refused a callback without a form post: response_mode is form_post")
		return h.loginFailed(w, r, failure{code: codeInvalidResponse})
	}
	if h.codeFlow() { // no code, no state: not an authorization response
		h.logRefusal(zap.WarnLevel, "refused a callback without a code")
		return h.loginFailed(w, r, failure{code: codeInvalidResponse})
	}
	return h.pages.ServePage(w, inFrame(r))
}

// serverError answers an error response of the server, in whichever way
// it came (the query, the fragment through the relay, a form post). A
// silent renewal answered "the user is needed" starts a normal login.
func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, ae *relay.AuthError) error {
	p, verified := h.endWithError(w, r, ae.State)
	if verified && p.Silent && interactionNeeded[ae.Code] {
		h.logger.Debug("a silent renewal needs the user: starting a normal login", zap.String("error", ae.Code))
		return h.answerRelay(w, r, http.StatusOK, relay.Answer{Location: h.interactiveLoginURL(p.ReturnTo), Relogin: true, State: ae.State})
	}
	h.logRefusal(zap.InfoLevel, "authorization server returned an error", zap.String("error", ae.Code))
	f := failure{code: code(ae.Code), description: ae.Description, verified: verified, retry: p.ReturnTo}
	if verified && f.outcome().failure { // this browser's own login: a made-up link is not
		h.limits.countFailure(clientAddress(r), time.Now())
	}
	return h.loginFailed(w, r, f)
}

// serveRelayPost takes what the relay script posted: the callback's
// fragment, as the authorization server wrote it.
func (h *Handler) serveRelayPost(w http.ResponseWriter, r *http.Request) error {
	if limited, err := h.addressLimited(w, r); limited {
		return err
	}
	if h.codeFlow() && h.ResponseMode != ResponseModeFormPost {
		// The code comes in the query; no relay page posts anything.
		h.logRefusal(zap.WarnLevel, "refused a post to the callback: response_type code answers in the query")
		return h.loginFailed(w, r, failure{code: codeCrossOrigin})
	}
	body, refusal := h.readRelayBody(w, r)
	if refusal != "" {
		return h.loginFailed(w, r, failure{code: refusal})
	}
	if h.codeFlow() { // form_post: the code is in the server's post
		vals, err := url.ParseQuery(body)
		if err != nil {
			h.logRefusal(zap.WarnLevel, "refused an authorization response: not form-encoded")
			return h.loginFailed(w, r, failure{code: codeInvalidResponse})
		}
		return h.finishCodeLogin(w, r, vals)
	}
	tr, ae, err := relay.ParseFragment(body)
	switch {
	case ae != nil:
		return h.serverError(w, r, ae)
	case err != nil:
		h.logRefusal(zap.WarnLevel, "refused an authorization response", zap.Error(err))
		if vals, perr := url.ParseQuery(body); perr == nil && len(vals["state"]) == 1 {
			h.states.Take(w, r, vals.Get("state")) // the attempt is over either way
		}
		return h.loginFailed(w, r, failure{code: codeInvalidResponse})
	}
	return h.finishLogin(w, r, tr)
}

// addressLimited answers an authorization response from an address whose
// login limit is used up, before anything of it is read.
func (h *Handler) addressLimited(w http.ResponseWriter, r *http.Request) (bool, error) {
	c := h.limits.refusal(clientAddress(r), time.Now())
	if c == "" {
		return false, nil
	}
	h.logRefusal(zap.WarnLevel, "refused an authorization response: this address's login limit is used up", zap.String("client", loggable(clientAddress(r))), zap.String("limit", string(c)))
	return true, h.loginFailed(w, r, failure{code: c})
}

// endWithError ends the login whose state an error answer carried: its
// cookie goes, and the state is recorded as used, so a copy of the cookie
// cannot finish it later. verified says the state was this browser's.
func (h *Handler) endWithError(w http.ResponseWriter, r *http.Request, state string) (p relay.PendingLogin, verified bool) {
	p, err := h.states.Take(w, r, state)
	if err != nil {
		return relay.PendingLogin{ReturnTo: "/"}, false
	}
	if _, err := h.store.ClaimState(r.Context(), state, p.Expires); err != nil {
		h.logRefusal(zap.ErrorLevel, "session store failed while ending a login", zap.Error(err))
	}
	return p, true
}

// readRelayBody applies the relay POST's checks on where it comes from and
// what it carries, and reads its bounded body.
func (h *Handler) readRelayBody(w http.ResponseWriter, r *http.Request) (string, code) {
	if h.ResponseMode == ResponseModeFormPost && !h.postedByServer(r) {
		h.logRefusal(zap.WarnLevel, "refused a form post that is not the authorization server's page navigating here", zap.String("origin", loggable(r.Header.Get("Origin"))),
			zap.String("sec_fetch_mode", loggable(r.Header.Get("Sec-Fetch-Mode"))), zap.String("sec_fetch_dest", loggable(r.Header.Get("Sec-Fetch-Dest"))))
		return "", codeCrossOrigin
	}
	if h.ResponseMode == ResponseModeFragment && !h.sameOrigin(r) {
		h.logRefusal(zap.WarnLevel, "refused a relay post from another origin", zap.String("origin", loggable(r.Header.Get("Origin"))))
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

// answerRelay tells the relay script where to go next: as JSON, status
// and all, to its own POST (fragment mode); on the relay page itself when
// the response came another way (a form_post, an error in the query).
func (h *Handler) answerRelay(w http.ResponseWriter, r *http.Request, status int, a relay.Answer) error {
	if r.Method == http.MethodPost && h.ResponseMode == ResponseModeFragment {
		a.State = "" // the script has it from the fragment
		return writeJSON(w, status, a)
	}
	return h.pages.ServeLanding(w, a, inFrame(r))
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
