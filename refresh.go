// Refreshing a session's access token on the server (RFC 6749 §6), for
// sessions with a refresh token (the code flow): by the first request that
// finds it due, once per session at a time, on every instance sharing the
// store. Servers rotate refresh tokens and end the whole login when one is
// presented twice, so a second refresh of the same token must never
// happen: requests of one session that find it due together share one
// refresh (a single flight); requests already on their way with what was
// just refreshed (the cookie store's old cookie, a read racing the write)
// get its result; and instances sharing Redis take turns under a lock.

package implicitgrant

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/internal/coarseclock"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

const (
	// refreshRemembered: how long a refresh's result answers for the
	// session as it was before it.
	refreshRemembered = time.Minute
	// maxRemembered bounds those results (each ~1 KB): far more than the
	// sessions one instance refreshes in a minute.
	maxRemembered = 20_000
	// refreshLockTTL: the longest one instance holds a session's refresh
	// lock (a call to the token endpoint takes at most its timeout).
	refreshLockTTL = authserver.DefaultTimeout + 5*time.Second
	// refreshWait: how long a request waits for another instance's refresh.
	refreshWait = refreshLockTTL
	refreshPoll = 25 * time.Millisecond
	// maxRefreshing bounds the calls to the token endpoint in flight at
	// once, as maxVerifying bounds logins': past it a due session goes on
	// with its token while that is valid (and is refreshed by a later
	// request), or gets 503.
	maxRefreshing = 64
)

// errRefreshEnded: the session is over (the server refused its refresh
// token, or it was ended meanwhile); the request goes on without it.
var errRefreshEnded = errors.New("the session's refresh token was refused")

// refreshes coordinates one handler's refreshes.
type refreshes struct {
	flight singleflight.Group
	calls  chan struct{}                  // one slot per call in flight (maxRefreshing)
	done   *expiring[[32]byte, refreshed] // by refreshKey of the session before, for refreshRemembered
}

type refreshed struct {
	session tokencache.Session
	value   string // the cookie value that names it now
}

// refreshKey names a session as it was before a refresh: its cookie value
// and the refresh token that refresh used up.
func refreshKey(value string, s *tokencache.Session) [32]byte {
	return sha256.Sum256([]byte(value + "\x00" + s.RefreshToken))
}

// refreshDue: the hot path's test, one load and one comparison for a
// session with a refresh token.
func refreshDue(s *tokencache.Session) bool {
	return s.Refreshable() && coarseclock.Now() >= s.RefreshAt.UnixNano()
}

// setTokenTimes sets when s's access token, lasting expiresIn seconds (0:
// default_expires_in) from now, is refreshed, and when it is no longer
// sent (ttl from now, its end less expiry_leeway). Refreshes come
// renew_before (default 1m) before its end, but never in the first half
// of its life, so a server issuing short tokens costs one refresh per
// half-lifetime, never one per request.
func (h *Handler) setTokenTimes(s *tokencache.Session, now time.Time, expiresIn int64, ttl time.Duration) {
	lifetime := h.tokenLifetime(expiresIn)
	before := time.Duration(h.RenewBefore)
	if before == 0 {
		before = DefaultRefreshBefore
	}
	s.TokenExpires = now.Add(ttl)
	s.RefreshAt = now.Add(min(max(lifetime-before, lifetime/2), ttl))
}

// serveRefresh refreshes the session r carries, due now. It returns the
// session to go on with, or ended when there is none any more (the
// request then goes on as one without a session); answered says the
// response was written (the server is down and the token has expired).
func (h *Handler) serveRefresh(w http.ResponseWriter, r *http.Request, value string, s tokencache.Session) (fresh tokencache.Session, ended, answered bool, err error) {
	fresh, newValue, err := h.refresh(r.Context(), value, s)
	switch {
	case err == nil:
		if newValue != value { // the cookie store: the new session is the new cookie
			h.setSessionCookie(w, r, newValue, int(time.Until(fresh.Expires)/time.Second))
		}
		return fresh, false, false, nil
	case errors.Is(err, errRefreshEnded):
		h.setSessionCookie(w, r, "", -1)
		return s, true, false, nil
	case time.Now().Before(s.TokenExpires):
		// The token still works: this request goes on with it, and the next
		// one tries again.
		h.logRefusal(zap.WarnLevel, "cannot refresh a session's token; using it until it expires", zap.Error(err))
		return s, false, false, nil
	}
	code := codeServerUnavailable
	if errors.Is(err, tokencache.ErrUnavailable) {
		code = codeStoreUnavailable
	}
	metrics.serverUnavailable.Inc()
	h.logRefusal(zap.ErrorLevel, "cannot refresh a session's expired token; refusing the request (the session is kept)", zap.Error(err))
	return s, false, true, h.fail(w, r, failure{code: code, retry: relay.SafeReturnPath(publicURL(r).RequestURI())})
}

// refresh returns s refreshed, and the cookie value naming it now.
func (h *Handler) refresh(ctx context.Context, value string, s tokencache.Session) (tokencache.Session, string, error) {
	key := refreshKey(value, &s)
	if res, ok := h.refreshes.done.get(key, time.Now()); ok {
		return res.session, res.value, nil
	}
	// The flight outlives any one request of it: a browser closing the
	// first request's tab must not fail the others (the calls it makes
	// have their own timeouts).
	ctx = context.WithoutCancel(ctx)
	v, err, _ := h.refreshes.flight.Do(string(key[:]), func() (any, error) {
		if res, ok := h.refreshes.done.get(key, time.Now()); ok {
			return res, nil
		}
		fresh, newValue, err := h.refreshTaking(ctx, value, s)
		if err != nil {
			return nil, err
		}
		res := refreshed{session: fresh, value: newValue}
		now := time.Now() // (no room: a late request refreshes again, and may be refused; never memory growth)
		h.refreshes.done.add(key, res, now.Add(refreshRemembered), now)
		return res, nil
	})
	if err != nil {
		return s, value, err
	}
	res := v.(refreshed)
	return res.session, res.value, nil
}

// refreshTaking refreshes s, taking turns with the other instances when
// the store is shared: the lock's holder refreshes, and the others wait
// for what it writes.
func (h *Handler) refreshTaking(ctx context.Context, value string, s tokencache.Session) (tokencache.Session, string, error) {
	shared, ok := h.store.(tokencache.SharedStore)
	if !ok {
		return h.redeem(ctx, value, s)
	}
	deadline := time.Now().Add(refreshWait)
	for {
		unlock, held, err := shared.LockRefresh(ctx, value, refreshLockTTL)
		if err != nil {
			return s, value, err
		}
		// Whether this instance holds the lock or waits for another's,
		// the store may have the refresh's result already.
		latest, ok, err := shared.Latest(ctx, value)
		switch {
		case err != nil:
		case !ok:
			err = errRefreshEnded
		case refreshedSince(&latest, &s):
			if held {
				unlock()
			}
			return latest, value, nil
		case held:
			defer unlock()
			return h.redeem(ctx, value, latest)
		}
		if err != nil {
			if held {
				unlock()
			}
			return s, value, err
		}
		if time.Now().After(deadline) {
			return s, value, fmt.Errorf("%w: another instance's refresh of this session did not finish", authserver.ErrUnavailable)
		}
		time.Sleep(refreshPoll)
	}
}

// refreshedSince says whether latest is s after a refresh.
func refreshedSince(latest, s *tokencache.Session) bool {
	return latest.RefreshToken != s.RefreshToken || latest.RefreshAt.After(s.RefreshAt)
}

// redeem presents s's refresh token and stores what comes back in its place.
func (h *Handler) redeem(ctx context.Context, value string, s tokencache.Session) (tokencache.Session, string, error) {
	select {
	case h.refreshes.calls <- struct{}{}:
		defer func() { <-h.refreshes.calls }()
	default:
		countRefresh("unavailable")
		return s, value, fmt.Errorf("%w: %d refreshes are in flight already", authserver.ErrUnavailable, maxRefreshing)
	}
	tokens, err := h.tokenEndpoint.Refresh(ctx, s.RefreshToken)
	if te, refused := errors.AsType[*authserver.TokenError](err); refused {
		// invalid_grant (expired, revoked, reused) or a client the server no
		// longer takes: no later attempt can succeed.
		h.logRefusal(zap.InfoLevel, "the server refused a session's refresh token; the session ends", zap.String("error", te.Code), zap.Int("status", te.Status))
		countRefresh("refused")
		_ = h.store.Delete(ctx, value)
		return s, value, errRefreshEnded
	}
	if errors.Is(err, authserver.ErrMalformed) {
		err = fmt.Errorf("%w: %w", authserver.ErrUnavailable, err)
	}
	if err != nil {
		countRefresh("unavailable")
		return s, value, err
	}
	tr := tokenResponse(tokens, "")
	if err := tr.CheckTokens(); err != nil || len(tr.AccessToken) > h.MaxTokenBytes || len(tr.RefreshToken) > h.MaxTokenBytes {
		return s, value, h.endRefused(ctx, value, "refused the token endpoint's refresh answer; the session ends", err, zap.Int("access_token_bytes", len(tr.AccessToken)))
	}
	var idClaims map[string]any
	if h.openid != nil && tr.IDToken != "" {
		if idClaims, err = h.openid.VerifyRefreshed(ctx, tr.IDToken, tr.AccessToken, subjectOf(s.Identity)); err != nil {
			if errors.Is(err, authserver.ErrUnavailable) { // the keys could not be fetched: try again later
				countRefresh("unavailable")
				return s, value, err
			}
			return s, value, h.endRefused(ctx, value, "refused a refresh's id_token; the session ends", err)
		}
	}
	fresh := s
	if fresh.Identity, err = h.refreshedIdentity(ctx, s.Identity, idClaims, tr.AccessToken); err != nil {
		return s, value, h.endRefused(ctx, value, "refused a refresh's userinfo answer; the session ends", err)
	}
	now := time.Now()
	fresh.Authorization = "Bearer " + tr.AccessToken
	fresh.RefreshToken = tr.RefreshToken // the old one when the server did not rotate it
	if h.EndSession && tr.IDToken != "" {
		fresh.IDToken = tr.IDToken // the newest hint
	}
	h.setTokenTimes(&fresh, now, tr.ExpiresIn, min(h.sessionLifetime(tr.ExpiresIn), time.Until(s.Expires)))
	newValue, ok, err := h.store.Replace(ctx, value, fresh)
	if err != nil {
		return s, value, err
	}
	if !ok {
		return s, value, errRefreshEnded // logged out meanwhile
	}
	countRefresh("refreshed")
	if c := h.logger.Check(zap.DebugLevel, "session refreshed"); c != nil {
		c.Write(zap.String("user", subjectOf(s.Identity)), zap.Bool("rotated", fresh.RefreshToken != s.RefreshToken))
	}
	return fresh, newValue, nil
}

// endRefused ends a session whose refresh brought something refused.
func (h *Handler) endRefused(ctx context.Context, value, msg string, err error, fields ...zap.Field) error {
	h.logRefusal(zap.WarnLevel, msg, append(fields, zap.Error(err))...)
	countRefresh("refused")
	_ = h.store.Delete(ctx, value)
	return errRefreshEnded
}
