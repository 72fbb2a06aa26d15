package tokencache

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// Namespace is where the stores' Caddy modules live: the handler's "store"
// field names one by its "type", as {"type": "redis", "url": …}.
const Namespace = "http.handlers.implicit_grant.stores"

// Site is what a store is opened for.
type Site struct {
	// Binding names the site: its authorization server and client. A
	// sealed session is valid only for the site it was sealed for.
	Binding string
	// SealKeys seal sessions (32 bytes each, derived from the configured
	// secrets): the first seals, every one opens.
	SealKeys [][]byte
	// CookieName is the session cookie's name.
	CookieName string
	// MaxSessionsPerUser: starting one more ends a user's oldest session
	// (stores that index by user). 0: no limit.
	MaxSessionsPerUser int
	// Logger is for the operator: a store never logs a session id or token.
	Logger *zap.Logger
	// Storage is Caddy's: where the cookie store records revocations.
	Storage certmagic.Storage
	// Owner reads whose a session is and when it was issued from its
	// identity (the caller's format): for the cookie store's revocations.
	Owner func(identity string) (subject string, issued time.Time)
	// MaxLifetime is the longest a session lives: older revocations are
	// dropped from the record.
	MaxLifetime time.Duration
}

// rekeyer is a store whose key ring a reload may change in place.
type rekeyer interface{ Rekey([][]byte) error }

// noArgs checks that a store's Caddyfile line names only the store.
func noArgs(d *caddyfile.Dispenser) error {
	d.Next() // the store's name
	if name := d.Val(); d.NextArg() {
		return d.Errf("store: %s takes no further arguments", name)
	}
	return nil
}

func init() {
	caddy.RegisterModule(MemoryConfig{})
	caddy.RegisterModule(CookieConfig{})
	caddy.RegisterModule(RedisConfig{})
}
