// Machine clients: a script or a service calls the site with its own
// bearer token (accept_bearer). With no session, the token is checked as
// a resource server checks one (RFC 9068, or introspection), against this
// site's audiences; a good one goes upstream as it came, with its
// identity and the allow rules, a bad one gets 401 invalid_token (RFC 6750
// §3). No session is stored and no cookie set.

package implicitgrant

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/internal/printable"
)

// How long a verified bearer is trusted without asking again: a JWT until
// its exp or 5 minutes, an introspection's answer at most 1 minute (the
// server may revoke the token).
const (
	bearerJWTTTL        = 5 * time.Minute
	bearerIntrospectTTL = time.Minute
	maxBearers          = 10_000
)

// checkAcceptBearer: accept_bearer needs a mode that can tell whom a token was
// issued for.
func (h *Handler) checkAcceptBearer() error {
	if len(h.AcceptBearer) == 0 {
		return nil
	}
	switch mode := h.trustMode(); mode {
	case "openid", validateJWT, validateIntrospect:
	default:
		return fmt.Errorf("accept_bearer: %s cannot tell whom a token was issued for (which API it is for); use openid, validate jwt or validate introspect", mode)
	}
	for _, a := range h.AcceptBearer {
		if a == "" || len(a) > maxValueBytes || printable.HasControl(a) {
			return fmt.Errorf("accept_bearer: %q is not an audience", a)
		}
	}
	return nil
}

// bearerOf is the request's own bearer token, if it has exactly one.
func bearerOf(r *http.Request) (string, bool) {
	v := r.Header["Authorization"]
	if len(v) != 1 || len(v[0]) < 8 || !strings.EqualFold(v[0][:7], "bearer ") {
		return "", false
	}
	token := strings.TrimLeft(v[0][7:], " ")
	return token, token != ""
}

// bearerChecks are the bearers verified (their packed identity, by the
// token's digest) and the checks under way: requests that bring one new
// token at once share its one check.
type bearerChecks struct {
	cache  *expiring[[32]byte, string]
	flight singleflight.Group
}

// bearerCheck is a check's outcome: the packed identity, or a refusal.
type bearerCheck struct {
	identity             string
	status               int
	outcome, description string
}

// serveBearer checks a bearer and, if it is good, serves the request with
// it, untouched, and its identity.
func (h *Handler) serveBearer(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, token string) error {
	now := time.Now()
	addr := clientAddress(r)
	if len(token) > h.MaxTokenBytes { // before anything reads it, even to hash it
		h.limits.countFailure(addr, now)
		return h.refuseBearer(w, http.StatusUnauthorized, "too_large", fmt.Sprintf("the token is larger than %d bytes", h.MaxTokenBytes))
	}
	key := sha256.Sum256([]byte(token))
	identity, cached := h.bearers.cache.get(key, now)
	outcome := "cached"
	if !cached {
		// The check outlives a request that gives up: others may share it.
		v, _, _ := h.bearers.flight.Do(string(key[:]), func() (any, error) {
			return h.checkBearer(context.WithoutCancel(r.Context()), addr, token, key), nil
		})
		c := v.(bearerCheck)
		if c.status != 0 {
			return h.refuseBearer(w, c.status, c.outcome, c.description)
		}
		identity, outcome = c.identity, "accepted"
	}
	metrics.bearers.WithLabelValues(outcome).Inc()
	if outcome == "accepted" {
		h.events.emit(eventBearer, map[string]any{"outcome": outcome, "user": subjectOf(identity)})
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Map(placeholdersFor(identity, &h.Claims))
	}
	return next.ServeHTTP(w, r) // the Authorization header goes upstream as it came
}

// checkBearer proves a bearer at the server, holding one of the places
// logins prove theirs in (so a flood of made-up tokens makes no flood of
// calls), and caches a good one.
func (h *Handler) checkBearer(ctx context.Context, addr, token string, key [32]byte) bearerCheck {
	att, refused := h.limits.beginProof(addr, time.Now())
	switch refused {
	case "":
	case codeTooManyFailures:
		return bearerCheck{status: http.StatusTooManyRequests, outcome: "limited", description: "too many invalid tokens from this address; try again later"}
	default:
		return bearerCheck{status: http.StatusTooManyRequests, outcome: "limited", description: "too many tokens are being checked at once; try again"}
	}
	id, err := h.verifier.(authserver.BearerVerifier).VerifyBearer(ctx, token, h.AcceptBearer)
	if errors.Is(err, authserver.ErrUnavailable) {
		att.end(false, false)
		h.logRefusal(zap.ErrorLevel, "cannot verify a bearer token: the authorization server is unavailable", zap.Error(err))
		return bearerCheck{status: http.StatusServiceUnavailable, outcome: "unavailable", description: "the authorization server cannot be reached to check the token"}
	}
	if err == nil && (len(id.Subject) > maxSubjectBytes || h.controlCharacterIn(id) != "") {
		err = errors.New("a claim is too long or holds a control character")
	}
	att.end(false, err != nil)
	if err != nil {
		reason := err.Error()
		if u, ok := errors.AsType[*authserver.Untrusted](err); ok {
			reason = u.Reason
		}
		h.logRefusal(zap.InfoLevel, "refused a bearer token", zap.String("reason", reason), zap.String("client", loggable(addr)))
		return bearerCheck{status: http.StatusUnauthorized, outcome: "invalid_token", description: "the token is not valid here: " + reason}
	}
	if rule := h.refusedBy(id); rule != nil {
		h.logRefusal(zap.InfoLevel, "refused a bearer token: the allow rules do not admit its subject", zap.String("user", id.Subject), zap.Stringer("rule", rule))
		return bearerCheck{status: http.StatusForbidden, outcome: "forbidden", description: "the token's subject is not admitted here"}
	}
	now := time.Now()
	ttl := bearerJWTTTL
	if h.trustMode() == validateIntrospect {
		ttl = bearerIntrospectTTL
	}
	until := now.Add(ttl)
	if !id.Expires.IsZero() && id.Expires.Before(until) {
		until = id.Expires
	}
	identity := packIdentity(id, h.Claims, time.Time{})
	h.bearers.cache.add(key, identity, until, now) // (no room: the next call checks it again)
	return bearerCheck{identity: identity}
}

// refuseBearer answers a refused bearer (RFC 6750 §3): the reason in the
// WWW-Authenticate header and a short JSON body, never the token.
func (h *Handler) refuseBearer(w http.ResponseWriter, status int, outcome, description string) error {
	metrics.bearers.WithLabelValues(outcome).Inc()
	h.events.emit(eventBearer, map[string]any{"outcome": outcome})
	description = strings.NewReplacer(`"`, "'", `\`, "/").Replace(printable.Strip(description))
	errorCode := "invalid_token"
	switch status {
	case http.StatusForbidden:
		errorCode = "insufficient_scope"
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		errorCode = "temporarily_unavailable"
		w.Header().Set("Retry-After", "60")
	}
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error=%q, error_description=%q`, errorCode, description))
	}
	return writeJSON(w, status, map[string]string{"error": errorCode, "error_description": description})
}
