// The memory store's Revoker and Lister: ending sessions it did not hand
// to this request (the admin API, back-channel logout) and listing a
// user's sessions.

package tokencache

import (
	"context"
)

// EndUser implements Revoker: the user's shard is scanned for its tag.
func (m *Memory) EndUser(_ context.Context, subject string) (int, error) {
	tag := m.tagOf(subject)
	sh, now, n := &m.shards[tag[0]&(memoryShards-1)], m.now().UnixNano(), 0
	sh.mu.Lock()
	for k, e := range sh.sessions {
		if k.tag() == tag {
			if e.expires > now {
				n++
			}
			sh.remove(k)
		}
	}
	sh.mu.Unlock()
	return n, nil
}

// EndAll implements Revoker.
func (m *Memory) EndAll(context.Context) (int, error) {
	now, n := m.now().UnixNano(), 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += sh.live(now)
		clear(sh.sessions)
		clear(sh.userCounts)
		sh.bytes = 0
		sh.mu.Unlock()
	}
	return n, nil
}

// Count implements Revoker: exact, expired sessions not yet swept left out.
func (m *Memory) Count(context.Context) (int, bool, error) {
	now, n := m.now().UnixNano(), 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		n += sh.live(now)
		sh.mu.RUnlock()
	}
	return n, true, nil
}

// EndLogin implements Revoker. Sessions are indexed by user only, so
// every shard is scanned: a back-channel logout is rare, and a million
// sessions take tens of milliseconds.
func (m *Memory) EndLogin(_ context.Context, login string) (int, error) {
	now, n := m.now().UnixNano(), 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for k, e := range sh.sessions {
			if splitRecord(e.record).Login == login {
				if e.expires > now {
					n++
				}
				sh.remove(k)
			}
		}
		sh.mu.Unlock()
	}
	return n, nil
}

// UserSessions implements Lister.
func (m *Memory) UserSessions(_ context.Context, subject string) ([]Session, error) {
	tag := m.tagOf(subject)
	sh, now := &m.shards[tag[0]&(memoryShards-1)], m.now().UnixNano()
	var out []Session
	sh.mu.RLock()
	for k, e := range sh.sessions {
		if k.tag() == tag && e.expires > now {
			out = append(out, splitRecord(e.record))
		}
	}
	sh.mu.RUnlock()
	return out, nil
}
