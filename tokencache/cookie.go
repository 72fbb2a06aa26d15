package tokencache

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Cookie keeps each session sealed inside the session cookie itself: no
// server state, so any number of Caddy instances sharing the secret serve
// the same sessions.
//
// What logout can and cannot revoke here: logout deletes the cookie from
// the browser, and the instance that handled it refuses the old value until
// it expires. Other instances have no record of it: a copy of the cookie
// taken before logout stays valid there until the token's expiry. Login
// states are single-use per instance (recorded in memory) and per browser
// (their cookie is deleted on use). Use the redis store when logout must
// reach every instance.
//
// Ending a user's or everyone's sessions (Revoker) is a revocation record
// in Caddy's storage, which every instance sharing it reads.
type Cookie struct {
	*sealer
	binding     []byte // associated data: what a sealed value is valid for
	claims      *Memory
	owner       func(identity string) (subject string, issued time.Time)
	revocations *revocations // nil without storage (unit tests of sealing)
}

// NewCookie returns a cookie store sealing with key (32 bytes, derived
// from the configured secret). binding (the cookie's name and whatever
// else identifies the site, such as its client) is sealed in as associated
// data: a value is valid only where it was made.
func NewCookie(keys [][]byte, binding string) (*Cookie, error) {
	s, err := newSealer(keys)
	if err != nil {
		return nil, err
	}
	return &Cookie{sealer: s, binding: []byte(binding), claims: NewMemory(1, time.Minute)}, nil
}

// revoked reports whether the revocation record ends s.
func (c *Cookie) revoked(s Session) bool {
	if c.revocations == nil {
		return false
	}
	l := c.revocations.list.Load()
	if l == nil {
		return false // nothing revoked: the hot path's one load
	}
	subject, issued := c.owner(s.Identity)
	return l.ends(subject, s.Login, issued)
}

// EndUser implements Revoker: subject's sessions issued until now end, on
// every instance within revocationRefresh. They cannot be counted (-1).
func (c *Cookie) EndUser(ctx context.Context, subject string) (int, error) {
	return NotCounted, c.revoke(ctx, subject, false)
}

// EndLogin implements Revoker, as EndUser for the sessions of a login.
func (c *Cookie) EndLogin(ctx context.Context, login string) (int, error) {
	return NotCounted, c.revoke(ctx, login, true)
}

// EndAll implements Revoker, as EndUser for everyone.
func (c *Cookie) EndAll(ctx context.Context) (int, error) {
	return NotCounted, c.revoke(ctx, "", false)
}

// Count implements Revoker: the sessions are in browsers, not counted.
func (c *Cookie) Count(context.Context) (int, bool, error) { return NotCounted, false, nil }

func (c *Cookie) revoke(ctx context.Context, subject string, login bool) error {
	if c.revocations == nil {
		return errors.New("the cookie store was opened without Caddy's storage: revocations cannot be recorded")
	}
	return c.revocations.revoke(ctx, subject, login, time.Now())
}

// Put implements Store: the returned value is the sealed session.
func (c *Cookie) Put(_ context.Context, s Session) (string, error) {
	return base64.RawURLEncoding.EncodeToString(c.seal(s, c.binding)), nil
}

// Replace implements Store: the refreshed session, sealed, is the new
// value. The old value stays valid until it expires (the browser replaces
// it at once; see the handler's refresh for requests already on their way
// with it).
func (c *Cookie) Replace(ctx context.Context, cookieValue string, s Session) (string, bool, error) {
	old, ok, _ := c.Get(ctx, cookieValue)
	if !ok {
		return "", false, nil
	}
	s.Expires = old.Expires
	v, err := c.Put(ctx, s)
	return v, err == nil, err
}

// strictBase64 refuses every encoding but the one Put writes: a lenient
// decoder reads a value with a different last character as the same bytes,
// which would let a logged-out cookie in again under another spelling.
var strictBase64 = base64.RawURLEncoding.Strict()

// Get implements Store.
func (c *Cookie) Get(_ context.Context, cookieValue string) (Session, bool, error) {
	raw, err := strictBase64.DecodeString(cookieValue)
	if err != nil {
		return Session{}, false, nil
	}
	s, ok := c.open(raw, c.binding)
	if !ok || !time.Now().Before(s.Expires) || c.claims.claimed(revocationKey(raw), s.Expires) || c.revoked(s) {
		return Session{}, false, nil
	}
	return s, true, nil
}

// Delete implements Store: this instance refuses the value from now on
// (see the type's comment for the others).
func (c *Cookie) Delete(ctx context.Context, cookieValue string) error {
	if s, ok, _ := c.Get(ctx, cookieValue); ok {
		raw, _ := strictBase64.DecodeString(cookieValue)
		if _, err := c.claims.claim(revocationKey(raw), s.Expires); err != nil {
			return err // the logout must say it did not take
		}
	}
	return nil
}

// revocationKey is what a logged-out session is remembered by: a digest of
// its sealed bytes (not of one spelling of them), so the record is small
// and holds no session.
func revocationKey(sealed []byte) [32]byte {
	return sha256.Sum256(append([]byte("revoked\x00"), sealed...))
}

// ClaimState implements Store, for this instance.
func (c *Cookie) ClaimState(ctx context.Context, state string, until time.Time) (bool, error) {
	return c.claims.ClaimState(ctx, state, until)
}

// Close stops the state-claim sweeper and the revocations' refresh.
func (c *Cookie) Close() error {
	if c.revocations != nil {
		c.revocations.close()
	}
	return c.claims.Close()
}

var (
	_ Store   = (*Cookie)(nil)
	_ Revoker = (*Cookie)(nil)
)

// CookieConfig is the cookie store's configuration: sessions sealed into
// the session cookie itself. It has no options.
type CookieConfig struct{}

// CaddyModule returns the Caddy module information.
func (CookieConfig) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: Namespace + ".cookie", New: func() caddy.Module { return new(CookieConfig) }}
}

// UnmarshalCaddyfile reads "cookie".
func (c *CookieConfig) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := noArgs(d); err != nil {
		return err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		return d.Errf("store: unrecognized option for cookie: %s", d.Val())
	}
	return nil
}

// SessionInCookie says the cookie value is the sealed session itself: it
// may need several cookies, and no server keeps sessions to count.
func (CookieConfig) SessionInCookie() {}

// Reconfigure gives the shared store a reload's key ring: logouts recorded
// here, and sessions sealed with a secret still listed, survive rotation.
func (c *CookieConfig) Reconfigure(s Store, site Site) {
	if r, ok := s.(rekeyer); ok {
		_ = r.Rekey(site.SealKeys)
	}
	if c, ok := s.(*Cookie); ok && c.revocations != nil {
		c.revocations.lifetime.Store(int64(site.MaxLifetime))
	}
}

// PoolKey: a changed cookie name is another store; a changed secret is not
// (Reconfigure rekeys it).
func (c *CookieConfig) PoolKey(site Site) string {
	return "cookie|" + site.CookieName + "|" + site.Binding
}

// Open makes the store; the cookie's name is sealed in with the site. Its
// revocation record is named after the store, so every instance of the
// site finds the same one.
func (c *CookieConfig) Open(site Site) (Store, error) {
	store, err := NewCookie(site.SealKeys, site.CookieName+"|"+site.Binding)
	if err != nil || site.Storage == nil {
		return store, err
	}
	digest := sha256.Sum256([]byte(c.PoolKey(site)))
	key := "implicit_grant/revocations/" + hex.EncodeToString(digest[:16]) + ".json"
	store.owner = site.Owner
	if store.revocations, err = openRevocations(site.Storage, key, site.MaxLifetime, site.Logger); err != nil {
		_ = store.Close()
		return nil, err
	}
	return store, nil
}
