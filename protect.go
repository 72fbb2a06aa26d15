// The hot path: every request that is not for one of the handler's own
// paths; what a request without a session gets; and how a person's page
// load is told from a script's call.

package implicitgrant

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/cookieheader"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
)

// serveProtected is the hot path: every proxied request passes here.
func (h *Handler) serveProtected(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if value := h.sessionValue(r); value != "" {
		s, ok, err := h.store.Get(r.Context(), value)
		if err != nil {
			// Fail closed: without the store nobody can be trusted.
			metrics.storeError.Inc()
			h.logRefusal(zap.ErrorLevel, "session store failed; refusing the request", zap.Error(err))
			return h.fail(w, r, failure{code: codeStoreUnavailable, retry: relay.SafeReturnPath(publicURL(r).RequestURI())})
		}
		if ok {
			ok, err = h.revalidated(r.Context(), value, s)
			if err != nil {
				metrics.serverUnavailable.Inc()
				h.logRefusal(zap.ErrorLevel, "cannot revalidate a session's token: the authorization server is unavailable; refusing the request", zap.Error(err))
				return h.fail(w, r, failure{code: codeServerUnavailable, retry: relay.SafeReturnPath(publicURL(r).RequestURI())})
			}
		}
		if ok && refreshDue(&s) {
			var ended, answered bool
			if s, ended, answered, err = h.serveRefresh(w, r, value, s); answered {
				return err
			}
			ok = !ended
		}
		if ok && h.lacksRequiredHeader(r) {
			h.logRefusal(zap.InfoLevel, "refused a script's request without require_header's header", zap.String("method", loggable(r.Method)))
			return h.fail(w, r, failure{code: codeHeaderRequired})
		}
		if ok && h.renewDue(r, s) {
			return h.renew(w, r)
		}
		if ok {
			metrics.authenticated.Inc()
			cookieheader.Strip(r.Header, h.CookieName)
			if v := r.Header["Authorization"]; len(v) == 1 {
				v[0] = s.Authorization // replace the client's own in place: no allocation
			} else {
				r.Header["Authorization"] = []string{s.Authorization}
			}
			if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
				repl.Map(placeholdersFor(s.Identity, &h.Claims))
			}
			return next.ServeHTTP(w, r)
		}
	}
	if h.bearers != nil {
		if token, ok := bearerOf(r); ok { // a script's or a service's own token
			return h.serveBearer(w, r, next, token)
		}
	}
	if !h.redirectsToLogin(r) {
		metrics.unauthenticated.Inc()
		return h.fail(w, r, failure{code: codeUnauthenticated, retry: h.returnPathFor(r)})
	}
	metrics.loginRedirect.Inc()
	return h.redirectToLogin(w, publicURL(r).RequestURI())
}
