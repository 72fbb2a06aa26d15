// Choosing the session store and sharing it across config reloads. Each
// store's options, checks and construction live with the store itself, as
// a guest module in tokencache.Namespace.

package implicitgrant

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/caddyserver/caddy/v2"

	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// storeBackend is what the handler needs of a store's configuration module.
type storeBackend interface {
	// PoolKey names the store this configuration opens for site: configs
	// with the same key share one store across reloads.
	PoolKey(site tokencache.Site) string
	// Open creates the store.
	Open(site tokencache.Site) (tokencache.Store, error)
}

// stores holds the session stores across config reloads: a reload must not
// log anyone out, drop a Redis connection or lose a state claim.
var stores = caddy.NewUsagePool()

type pooledStore struct{ tokencache.Store }

func (p pooledStore) Destruct() error {
	if c, ok := p.Store.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// openStore loads the configured store module (memory when none is
// configured) and takes its store from the pool, creating it for the first
// config that uses it.
func (h *Handler) openStore(ctx caddy.Context) error {
	var backend storeBackend = &tokencache.MemoryConfig{MaxSessions: tokencache.DefaultMaxSessions}
	if h.StoreRaw != nil {
		mod, err := ctx.LoadModule(h, "StoreRaw")
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		b, ok := mod.(storeBackend)
		if !ok {
			return fmt.Errorf("store: module %T is not a session store", mod)
		}
		backend = b
	}
	_, cookie := backend.(*tokencache.CookieConfig)
	switch {
	case cookie && h.MaxSessionsPerUser != 0:
		return errors.New("max_sessions_per_user: the cookie store keeps no sessions on the server to count; use the memory or redis store")
	case !cookie && h.MaxSessionsPerUser == 0:
		h.MaxSessionsPerUser = tokencache.DefaultMaxSessionsPerUser
	}
	site := tokencache.Site{
		// Sessions made for one authorization server and client never
		// authenticate requests meant for another.
		Binding:            h.AuthorizeURL + "|" + h.OpenID + "|" + h.ClientID,
		SealKeys:           h.keys("session seal"),
		CookieName:         h.CookieName,
		MaxSessionsPerUser: h.MaxSessionsPerUser,
		Logger:             h.logger,
	}
	h.storeType = "memory"
	if m, ok := backend.(caddy.Module); ok {
		h.storeType = caddy.GetModuleName(m)
	}
	key := backend.PoolKey(site)
	pooled, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		s, err := backend.Open(site)
		return pooledStore{s}, err
	})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	h.storePoolKey = key
	h.store = pooled.(pooledStore).Store
	if r, ok := backend.(interface {
		Reconfigure(tokencache.Store, tokencache.Site)
	}); ok {
		r.Reconfigure(h.store, site) // what a reload may change without replacing the store: bounds, keys
	}
	// The cookie store's values are the sealed session itself, which may
	// need several cookies.
	_, h.chunked = h.store.(*tokencache.Cookie)
	if h.chunked {
		return h.openRevocations(ctx)
	}
	return nil
}

// lookup finds the session for a cookie value: the store's answer, less
// what the admin API revoked for the cookie store.
func (h *Handler) lookup(ctx context.Context, value string) (tokencache.Session, bool, error) {
	s, ok, err := h.store.Get(ctx, value)
	if ok && h.revocations != nil && h.revocations.list.Load().ends(s.Identity) {
		return tokencache.Session{}, false, nil
	}
	return s, ok, err
}
