// A bounded map whose entries end at a time of their own: what the handler
// remembers for a while (refreshes' results, verified bearers, the logout
// tokens seen) without ever growing past its bound.

package implicitgrant

import (
	"sync"
	"time"
)

// expiring maps keys to values until their time. Full, it drops its ended
// entries; still full, it keeps nothing new (the caller then does the work
// again, or refuses): memory never grows past max entries.
type expiring[K comparable, V any] struct {
	max     int
	mu      sync.RWMutex
	entries map[K]expiringEntry[V]
}

type expiringEntry[V any] struct {
	value V
	until time.Time
}

func newExpiring[K comparable, V any](max int) *expiring[K, V] {
	return &expiring[K, V]{max: max, entries: map[K]expiringEntry[V]{}}
}

// get is k's value, unless it has ended.
func (c *expiring[K, V]) get(k K, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		var zero V
		return zero, false
	}
	return e.value, true
}

// add keeps v for k until then, unless k has a live entry already; false
// when it has one, or when there is no room.
func (c *expiring[K, V]) add(k K, v V, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok && now.Before(e.until) {
		return false
	}
	if len(c.entries) >= c.max {
		for key, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, key)
			}
		}
		if len(c.entries) >= c.max {
			return false
		}
	}
	c.entries[k] = expiringEntry[V]{value: v, until: until}
	return true
}
