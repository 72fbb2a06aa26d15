// Starting a login. A page load without a session is sent to the login
// path (a plain 302 with nothing secret in it, so it survives any handler
// that buffers responses and any access log); the login path answers with
// the start page, whose body alone carries the state on to the
// authorization server. Every client gets the same: no request header
// decides who gets the start page (WebKit sends Upgrade-Insecure-Requests
// only over plain http, so choosing by it cost Safari users the URL's
// fragment on https).

package implicitgrant

import (
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// redirectToLogin sends a page load to the login path, to come back to
// returnTo. Browsers carry the URL's fragment across the redirect.
func (h *Handler) redirectToLogin(w http.ResponseWriter, returnTo string) error {
	location := h.LoginPath + "?return_to=" + url.QueryEscape(relay.SafeReturnPath(returnTo))
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Location", location)
	w.WriteHeader(http.StatusFound)
	_, err := io.WriteString(w, `<a href="`+html.EscapeString(location)+`">Sign in</a>`)
	return err
}

// serveLogin starts a login, or, for a browser that already has a session,
// goes straight back to return_to. With interactive=1 (where a renewal
// the server could not answer without the user sends the browser), it
// starts a normal login whatever the session; with silent=1 (session.js's
// frame), a renewal with prompt=none.
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	returnTo := relay.SafeReturnPath(q.Get("return_to"))
	if q.Get("silent") == "1" {
		return h.startLogin(w, r, returnTo, true)
	}
	if value := h.sessionValue(r); value != "" && q.Get("interactive") != "1" {
		if _, ok, err := h.store.Get(r.Context(), value); err == nil && ok {
			http.Redirect(w, r, returnTo, http.StatusFound)
			return nil
		}
	}
	return h.startLogin(w, r, returnTo, false)
}

// interactiveLoginURL is where a silent renewal the server answered with
// "the user is needed" sends the browser: a normal login, at once.
func (h *Handler) interactiveLoginURL(returnTo string) string {
	return h.LoginPath + "?interactive=1&return_to=" + url.QueryEscape(relay.SafeReturnPath(returnTo))
}

// startLogin binds a fresh state to this browser by its own cookie and
// serves the start page, which keeps the URL's fragment for the relay page
// and goes on to the authorization server. The state is in the page's
// body: access logs record headers, never bodies.
// silent asks the server for no dialog (a renewal, with renew_prompt none).
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request, returnTo string, silent bool) error {
	prefix, err := h.authorizeRequest(r.Context())
	if err != nil {
		h.logRefusal(zap.ErrorLevel, "cannot start a login: the authorization server's discovery document is unavailable", zap.Error(err))
		return h.fail(w, r, failure{code: codeServerUnavailable, retry: returnTo})
	}
	state := tokencache.NewID()
	h.states.Issue(w, r, state, returnTo, silent)
	if c := h.logger.Check(zap.DebugLevel, "login started"); c != nil {
		c.Write(zap.String("path", r.URL.Path))
	}
	location := prefix + state
	if h.OpenID != "" {
		location += "&nonce=" + h.nonce(state)
	}
	if h.codeFlow() {
		location += h.pkceParams(state)
	}
	if silent {
		location += "&prompt=none"
	}
	return h.pages.ServeStart(w, location, returnTo, h.PreserveFragment == nil || *h.PreserveFragment, silent && inFrame(r))
}

// authorizeRequest is the authorization request up to the state's value:
// built once from authorize_url, or, with openid and no authorize_url,
// from the discovered endpoint (discovery is cached; this costs a lookup).
func (h *Handler) authorizeRequest(ctx context.Context) (string, error) {
	if h.authorizePrefix != "" {
		return h.authorizePrefix, nil
	}
	endpoint, err := h.openid.AuthorizationEndpoint(ctx)
	if err != nil {
		return "", err
	}
	if err := authserver.CheckAuthorizeURL(endpoint); err != nil {
		return "", fmt.Errorf("discovered authorization_endpoint: %w", err)
	}
	return h.authorization.Prefix(endpoint), nil
}

// nonce binds an ID token to the login whose state it is: derived from the
// state, so nothing more is stored, and not guessable without the secret.
func (h *Handler) nonce(state string) string {
	return nonceWith(h.nonceKeys[0], state)
}

// nonces are the nonces a login with state may carry: one per secret in
// use, since it may have started before the current one.
func (h *Handler) nonces(state string) []string {
	out := make([]string, len(h.nonceKeys))
	for i, key := range h.nonceKeys {
		out[i] = nonceWith(key, state)
	}
	return out
}

func nonceWith(key []byte, state string) string {
	return base64.RawURLEncoding.EncodeToString(deriveKey(key, state)[:18])
}
