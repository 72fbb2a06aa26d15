// Choosing the session store and sharing it across config reloads. Each
// store's options, checks and construction live with the store itself, as
// a guest module in tokencache.Namespace.

package implicitgrant

import (
	"fmt"
	"io"
	"time"

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

// sessionInCookie is a store configuration whose cookie value is the
// sealed session itself (the cookie store): long values are split over
// several cookies, no server keeps sessions to count per user, and
// revocations compare a session's login time.
type sessionInCookie interface{ SessionInCookie() }

// loadStoreBackend loads the configured store module (memory when none is
// configured), so the checks know what kind of store it is.
func (h *Handler) loadStoreBackend(ctx caddy.Context) error {
	h.backend = &tokencache.MemoryConfig{MaxSessions: tokencache.DefaultMaxSessions}
	if h.StoreRaw != nil {
		mod, err := ctx.LoadModule(h, "StoreRaw")
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		b, ok := mod.(storeBackend)
		if !ok {
			return fmt.Errorf("store: module %T is not a session store", mod)
		}
		h.backend = b
	}
	_, h.sessionInCookie = h.backend.(sessionInCookie)
	h.storeType = "memory"
	if m, ok := h.backend.(caddy.Module); ok {
		h.storeType = caddy.GetModuleName(m)
	}
	return nil
}

// openStore takes the store from the pool, creating it for the first
// config that uses it.
func (h *Handler) openStore(ctx caddy.Context) error {
	site := h.storeSite(ctx)
	key := h.backend.PoolKey(site)
	pooled, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		s, err := h.backend.Open(site)
		return pooledStore{s}, err
	})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	h.storePoolKey = key
	h.store = pooled.(pooledStore).Store
	if r, ok := h.backend.(interface {
		Reconfigure(tokencache.Store, tokencache.Site)
	}); ok {
		r.Reconfigure(h.store, site) // what a reload may change without replacing the store: bounds, keys
	}
	return nil
}

// storeSite is what the store knows of this handler.
func (h *Handler) storeSite(ctx caddy.Context) tokencache.Site {
	site := tokencache.Site{
		// A session is valid only in a handler with the same identity.
		Binding:            "handler " + h.identity,
		SealKeys:           h.keys("session seal"),
		CookieName:         h.CookieName,
		MaxSessionsPerUser: h.MaxSessionsPerUser,
		Logger:             h.logger,
		Owner:              ownerOf,
		MaxLifetime:        time.Duration(h.MaxSessionLifetime),
	}
	if h.sessionInCookie {
		site.Storage = h.storageOf(ctx)
	}
	return site
}
