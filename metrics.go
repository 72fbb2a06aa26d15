// Metrics: counters, a gauge and a histogram registered in Caddy's metrics
// registry.

package implicitgrant

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are process-wide (a config reload keeps counting) and registered
// in each config's registry, as Caddy's own handlers do. Labels are a fixed
// handful of outcomes: never a user, a path, a token or a state.
var metrics struct {
	once     sync.Once
	logins   *prometheus.CounterVec
	requests *prometheus.CounterVec
	logouts  prometheus.Counter
	// refreshes counts refresh-token calls to the token endpoint.
	refreshes *prometheus.CounterVec
	// bearers counts machine clients' bearer tokens, by outcome.
	bearers  *prometheus.CounterVec
	sessions prometheus.GaugeFunc
	duration prometheus.Histogram

	// Resolved once, so the hot path only adds atomically.
	authenticated, loginRedirect, unauthenticated, storeError, serverUnavailable prometheus.Counter
}

// Login outcomes, the values of the "outcome" label.
const (
	loginSuccess           = "success"
	loginDenied            = "denied"           // the server returned access_denied
	loginServerError       = "server_error"     // the server returned another error
	loginInvalidState      = "invalid_state"    // forged, expired, replayed or other-browser state
	loginInvalidResponse   = "invalid_response" // malformed token response
	loginRefused           = "refused"          // cross-origin, wrong content type or too large
	loginStoreError        = "store_error"
	loginInvalidToken      = "invalid_token"      // the token could not be proved the server's, for this client, live
	loginForbidden         = "forbidden"          // a verified user the allow rules do not admit
	loginServerUnavailable = "server_unavailable" // the server could not be reached to verify
	loginThrottled         = "throttled"          // refused by a limit: too many at once, or too many failures from one address
)

func registerMetrics(reg *prometheus.Registry) error {
	metrics.once.Do(func() {
		const ns, sub = "caddy", "implicit_grant"
		metrics.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "logins_total",
			Help: "Finished logins (relay posts and error callbacks), by outcome.",
		}, []string{"outcome"})
		metrics.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Protected requests, by what happened to them.",
		}, []string{"result"})
		metrics.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "refreshes_total",
			Help: "Refreshes of sessions' access tokens at the token endpoint, by outcome: refreshed, refused (the session ended), unavailable.",
		}, []string{"outcome"})
		metrics.bearers = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "bearers_total",
			Help: "Bearer tokens of scripts and services (accept_bearer), by outcome: accepted, cached, invalid_token, forbidden, too_large, limited, unavailable.",
		}, []string{"outcome"})
		metrics.logouts = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "logouts_total",
			Help: "Requests to the logout path.",
		})
		metrics.sessions = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "sessions",
			Help: "Sessions held by memory stores in this process (expired ones not yet swept included).",
		}, liveMemorySessions)
		metrics.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "login_duration_seconds",
			Help:    "How long successful logins took, from the start page to the relay post (whole seconds: the state cookie's resolution).",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600},
		})
		metrics.authenticated = metrics.requests.WithLabelValues("authenticated")
		metrics.loginRedirect = metrics.requests.WithLabelValues("login_redirect")
		metrics.unauthenticated = metrics.requests.WithLabelValues("unauthenticated")
		metrics.storeError = metrics.requests.WithLabelValues("store_error")
		metrics.serverUnavailable = metrics.requests.WithLabelValues("server_unavailable")
	})
	for _, c := range []prometheus.Collector{metrics.logins, metrics.requests, metrics.refreshes, metrics.bearers, metrics.logouts, metrics.sessions, metrics.duration} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return nil
}

func countLogin(outcome string) { metrics.logins.WithLabelValues(outcome).Inc() }

func countRefresh(outcome string) { metrics.refreshes.WithLabelValues(outcome).Inc() }

// liveMemorySessions adds up the sessions of every memory store in the
// pool (each site's, shared by its config generations).
func liveMemorySessions() float64 {
	n := 0
	stores.Range(func(_, v any) bool {
		if m, ok := v.(pooledStore).Store.(interface{ Len() int }); ok { // the memory store's
			n += m.Len()
		}
		return true
	})
	return float64(n)
}
