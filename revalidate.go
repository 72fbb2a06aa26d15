// Revalidation: with "revalidate", a session whose token was last checked
// at the server longer ago than that is checked again before its next
// request is served, so a token revoked at the server stops working within
// that interval. One check per session is in flight at a time, and every
// request waiting for it shares its result.

package implicitgrant

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// maxRechecked bounds what an instance remembers of its own checks; past
// it, records too old to spare a check are dropped, then all of them (the
// cost is an early check, never a wrong answer).
const maxRechecked = 100_000

// rechecks are this instance's later checks of sessions' tokens.
type rechecks struct {
	every    time.Duration
	verifier authserver.Verifier

	mu       sync.Mutex
	checked  map[string]time.Time // session cookie value → last good check here
	inflight map[string]*recheck
}

type recheck struct {
	done chan struct{}
	err  error
}

// due reports whether s's token must be checked again before use.
func (c *rechecks) due(value string, s tokencache.Session, now time.Time) bool {
	if now.Sub(checkedAt(s.Identity)) < c.every {
		return false // checked at login, recently: the common case costs no lock
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	last, ok := c.checked[value]
	return !ok || now.Sub(last) >= c.every
}

// check asks the server about s's token again, or waits for the check of
// it already in flight. authserver.ErrUnavailable means nobody could tell;
// another error means the token is no longer good.
func (c *rechecks) check(ctx context.Context, value string, s tokencache.Session) error {
	c.mu.Lock()
	if call, ok := c.inflight[value]; ok {
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	call := &recheck{done: make(chan struct{})}
	c.inflight[value] = call
	c.mu.Unlock()

	token := s.Authorization[len("Bearer "):]
	// The check outlives a request that gives up: others may be waiting.
	_, call.err = c.verifier.Verify(context.WithoutCancel(ctx), authserver.Response{AccessToken: token})

	c.mu.Lock()
	delete(c.inflight, value)
	if call.err == nil {
		if len(c.checked) >= maxRechecked {
			c.forgetStaleLocked(time.Now())
		}
		c.checked[value] = time.Now()
	} else {
		delete(c.checked, value)
	}
	c.mu.Unlock()
	close(call.done)
	return call.err
}

func (c *rechecks) forgetStaleLocked(now time.Time) {
	for v, at := range c.checked {
		if now.Sub(at) >= c.every {
			delete(c.checked, v)
		}
	}
	if len(c.checked) >= maxRechecked {
		clear(c.checked)
	}
}

// checkedNow is the check time a new session records: now with
// revalidate, or with the cookie store (whose revocations compare it with
// the login's time), and nothing (zero) otherwise: ten bytes less in
// every session of the memory store.
func (h *Handler) checkedNow() time.Time {
	if h.rechecks == nil && !h.sessionInCookie {
		return time.Time{}
	}
	return time.Now()
}

// revalidated applies revalidation to a session found for a request: true
// when it may be used. A token the server no longer vouches for ends the
// session; a server that cannot be asked is an error (authserver.ErrUnavailable
// or the request's context ending), and the caller refuses the request.
func (h *Handler) revalidated(ctx context.Context, value string, s tokencache.Session) (bool, error) {
	if h.rechecks == nil || !h.rechecks.due(value, s, time.Now()) {
		return true, nil
	}
	err := h.rechecks.check(ctx, value, s)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, authserver.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return false, err
	}
	h.logger.Info("session ended: the authorization server no longer vouches for its token", zap.Error(err))
	_ = h.store.Delete(ctx, value)
	return false, nil
}
