// Revocations for the cookie store. Its sessions are sealed in the
// browsers' cookies, so they cannot be deleted; ending a user's or
// everyone's sessions records instead "sessions of user X issued before T
// are dead" and "every session issued before T is dead" in Caddy's storage. Every instance sharing that
// storage reads the record (at once where the admin call was made, within
// revocationRefresh elsewhere), and each request's session is checked
// against it: one atomic load when nothing is revoked.

package tokencache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

const (
	// revocationRefresh is how soon other instances sharing the storage
	// learn of a revocation.
	revocationRefresh = 10 * time.Second
	// maxRevokedUsers bounds the record; past it, ending one more user is
	// refused (ending everyone still works and empties the list).
	maxRevokedUsers = 10_000
)

// revocationList is the record: unix seconds, compared with the time a
// session was issued (its login, sealed into the cookie). A session issued
// in the same second as the revocation ends too.
type revocationList struct {
	AllBefore int64            `json:"all_before,omitempty"`
	Users     map[string]int64 `json:"users,omitempty"`  // subject → before
	Logins    map[string]int64 `json:"logins,omitempty"` // the server's login session (sid) → before
}

// ends reports whether a session of subject from login, issued at
// issued, was revoked. A zero issued (a session sealed without its login
// time) is revoked by any entry that matches it.
func (l *revocationList) ends(subject, login string, issued time.Time) bool {
	if l == nil {
		return false
	}
	at := int64(0)
	if !issued.IsZero() {
		at = issued.Unix()
	}
	if l.AllBefore > 0 && at <= l.AllBefore {
		return true
	}
	if before, ok := l.Logins[login]; ok && login != "" && at <= before {
		return true
	}
	before, ok := l.Users[subject]
	return ok && at <= before
}

// revocations is one cookie store's record (shared, with the store, by its
// handlers and config generations).
type revocations struct {
	storage  certmagic.Storage
	key      string
	lifetime atomic.Int64 // nanoseconds: entries older than the longest session are dropped
	list     atomic.Pointer[revocationList]
	logger   *zap.Logger
	stop     chan struct{}
}

// openRevocations loads the record kept under key and starts its refresh.
func openRevocations(storage certmagic.Storage, key string, lifetime time.Duration, logger *zap.Logger) (*revocations, error) {
	rv := &revocations{storage: storage, key: key, logger: logger, stop: make(chan struct{})}
	rv.lifetime.Store(int64(lifetime))
	ctx, cancel := context.WithTimeout(context.Background(), revocationRefresh)
	defer cancel()
	if err := rv.load(ctx); err != nil {
		return nil, fmt.Errorf("reading the cookie store's revocations from Caddy's storage: %w", err)
	}
	go rv.refreshLoop()
	return rv, nil
}

func (rv *revocations) close() { close(rv.stop) }

func (rv *revocations) refreshLoop() {
	t := time.NewTicker(revocationRefresh)
	defer t.Stop()
	for {
		select {
		case <-rv.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), revocationRefresh)
			if err := rv.load(ctx); err != nil {
				// Keep the last record: a storage hiccup must not bring a
				// revoked session back.
				rv.logger.Warn("cannot refresh the cookie store's revocations from Caddy's storage", zap.Error(err))
			}
			cancel()
		}
	}
}

// load reads the record from storage.
func (rv *revocations) load(ctx context.Context) error {
	l, err := rv.read(ctx)
	if err != nil {
		return err
	}
	rv.set(l)
	return nil
}

func (rv *revocations) read(ctx context.Context) (*revocationList, error) {
	raw, err := rv.storage.Load(ctx, rv.key)
	if errors.Is(err, fs.ErrNotExist) {
		return &revocationList{}, nil
	}
	if err != nil {
		return nil, err
	}
	var l revocationList
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", rv.key, err)
	}
	return &l, nil
}

// set publishes l; an empty record is nil, so the hot path costs one load.
func (rv *revocations) set(l *revocationList) {
	if l.AllBefore == 0 && len(l.Users) == 0 && len(l.Logins) == 0 {
		l = nil
	}
	rv.list.Store(l)
}

// revoke records that sessions issued up to now end: the user's (or, with
// login, those of that login session), or everyone's when user is "". It
// reads, changes and writes the record under Caddy's storage lock, so
// instances revoking at once lose nothing.
func (rv *revocations) revoke(ctx context.Context, user string, login bool, now time.Time) error {
	if err := rv.storage.Lock(ctx, rv.key); err != nil {
		return err
	}
	defer func() { _ = rv.storage.Unlock(context.WithoutCancel(ctx), rv.key) }()
	l, err := rv.read(ctx)
	if err != nil {
		return err
	}
	// Whatever was issued before the longest session's lifetime has
	// expired anyway.
	horizon := now.Add(-time.Duration(rv.lifetime.Load())).Unix()
	for _, m := range []map[string]int64{l.Users, l.Logins} {
		for u, before := range m {
			if before < horizon || before <= l.AllBefore {
				delete(m, u)
			}
		}
	}
	entries := &l.Users
	if login {
		entries = &l.Logins
	}
	switch {
	case user == "":
		l.AllBefore, l.Users, l.Logins = now.Unix(), nil, nil
	default:
		if *entries == nil {
			*entries = map[string]int64{}
		}
		if _, listed := (*entries)[user]; !listed && len(l.Users)+len(l.Logins) >= maxRevokedUsers {
			return fmt.Errorf("%d revocations of users or logins are in force, the most kept; end everyone's sessions instead", maxRevokedUsers)
		}
		(*entries)[user] = now.Unix()
	}
	raw, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if err := rv.storage.Store(ctx, rv.key, raw); err != nil {
		return err
	}
	rv.set(l)
	return nil
}
