// The admin API: counting sessions and ending them, on Caddy's admin
// endpoint (and behind its access controls: listen address, origins,
// remote admin's client certificates), as Caddy's own
// /reverse_proxy/upstreams is.
//
//	GET    /implicit_grant/sessions              how many sessions are live, per site and store
//	DELETE /implicit_grant/sessions?user=<sub>   end every session of that user
//	DELETE /implicit_grant/sessions              end every session

package implicitgrant

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/printable"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

func init() { caddy.RegisterModule(adminAPI{}) }

// adminAPI is the admin.api.implicit_grant module. Caddy loads every
// admin.api module by itself: there is nothing to configure.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.implicit_grant", New: func() caddy.Module { return new(adminAPI) }}
}

// Routes implements caddy.AdminRouter.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/implicit_grant/sessions", Handler: caddy.AdminHandlerFunc(serveSessionsAPI)}}
}

// running holds the handlers of the running configs (a reload briefly
// has two generations; they share their stores).
var running = struct {
	sync.Mutex
	handlers map[*Handler]struct{}
}{handlers: map[*Handler]struct{}{}}

func register(h *Handler) {
	running.Lock()
	running.handlers[h] = struct{}{}
	running.Unlock()
}

func unregister(h *Handler) {
	running.Lock()
	delete(running.handlers, h)
	running.Unlock()
}

// siteStores is one handler per store in use: several handlers (routes,
// config generations) share a store, and each store is counted and
// cleared once. Ordered by site, for a stable answer.
func siteStores() []*Handler {
	running.Lock()
	defer running.Unlock()
	seen := map[tokencache.Store]bool{}
	var hs []*Handler
	for h := range running.handlers {
		if !seen[h.store] {
			seen[h.store] = true
			hs = append(hs, h)
		}
	}
	slices.SortFunc(hs, func(a, b *Handler) int { return strings.Compare(a.storePoolKey, b.storePoolKey) })
	return hs
}

// siteSessions is one store's line in an answer.
type siteSessions struct {
	RedirectURI string   `json:"redirect_uri"`
	ClientID    string   `json:"client_id"`
	Allow       []string `json:"allow,omitempty"` // the handler's rules: what tells two handlers of one client apart
	Store       string   `json:"store"`
	// GET: live sessions (null for the cookie store: they are in browsers)
	// and whether the count is exact.
	Sessions *int `json:"sessions,omitempty"`
	Exact    bool `json:"exact,omitempty"`
	// DELETE: sessions ended (null for the cookie store), and for the
	// cookie store the time before which its sessions are refused.
	Ended         *int   `json:"ended,omitempty"`
	Revoked       *int   `json:"revoked,omitempty"` // DELETE ?user=: refresh tokens revoked at the server
	RevokedBefore string `json:"revoked_before,omitempty"`
	Note          string `json:"note,omitempty"`
}

const cookieStoreNote = "the cookie store's sessions are sealed in browsers' cookies: they cannot be counted; revocations are recorded in Caddy's storage and refused on every instance that shares it"

func serveSessionsAPI(w http.ResponseWriter, r *http.Request) error {
	var user string
	switch r.Method {
	case http.MethodGet:
		if r.URL.RawQuery != "" {
			return apiError(http.StatusBadRequest, "GET takes no query")
		}
	case http.MethodDelete:
		q := r.URL.Query()
		// A misspelt parameter must not end everyone's sessions.
		for name := range q {
			if name != "user" {
				return apiError(http.StatusBadRequest, "unknown parameter %q: the only one is user=<subject>", name)
			}
		}
		if _, ok := q["user"]; ok {
			if len(q["user"]) != 1 || q.Get("user") == "" || len(q.Get("user")) > maxSubjectBytes || printable.HasControl(q.Get("user")) {
				return apiError(http.StatusBadRequest, "user: expected one subject of 1 to %d printable bytes", maxSubjectBytes)
			}
			user = q.Get("user")
		} else if r.URL.RawQuery != "" {
			return apiError(http.StatusBadRequest, "unknown query: the only parameter is user=<subject>")
		}
	default:
		return apiError(http.StatusMethodNotAllowed, "method %s not allowed: GET or DELETE", r.Method)
	}

	now := time.Now()
	var sites []siteSessions
	for _, h := range siteStores() {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		line, err := h.sessionsAPI(ctx, r.Method, user, now)
		cancel()
		if err != nil {
			h.logger.Error("admin API: the session store failed", zap.String("method", r.Method), zap.Error(err))
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("%s (%s): %w", h.RedirectURI, h.storeType, err)}
		}
		sites = append(sites, line)
	}
	answer := map[string]any{"sites": sites}
	if user != "" {
		answer["user"] = user
	}
	return writeJSON(w, http.StatusOK, answer)
}

// sessionsAPI counts (GET) or ends (DELETE) this handler's store's sessions.
func (h *Handler) sessionsAPI(ctx context.Context, method, user string, now time.Time) (siteSessions, error) {
	line := siteSessions{RedirectURI: h.RedirectURI, ClientID: h.ClientID, Store: h.storeType}
	for _, rule := range h.Allow {
		line.Allow = append(line.Allow, rule.String())
	}
	revoker, ok := h.store.(tokencache.Revoker)
	switch {
	case method == http.MethodGet && ok:
		n, exact, err := revoker.Count(ctx)
		if n == tokencache.NotCounted {
			line.Note = cookieStoreNote
		} else {
			line.Sessions, line.Exact = &n, exact
		}
		return line, err
	case method == http.MethodGet:
		return line, fmt.Errorf("the %s store cannot count sessions", h.storeType)
	case ok:
		var n int
		var err error
		if user != "" {
			// The user's refresh tokens are revoked at the server too, once
			// their sessions here are gone (listed first: ending forgets them).
			var ended []tokencache.Session
			if lister, ok := h.store.(tokencache.Lister); ok && h.revocation != nil {
				ended, _ = lister.UserSessions(ctx, user)
			}
			if n, err = revoker.EndUser(ctx, user); err == nil && len(ended) > 0 {
				revoked := h.revokeRefreshTokens(ctx, ended)
				line.Revoked = &revoked
			}
		} else {
			n, err = revoker.EndAll(ctx)
		}
		if err != nil {
			return line, err
		}
		if n == tokencache.NotCounted {
			line.RevokedBefore, line.Note = now.UTC().Format(time.RFC3339), cookieStoreNote
		} else {
			line.Ended = &n
		}
		h.logEnded(user, n)
		return line, nil
	}
	return line, fmt.Errorf("the %s store cannot end sessions", h.storeType)
}

// logEnded tells the operator (n < 0: not counted, the cookie store).
func (h *Handler) logEnded(user string, n int) {
	fields := []zap.Field{zap.String("store", h.storeType)}
	if user != "" {
		fields = append(fields, zap.String("user", user))
	}
	if n >= 0 {
		fields = append(fields, zap.Int("ended", n))
	}
	h.logger.Info("sessions ended through the admin API", fields...)
}

func apiError(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

var _ caddy.AdminRouter = adminAPI{}
