// Answers for what went wrong. One table says, for each outcome, its status,
// its metric, whether the authorization server's own words may be shown,
// and what a person reads; one function, fail, decides whether that becomes
// the relay script's JSON, a script's JSON, the site's handle_errors routes
// or the module's own page.

package implicitgrant

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/implicitgrant/caddy-implicit-grant/relay"
)

// ErrorPages says who renders error answers.
type ErrorPages string

// Who renders error answers.
const (
	ErrorPagesBuiltin      ErrorPages = "builtin"
	ErrorPagesHandleErrors ErrorPages = "handle_errors"
)

// code names an outcome: the authorization server's error codes (RFC 6749
// §4.2.2.1) and the module's own.
type code string

const (
	codeUnauthenticated   code = "unauthenticated"
	codeAccessDenied      code = "access_denied"
	codeInvalidState      code = "invalid_state"
	codeInvalidResponse   code = "invalid_response"
	codeStoreUnavailable  code = "store_unavailable"
	codeCrossOrigin       code = "cross_origin"
	codeUnsupportedMedia  code = "unsupported_media_type"
	codeTooLarge          code = "too_large"
	codeUnreadable        code = "unreadable_request"
	codeInvalidToken      code = "invalid_token"
	codeForbidden         code = "forbidden"
	codeServerUnavailable code = "server_unavailable"
	codeTokenTooLarge     code = "token_too_large"
	codeBusy              code = "busy"
	codeTooManyFailures   code = "too_many_failures"
	codeTooManyLogins     code = "too_many_logins"
	codeInvalidGrant      code = "invalid_grant"
	codeHeaderRequired    code = "header_required"
	// codeUnknownServerError stands for a server's code we do not know
	// when we cannot tell that it was really the server's.
	codeUnknownServerError code = "error"
)

// Texts several outcomes share.
const (
	serverSaysSetupIsWrong = "The authorization server refused the sign-in request because of how this site is set up. Trying again will probably not help; tell the site's administrator."
	serverHadAProblem      = "The authorization server had a problem and could not complete the sign-in. Wait a moment and try again."
	serverReportedAnError  = "The authorization server reported an error and the sign-in did not complete. Nothing was stored."
	relayRefused           = "This sign-in request did not come from this site's own sign-in page, so it was refused. Nothing was stored."
)

// outcome is what one code means for the answer.
type outcome struct {
	status int
	// metric is the logins_total outcome when a login ends this way.
	metric string
	// serverWords: the server's error_description may be shown, and then
	// only when the state proved the login was this browser's.
	serverWords bool
	// refused: the request was turned away before it was a login attempt
	// (not the relay page's own post): the relay script is told to go
	// home, not to an error page.
	refused bool
	// failure: a login of this browser (its state checked) that ends so
	// counts toward its address's failure limit. Outcomes nobody chose (a
	// server or store down, a limit) and what comes before the state (a
	// stranger's page can make a browser send that) do not.
	failure     bool
	title, text string
}

var outcomes = map[code]outcome{
	codeUnauthenticated: {status: http.StatusUnauthorized, title: "Sign-in required",
		text: "This site needs you to sign in before it shows this page."},
	codeAccessDenied: {status: http.StatusForbidden, metric: loginDenied, serverWords: true, failure: true, title: "Sign-in was declined",
		text: "The authorization server did not grant access: the request was declined at its sign-in or consent screen. Nothing was stored. If that was a mistake, try again."},
	codeInvalidState: {status: http.StatusBadRequest, metric: loginInvalidState, failure: true, title: "Sign-in failed",
		text: "This sign-in could not be matched to one started in this browser. It may have taken too long, been used already, or been started in another browser or tab that was closed. Nothing was stored; starting again fixes it."},
	codeInvalidResponse: {status: http.StatusBadRequest, metric: loginInvalidResponse, failure: true, title: "Sign-in failed",
		text: "The authorization server's answer was incomplete or malformed, so it was not accepted. Nothing was stored. If this keeps happening, tell the site's administrator."},
	codeStoreUnavailable: {status: http.StatusServiceUnavailable, metric: loginStoreError, title: "Sign-in is unavailable",
		text: "The session store cannot be reached right now, so nobody can be signed in. Nothing was changed. Try again in a moment."},
	codeInvalidToken: {status: http.StatusUnauthorized, metric: loginInvalidToken, failure: true, title: "Sign-in failed",
		text: "The answer from the authorization server could not be trusted: the token it carried could not be proved to be the server's, for this site, still valid. Nothing was stored. Try again; if this keeps happening, tell the site's administrator."},
	codeForbidden: {status: http.StatusForbidden, metric: loginForbidden, serverWords: true, failure: true, title: "This site is not open to you",
		text: "You signed in, but this site's rules do not admit your account. Nothing was stored. If you should have access, ask the site's administrator, or sign in with another account."},
	codeServerUnavailable: {status: http.StatusServiceUnavailable, metric: loginServerUnavailable, title: "Sign-in is unavailable",
		text: "The authorization server cannot be reached right now to check the sign-in, so nobody can be signed in. Nothing was stored. Try again in a moment."},
	codeTokenTooLarge: {status: http.StatusRequestEntityTooLarge, metric: loginInvalidResponse, failure: true, title: "Sign-in failed",
		text: "The authorization server issued a token larger than this site accepts, so nothing was stored. Tell the site's administrator (max_token_bytes; with the cookie store, a token this large needs the memory or redis store)."},
	codeBusy: {status: http.StatusTooManyRequests, metric: loginThrottled, title: "Sign-in is busy",
		text: "Too many sign-ins are being checked with the authorization server right now. Nothing was stored. Try again in a moment."},
	codeTooManyFailures: {status: http.StatusTooManyRequests, metric: loginThrottled, title: "Too many failed sign-ins",
		text: "Too many sign-ins from your network failed in the last few minutes, so this one was not tried. Nothing was stored. Wait a few minutes and try again."},
	codeTooManyLogins: {status: http.StatusTooManyRequests, metric: loginThrottled, title: "Too many sign-ins",
		text: "More sign-ins came from your network in the last few minutes than this site accepts, so this one was not tried. Nothing was stored. Wait a few minutes and try again."},
	codeInvalidGrant: {status: http.StatusBadRequest, metric: loginInvalidState, failure: true, title: "Sign-in failed",
		text: "The authorization server would not accept this sign-in's code: it was used already, it expired, or it belongs to a sign-in this browser did not start. Nothing was stored; starting again fixes it."},
	codeHeaderRequired: {status: http.StatusForbidden, title: "Request refused",
		text: "This request did not carry the header this site requires of scripts, so it was refused: it may have come from another site. Nothing was changed."},
	codeCrossOrigin: {status: http.StatusForbidden, metric: loginRefused, refused: true, title: "Sign-in refused",
		text: relayRefused},
	codeUnsupportedMedia: {status: http.StatusUnsupportedMediaType, metric: loginRefused, refused: true, title: "Sign-in refused",
		text: relayRefused},
	codeTooLarge: {status: http.StatusRequestEntityTooLarge, metric: loginRefused, refused: true, title: "Sign-in refused",
		text: relayRefused},
	codeUnreadable: {status: http.StatusBadRequest, metric: loginRefused, refused: true, title: "Sign-in refused",
		text: relayRefused},

	"server_error": {status: http.StatusBadGateway, metric: loginServerError, serverWords: true, failure: true, title: "Sign-in failed",
		text: serverHadAProblem},
	"temporarily_unavailable": {status: http.StatusBadGateway, metric: loginServerError, serverWords: true, failure: true, title: "Sign-in failed",
		text: serverHadAProblem},
	"invalid_request": {status: http.StatusBadRequest, metric: loginServerError, serverWords: true, failure: true, title: "Sign-in failed",
		text: serverSaysSetupIsWrong},
	"unauthorized_client": {status: http.StatusBadRequest, metric: loginServerError, serverWords: true, failure: true, title: "Sign-in failed",
		text: serverSaysSetupIsWrong},
	"unsupported_response_type": {status: http.StatusBadRequest, metric: loginServerError, serverWords: true, failure: true, title: "Sign-in failed",
		text: serverSaysSetupIsWrong},
	"invalid_client": {status: http.StatusBadRequest, metric: loginServerError, serverWords: true, failure: true, title: "Sign-in failed",
		text: serverSaysSetupIsWrong},
	"unsupported_grant_type": {status: http.StatusBadRequest, metric: loginServerError, serverWords: true, failure: true, title: "Sign-in failed",
		text: serverSaysSetupIsWrong},
	"invalid_scope": {status: http.StatusBadRequest, metric: loginServerError, serverWords: true, failure: true, title: "Sign-in failed",
		text: serverSaysSetupIsWrong},
	codeUnknownServerError: {status: http.StatusBadRequest, metric: loginServerError, serverWords: true, failure: true, title: "Sign-in failed",
		text: serverReportedAnError},
}

// failure is one request that did not get what it asked for.
type failure struct {
	code code
	// description is the authorization server's error_description.
	description string
	// verified: the answer carried the state of a login this browser
	// started, so the server's code and words are really the server's.
	verified bool
	// retry is the same-origin path "Try again" leads to.
	retry string
}

// fail answers f: to the relay script, JSON naming the page to show; with
// error_pages handle_errors, the site's routes (placeholders set); to a
// script, JSON; to a person, the module's page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, f failure) error {
	o, known := outcomes[f.code]
	if !known {
		o = outcomes[codeUnknownServerError]
		if !f.verified { // a stranger's link could say anything here
			f.code = codeUnknownServerError
		}
	}
	description := ""
	if o.serverWords && f.verified {
		description = f.description
	}
	if f.retry == "" {
		f.retry = "/"
	}
	loginURL := h.LoginPath + "?return_to=" + url.QueryEscape(f.retry)
	if f.code == codeUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="implicit_grant"`)
	}

	atCallback := r.Method == http.MethodPost && publicURL(r).Path == h.callbackPath
	formPost := atCallback && h.ResponseMode == ResponseModeFormPost
	switch {
	case formPost && !o.refused && inFrame(r):
		// session.js's frame: the relay script there tells the page.
		return h.answerRelay(w, r, o.status, relay.Answer{Error: string(f.code), Location: h.errorPage(f.code, f.retry)})

	case formPost && !o.refused:
		// The browser came from the server's page: on to the error page,
		// as the relay script goes after a failed post.
		if description != "" {
			h.errorNotes.Set(w, string(f.code), description)
		}
		http.Redirect(w, r, h.errorPage(f.code, f.retry), http.StatusSeeOther)
		return nil

	case atCallback && !formPost:
		next := "/"
		if !o.refused {
			if description != "" {
				h.errorNotes.Set(w, string(f.code), description)
			}
			next = h.errorPage(f.code, f.retry)
		}
		return h.answerRelay(w, r, o.status, relay.Answer{Error: string(f.code), Location: next})

	case h.ErrorPages == ErrorPagesHandleErrors:
		if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			repl.Set("http.implicit_grant.error", string(f.code))
			repl.Set("http.implicit_grant.error_description", description)
			repl.Set("http.implicit_grant.message", o.text)
			// Same-origin paths with nothing that could close an HTML
			// attribute: safe in <a href="…"> as a route writes it.
			repl.Set("http.implicit_grant.retry_url", attributeSafe(f.retry))
			repl.Set("http.implicit_grant.login_url", attributeSafe(loginURL))
		}
		return caddyhttp.Error(o.status, fmt.Errorf("implicit_grant: %s", f.code))

	case !isPageLoad(r) && !formPost:
		if description == "" {
			description = o.text
		}
		return writeJSON(w, o.status, map[string]string{
			"error":             string(f.code),
			"error_description": description,
			"login_url":         loginURL,
		})
	}
	m := relay.Message{Title: o.title, Text: o.text, Code: string(f.code), Description: description, LinkHref: f.retry, LinkText: "Try again"}
	switch f.code {
	case codeUnauthenticated:
		m.Code, m.LinkHref, m.LinkText = "", loginURL, "Sign in"
	case codeStoreUnavailable, codeServerUnavailable:
		m.Code = ""
	case codeForbidden:
		m.Code, m.Description, m.SignedInAs = "", "", description
		m.LinkHref, m.LinkText = h.LogoutPath, "Sign out of this site"
	}
	kind := relay.ErrorPage
	if f.code == codeForbidden {
		kind = relay.ForbiddenPage
	}
	return h.pages.ServeMessage(w, o.status, kind, m)
}

// loginFailed counts a login that ended in f in the metrics and events,
// then answers it. (The per-address limits count in limits.go.)
func (h *Handler) loginFailed(w http.ResponseWriter, r *http.Request, f failure) error {
	o, known := outcomes[f.code]
	if !known {
		o = outcomes[codeUnknownServerError]
	}
	countLogin(o.metric)
	h.events.emit(eventLoginFailed, map[string]any{"outcome": string(f.code)})
	if o.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "5")
	}
	return h.fail(w, r, f)
}

// errorPage is the callback URL that shows the page for a failed login.
// It carries no state and no server text: the attempt is over, and the
// server's words travel in the error note.
func (h *Handler) errorPage(c code, retry string) string {
	q := url.Values{"error": {string(c)}}
	if retry != "/" {
		q.Set("return_to", retry)
	}
	return h.callbackPath + "?" + q.Encode()
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// outcome is what f's code means (an unknown server code: a generic one).
func (f failure) outcome() outcome {
	if o, known := outcomes[f.code]; known {
		return o
	}
	return outcomes[codeUnknownServerError]
}

// attributeSafe percent-encodes what could end an HTML attribute or start
// markup in a same-origin path (SafeReturnPath let it through: browsers
// read %22 and " in a URL alike), so a placeholder is safe to write into
// a page unescaped.
var attributeSafe = strings.NewReplacer(`"`, "%22", "'", "%27", "<", "%3C", ">", "%3E", "`", "%60", " ", "%20").Replace
