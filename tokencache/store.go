// Package tokencache owns where sessions live once a login has finished:
// a small Store interface and its implementations. It never logs, and it
// never sees anything but opaque keys and the session record; deciding what
// a key or a cookie looks like is the caller's job.
package tokencache

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"
)

// Session is what a finished login leaves behind.
type Session struct {
	// Authorization is the complete header value sent upstream,
	// e.g. "Bearer abc". Kept pre-built so the hot path does not allocate.
	Authorization string
	// Expires is when the session ends (the token's expiry minus leeway).
	Expires time.Time
	// Identity is who the user is, packed by the caller: opaque here, and
	// sealed with the token where the store seals.
	Identity string
	// Subject names the user for the stores that index sessions by user
	// (memory, Redis): the per-user limit and ending a user's sessions.
	// Read by Put only; "" leaves the session out of the index.
	Subject string
	// With a refresh token (the code flow), Expires is the session's own
	// end, and the access token is refreshed on the server by the first
	// request at or after RefreshAt; it is never sent upstream after
	// TokenExpires (its end minus leeway). Kept, and sealed, with the
	// token; never in the clear outside the store.
	RefreshToken string
	RefreshAt    time.Time
	TokenExpires time.Time
	// Login names the server's login session the session came from
	// (OpenID Connect's sid): a back-channel logout ends it (EndLogin).
	// Printable, no control characters; "" when not kept.
	Login string
	// IDToken is kept for RP-initiated logout's id_token_hint; "" when
	// not kept. Sealed like the tokens.
	IDToken string
}

// Refreshable reports whether s has a refresh token.
func (s *Session) Refreshable() bool { return s.RefreshToken != "" }

// NotCounted is what Revoker's methods return for a number of sessions a
// store cannot count: the cookie store's sessions are in the browsers.
const NotCounted = -1

// Revoker is a store that can end sessions it did not hand to this
// request: the admin API's revocation.
type Revoker interface {
	// EndUser ends every session of subject, returning how many ended.
	EndUser(ctx context.Context, subject string) (int, error)
	// EndLogin ends every session whose Login is login.
	EndLogin(ctx context.Context, login string) (int, error)
	// EndAll ends every session, returning how many ended.
	EndAll(ctx context.Context) (int, error)
	// Count returns how many sessions are live, and whether that is exact.
	Count(ctx context.Context) (n int, exact bool, err error)
}

// Lister is a store that can list a user's sessions (memory, Redis; the
// cookie store's are in the browsers): their refresh tokens are revoked
// at the server when the user's sessions are ended.
type Lister interface {
	UserSessions(ctx context.Context, subject string) ([]Session, error)
}

// DefaultMaxSessionsPerUser is how many sessions one user may have at a
// time when max_sessions_per_user is not set: a person's browsers and
// devices, with room to spare.
const DefaultMaxSessionsPerUser = 20

// ErrUnavailable wraps failures of a store's backend (a Redis outage, say).
// Callers fail closed on it: no session is assumed to exist.
var ErrUnavailable = errors.New("session store unavailable")

// Store keeps sessions and remembers which login states have been used.
// Implementations are safe for concurrent use.
//
// A store hands out the value that goes into the session cookie: a fresh
// random id for server-side stores, the sealed session itself for the
// cookie store. Callers treat it as opaque and secret.
type Store interface {
	// Put stores s until s.Expires and returns the session cookie's value.
	// Every call returns a new value, so a login never reuses a session id.
	Put(ctx context.Context, s Session) (cookieValue string, err error)
	// Get returns the session for a cookie value; ok is false when there is
	// none or it has expired.
	Get(ctx context.Context, cookieValue string) (s Session, ok bool, err error)
	// Delete ends the session for a cookie value; ending a missing session
	// is not an error.
	Delete(ctx context.Context, cookieValue string) error
	// Replace puts s (a refreshed token) in place of the session
	// cookieValue names, keeping its expiry and its place in the per-user
	// index, and returns the cookie value that names it now: the same for
	// stores that keep sessions, a new sealed one for the cookie store. ok
	// is false, and nothing is stored, when that session has ended.
	Replace(ctx context.Context, cookieValue string, s Session) (newValue string, ok bool, err error)
	// ClaimState records that a login state was used. It returns true the
	// first time it is called for a state before until, false after that:
	// this is what makes a state single-use.
	ClaimState(ctx context.Context, state string, until time.Time) (first bool, err error)
}

// idBytes is the size of session ids and login states: 192 bits, far past
// guessing, and small enough that a million sessions fit in memory.
const idBytes = 24

// NewID returns idBytes random bytes, base64url-encoded (32 characters):
// session ids and login states are made with it.
func NewID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms (Go 1.24+ panics instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SharedStore is a store that several instances use at once: a session's
// refresh is done by one instance at a time, because servers rotate
// refresh tokens and end the whole login when one is presented twice.
type SharedStore interface {
	// LockRefresh takes the refresh lock of the session cookieValue
	// names, for at most ttl; held is false when another instance holds it.
	LockRefresh(ctx context.Context, cookieValue string, ttl time.Duration) (unlock func(), held bool, err error)
	// Latest is Get from the shared backend, past any local copy: what
	// another instance's refresh left there.
	Latest(ctx context.Context, cookieValue string) (Session, bool, error)
}
