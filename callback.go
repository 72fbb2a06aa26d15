// The callback: the relay page, the relay script's POST (where it may come
// from, its bounded body), the code flow's query, the server's error
// answers, and the relay's answer. Finishing the login is in finish.go.

package implicitgrant

import (
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/relay"
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
	return readForm(w, r, relay.MaxFragmentBytes)
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
