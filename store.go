// Choosing the session store and sharing it across config reloads.

package implicitgrant

import (
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// StoreConfig chooses where sessions live.
type StoreConfig struct {
	// "memory" (the default): in this process, kept across config reloads.
	// "cookie": sealed (AES-256-GCM) into the session cookie itself; no
	// server state, so any number of instances with the same secret work.
	// "redis": in Redis, shared by every instance using it.
	Type string `json:"type,omitempty"`

	// memory: the most sessions kept; when full, the session closest to
	// expiry goes first. Default 1,000,000.
	MaxSessions int `json:"max_sessions,omitempty"`

	// redis: where it is, e.g. redis://user:pass@host:6379/0; rediss:// for
	// TLS; ?addr=host2:6379&addr=host3:6379 for a cluster;
	// ?master_set=mymaster for Sentinel (the hosts are then sentinels).
	URL string `json:"url,omitempty"`

	// redis: prefix of every key. Default "implicit_grant:".
	KeyPrefix string `json:"key_prefix,omitempty"`

	// redis: how long one call may take before the request fails with 503.
	// Default 1s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// stores holds the session stores across config reloads: a reload must not
// log anyone out, drop a Redis connection or lose a state claim.
var stores = caddy.NewUsagePool()

type pooledStore struct {
	tokencache.Store
	close func() error
}

func (p pooledStore) Destruct() error { return p.close() }

// openStore takes the configured store from the pool, creating it for the
// first config that uses it.
func (h *Handler) openStore() error {
	var open func() (caddy.Destructor, error)
	sealKey := deriveKey(h.secret, "session seal")
	// The key fingerprint is part of the pool key so a changed secret gets
	// a store that seals with the new key; it reveals nothing of the secret.
	fingerprint := hex.EncodeToString(deriveKey(sealKey, "fingerprint")[:8])
	// Sessions made for one authorization server and client never
	// authenticate requests meant for another.
	binding := h.AuthorizeURL + "|" + h.ClientID
	switch h.Store.Type {
	case "memory":
		h.storePoolKey = "memory|" + binding
		open = func() (caddy.Destructor, error) {
			m := tokencache.NewMemory(h.Store.MaxSessions, time.Minute)
			logger := h.logger
			var lastLog atomic.Int64
			m.OnEviction = func() {
				// At most one line a minute however hard the store is pushed;
				// the running total is in it.
				now := time.Now().Unix()
				if last := lastLog.Load(); now-last >= 60 && lastLog.CompareAndSwap(last, now) {
					logger.Warn("session store full: evicting the sessions closest to expiry; raise max_sessions",
						zap.Uint64("evicted_total", m.Evictions()))
				}
			}
			return pooledStore{m, m.Close}, nil
		}
	case "cookie":
		h.chunked = true
		h.storePoolKey = "cookie|" + h.CookieName + "|" + binding + "|" + fingerprint
		open = func() (caddy.Destructor, error) {
			c, err := tokencache.NewCookie(sealKey, h.CookieName+"|"+binding)
			if err != nil {
				return nil, err
			}
			return pooledStore{c, c.Close}, nil
		}
	case "redis":
		h.storePoolKey = "redis|" + h.Store.URL + "|" + h.Store.KeyPrefix + "|" + binding + "|" + fingerprint
		open = func() (caddy.Destructor, error) {
			r, err := tokencache.NewRedis(tokencache.RedisOptions{
				URL: h.Store.URL, KeyPrefix: h.Store.KeyPrefix, Key: sealKey, Binding: binding, Timeout: time.Duration(h.Store.Timeout),
			})
			if err != nil {
				return nil, err
			}
			return pooledStore{r, r.Close}, nil
		}
	}
	pooled, _, err := stores.LoadOrNew(h.storePoolKey, open)
	if err != nil {
		h.storePoolKey = ""
		return fmt.Errorf("store: %w", err)
	}
	h.store = pooled.(pooledStore).Store
	return nil
}
