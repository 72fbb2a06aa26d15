// Starting a login: the start page or the 302 to the authorization server.

package implicitgrant

import (
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"net/http"

	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/relay"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// startLogin sends the browser to the authorization server with a fresh
// state bound to this browser by its own cookie.
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request, returnTo string) error {
	prefix, err := h.authorizeRequest(r.Context())
	if err != nil {
		h.logger.Error("cannot start a login: the authorization server's discovery document is unavailable", zap.Error(err))
		return h.fail(w, r, failure{code: codeServerUnavailable, retry: relay.SafeReturnPath(returnTo)})
	}
	state := tokencache.NewID()
	h.states.Issue(w, r, state, relay.SafeReturnPath(returnTo))
	if c := h.logger.Check(zap.DebugLevel, "login started"); c != nil {
		c.Write(zap.String("path", r.URL.Path))
	}
	location := prefix + state
	if h.OpenID != "" {
		location += "&nonce=" + h.nonce(state)
	}
	if h.getsStartPage(r) {
		return relay.ServeStart(w, location)
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Location", location)
	w.WriteHeader(http.StatusFound)
	_, _ = io.WriteString(w, `<a href="`+html.EscapeString(location)+`">Sign in</a>`)
	// The Location carries the state, and Caddy's access log records the
	// response header map once the handler returns. The headers are on the
	// wire by now (net/http snapshots them), so dropping Location from the
	// map keeps the state out of the logs without changing the response.
	hdr.Del("Location")
	return nil
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
	if err := checkAuthorizeURL(endpoint); err != nil {
		return "", fmt.Errorf("discovered authorization_endpoint: %w", err)
	}
	return h.authorizePrefixFor(endpoint), nil
}

// nonce binds an ID token to the login whose state it is: derived from the
// state, so nothing more is stored, and not guessable without the secret.
func (h *Handler) nonce(state string) string {
	return base64.RawURLEncoding.EncodeToString(deriveKey(h.nonceKey, state)[:18])
}

// getsStartPage tells whether this navigation gets the start page, which
// keeps the URL's fragment (a 302 would lose it): only real browsers' top-level page loads, which
// Chrome, Firefox and Safari mark with both Sec-Fetch-Dest: document and
// Upgrade-Insecure-Requests: 1. Every other client keeps its plain 302.
func (h *Handler) getsStartPage(r *http.Request) bool {
	return (h.PreserveFragment == nil || *h.PreserveFragment) &&
		r.Method == http.MethodGet &&
		r.Header.Get("Sec-Fetch-Dest") == "document" &&
		r.Header.Get("Sec-Fetch-Mode") == "navigate" &&
		r.Header.Get("Upgrade-Insecure-Requests") == "1"
}

// serveLogin starts a login on request (for pages whose API calls got 401).
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) error {
	returnTo := relay.SafeReturnPath(r.URL.Query().Get("return_to"))
	if value := h.sessionValue(r); value != "" {
		if _, ok, err := h.store.Get(r.Context(), value); err == nil && ok {
			http.Redirect(w, r, returnTo, http.StatusFound)
			return nil
		}
	}
	return h.startLogin(w, r, returnTo)
}
