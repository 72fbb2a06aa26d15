// Answers for what went wrong: a page for people, JSON for scripts, or
// the site's handle_errors routes.

package implicitgrant

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/implicitgrant/caddy-implicit-grant/relay"
)

// respondError shows a person what went wrong, or hands the error to the
// site's handle_errors routes when it has any.
func (h *Handler) respondError(w http.ResponseWriter, r *http.Request, status int, code, description, retry string) error {
	if hasErrorRoutes(r) {
		return caddyhttp.Error(status, fmt.Errorf("implicit_grant: %s", code))
	}
	if rt := r.URL.Query().Get("return_to"); rt != "" && retry == "/" {
		retry = relay.SafeReturnPath(rt)
	}
	return relay.ServeMessage(w, status, relay.ErrorMessage(code, description, retry))
}

func authErrorOutcome(code string) string {
	if code == "access_denied" {
		return loginDenied
	}
	return loginServerError
}

func authErrorStatus(code string) int {
	switch code {
	case "access_denied":
		return http.StatusForbidden
	case "server_error", "temporarily_unavailable":
		return http.StatusBadGateway
	}
	return http.StatusBadRequest
}

func hasErrorRoutes(r *http.Request) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return ok && srv.Errors != nil && len(srv.Errors.Routes) > 0
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
