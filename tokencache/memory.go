package tokencache

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/implicitgrant/caddy-implicit-grant/internal/coarseclock"
	"go.uber.org/zap"
)

// memoryShards splits the map so that concurrent requests rarely wait on
// the same lock; a power of two so the shard is picked with a mask.
const memoryShards = 64

// evictionSample is how many entries a full shard looks at to pick the one
// that expires soonest (the approach Redis takes for its LRU: sampling
// instead of a list that costs memory on every entry).
const evictionSample = 8

// sessionKey is a decoded session id: 24 bytes instead of a 32-byte string
// plus its 16-byte header keeps a million sessions small (a map slot is
// 48 bytes).
type sessionKey [idBytes]byte

type memoryEntry struct {
	record  string // joinRecord: authorization and identity in one string
	expires int64  // unix nanoseconds
	created uint64 // the store's count of sessions stored until this one: which of a user's sessions is the oldest
}

type memoryShard struct {
	mu       sync.RWMutex
	sessions map[sessionKey]memoryEntry
	bytes    int64 // the records' bytes, for a byte bound
	// How many sessions each bucket of user tags holds (see userBuckets).
	userCounts []uint32
	// Keep each shard's lock on cache lines of its own: readers on two
	// cores otherwise fight over a line they do not even share logically.
	_ [128 - 64]byte
}

// userBuckets: each shard counts its sessions in this many buckets of user
// tags, so a login looks for its user's other sessions only when its
// bucket holds more than the per-user limit: at a million sessions a
// bucket holds about four, and the scan that costs ~100 µs at that size
// is skipped for nearly every login. 16 KiB per shard, 1 MiB per store.
const userBuckets = 1 << 12

func bucketOf(k *sessionKey) int {
	return int(binary.LittleEndian.Uint16(k[1:3]) & (userBuckets - 1))
}

// live counts the sessions not expired at now; the shard's lock is held.
func (sh *memoryShard) live(now int64) (n int) {
	for _, e := range sh.sessions {
		if e.expires > now {
			n++
		}
	}
	return n
}

// insert adds k, which is not in the shard, keeping the counts; the
// shard's lock is held.
func (sh *memoryShard) insert(k sessionKey, e memoryEntry) {
	sh.sessions[k] = e
	sh.bytes += int64(len(e.record))
	sh.userCounts[bucketOf(&k)]++
}

// remove deletes k, keeping the counts; the shard's lock is held.
func (sh *memoryShard) remove(k sessionKey) {
	if e, ok := sh.sessions[k]; ok {
		sh.bytes -= int64(len(e.record))
		sh.userCounts[bucketOf(&k)]--
		delete(sh.sessions, k)
	}
}

// Memory is the in-process store: TTL-aware, bounded and safe for heavy
// concurrent use. Sessions are lost when the process exits (not on config
// reloads: the handler shares one Memory across them).
type Memory struct {
	shards      [memoryShards]memoryShard
	statesMu    sync.Mutex
	states      map[[32]byte]int64 // SHA-256 of used login states → when the record may go (logins are rare: one lock is enough)
	statesFloor int64              // records ending at or before this were dropped for room: such claims count as made
	maxClaims   int
	stored      atomic.Uint64 // sessions stored so far: the order of logins
	perShard    atomic.Int64
	perUser     atomic.Int64 // 0: no per-user limit
	tagKey      [32]byte     // keys the user tags in session ids (random: they mean nothing elsewhere)
	shardBytes  atomic.Int64 // 0: no byte bound
	evictions   atomic.Uint64
	stopSweep   chan struct{}
	sweepDone   chan struct{}
	stopOnce    sync.Once
	now         func() time.Time
	release     func() // the hold on coarseclock, which expiry checks read
	OnEviction  func() // called, if set, each time a live session is evicted for room
}

// NewMemory returns a store that holds at most maxSessions sessions
// (rounded up to a multiple of 64) and sweeps expired ones every
// sweepEvery until Close.
func NewMemory(maxSessions int, sweepEvery time.Duration) *Memory {
	m := &Memory{
		stopSweep: make(chan struct{}),
		sweepDone: make(chan struct{}),
		now:       time.Now,
		states:    make(map[[32]byte]int64),
		maxClaims: DefaultMaxClaims,
	}
	m.SetMaxSessions(maxSessions)
	_, _ = rand.Read(m.tagKey[:])
	for i := range m.shards {
		m.shards[i].sessions = make(map[sessionKey]memoryEntry)
		m.shards[i].userCounts = make([]uint32, userBuckets)
	}
	m.release = coarseclock.Hold()
	go m.sweepLoop(sweepEvery)
	return m
}

// SetMaxSessions changes the bound (rounded up to a multiple of 64); a
// lower bound evicts as shards next grow.
func (m *Memory) SetMaxSessions(n int) {
	m.perShard.Store(int64(max(1, (n+memoryShards-1)/memoryShards)))
}

// SetMaxBytes bounds the bytes of the records kept (0: no bound): the
// Redis store's local copies are bounded this way, whatever token sizes.
func (m *Memory) SetMaxBytes(n int64) {
	m.shardBytes.Store(max(0, n/memoryShards))
}

// DefaultMaxClaims bounds the used-state records (and the cookie store's
// logouts): past it the records ending soonest make room (see
// dropClaimsLocked), rather than memory growing with a flood.
const DefaultMaxClaims = 1_000_000

// shard is where a key lives: picked by its first byte, the user tag's
// first byte for a user's sessions.
func (m *Memory) shard(k *sessionKey) *memoryShard {
	return &m.shards[k[0]&(memoryShards-1)]
}

func decodeKey(cookieValue string) (k sessionKey, ok bool) {
	if base64.RawURLEncoding.DecodedLen(len(cookieValue)) != len(k) {
		return k, false
	}
	n, err := base64.RawURLEncoding.Decode(k[:], []byte(cookieValue))
	return k, err == nil && n == len(k)
}

// userTagBytes: a session id made for a user starts with this many bytes
// of a keyed digest of its subject; the other 16 bytes (128 bits) are
// random, still far past guessing. The tag also picks the shard, so all of
// a user's sessions are in one shard, where the per-user limit and ending a
// user's sessions find them by scanning 1/64 of the store. An index by user
// would cost every session about 100 bytes (a fifth of its size); the tag
// costs none, and it goes away with the session it is part of.
const userTagBytes = 8

type userTag [userTagBytes]byte

func (m *Memory) tagOf(subject string) userTag {
	mac := hmac.New(sha256.New, m.tagKey[:])
	mac.Write([]byte(subject))
	return userTag(mac.Sum(nil))
}

func (k *sessionKey) tag() userTag { return userTag(k[:userTagBytes]) }

// Put implements Store. A session with a subject ends that user's oldest
// ones past the per-user limit.
func (m *Memory) Put(_ context.Context, s Session) (string, error) {
	var k sessionKey
	_, _ = rand.Read(k[:])
	if s.Subject != "" {
		tag := m.tagOf(s.Subject)
		copy(k[:], tag[:])
	}
	m.setKey(k, s)
	if limit := m.perUser.Load(); s.Subject != "" && limit > 0 {
		m.trimUser(k, int(limit))
	}
	return base64.RawURLEncoding.EncodeToString(k[:]), nil
}

// SetMaxPerUser sets how many sessions one user may have (0: no limit).
func (m *Memory) SetMaxPerUser(n int) { m.perUser.Store(int64(max(0, n))) }

// trimUser ends the sessions of kept's user past limit, the oldest logins
// first (not those closest to expiry: servers count expires_in down in
// whole seconds, so a later login may end sooner), never kept itself. The
// scan reads under the shared lock: most logins end nothing.
func (m *Memory) trimUser(kept sessionKey, limit int) {
	type session struct {
		k       sessionKey
		created uint64
	}
	var others []session
	now := m.now().UnixNano()
	sh, tag := m.shard(&kept), kept.tag()
	sh.mu.RLock()
	if sh.userCounts[bucketOf(&kept)] <= uint32(limit) {
		sh.mu.RUnlock()
		return // the bucket, kept included, holds no more than the limit
	}
	for k, e := range sh.sessions {
		if k.tag() == tag && k != kept && e.expires > now {
			others = append(others, session{k, e.created})
		}
	}
	sh.mu.RUnlock()
	if len(others) < limit {
		return
	}
	slices.SortFunc(others, func(a, b session) int { return cmp.Compare(a.created, b.created) })
	sh.mu.Lock()
	for _, o := range others[:len(others)-limit+1] {
		sh.remove(o.k)
	}
	sh.mu.Unlock()
}

// set stores s under an id made by NewID (the Redis store keeps its local
// copies this way).
func (m *Memory) set(id string, s Session) {
	if k, ok := decodeKey(id); ok {
		m.setKey(k, s)
	}
}

// setKey stores s under k, making room in its shard.
func (m *Memory) setKey(k sessionKey, s Session) {
	e := memoryEntry{record: joinRecord(s), expires: s.Expires.UnixNano(), created: m.stored.Add(1)}
	maxBytes := m.shardBytes.Load()
	if maxBytes > 0 && int64(len(e.record)) > maxBytes {
		return // larger than a shard may hold: not kept (a near-cache then reads Redis)
	}
	sh := m.shard(&k)
	sh.mu.Lock()
	sh.remove(k)
	for len(sh.sessions) > 0 && (int64(len(sh.sessions)) >= m.perShard.Load() || maxBytes > 0 && sh.bytes+int64(len(e.record)) > maxBytes) {
		m.evictLocked(sh)
	}
	sh.insert(k, e)
	sh.mu.Unlock()
}

// clear drops every session.
func (m *Memory) clear() { _, _ = m.EndAll(context.Background()) }

// evictLocked makes room in a full shard: expired entries go first, else
// the sampled entry that expires soonest, which is also the oldest one
// when tokens have similar lifetimes.
func (m *Memory) evictLocked(sh *memoryShard) {
	now := m.now().UnixNano()
	var victim sessionKey
	soonest, seen := int64(0), 0
	for k, e := range sh.sessions { // map iteration starts at a random place
		if e.expires <= now {
			sh.remove(k)
			return
		}
		if seen == 0 || e.expires < soonest {
			victim, soonest = k, e.expires
		}
		if seen++; seen == evictionSample {
			break
		}
	}
	sh.remove(victim)
	m.evictions.Add(1)
	if m.OnEviction != nil {
		m.OnEviction()
	}
}

// Get implements Store. It does not allocate.
func (m *Memory) Get(_ context.Context, cookieValue string) (Session, bool, error) {
	k, ok := decodeKey(cookieValue)
	if !ok {
		return Session{}, false, nil
	}
	sh := m.shard(&k)
	sh.mu.RLock()
	e, ok := sh.sessions[k]
	sh.mu.RUnlock()
	if !ok || e.expires <= coarseclock.Now() { // a session lives at most coarseclock.Tick past its expiry (against a leeway of seconds)
		return Session{}, false, nil
	}
	s := splitRecord(e.record)
	s.Expires = time.Unix(0, e.expires)
	return s, true, nil
}

// Replace implements Store.
func (m *Memory) Replace(_ context.Context, cookieValue string, s Session) (string, bool, error) {
	k, ok := decodeKey(cookieValue)
	if !ok {
		return "", false, nil
	}
	record := joinRecord(s)
	sh := m.shard(&k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.sessions[k]
	if !ok || e.expires <= m.now().UnixNano() {
		return "", false, nil
	}
	sh.bytes += int64(len(record) - len(e.record))
	e.record = record
	sh.sessions[k] = e
	return cookieValue, true, nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, cookieValue string) error {
	if k, ok := decodeKey(cookieValue); ok {
		sh := m.shard(&k)
		sh.mu.Lock()
		sh.remove(k)
		sh.mu.Unlock()
	}
	return nil
}

// ClaimState implements Store. A state is remembered by its digest: a
// fixed 32 bytes, whatever the request that carried it.
func (m *Memory) ClaimState(_ context.Context, state string, until time.Time) (bool, error) {
	return m.claim(sha256.Sum256([]byte(state)), until)
}

func (m *Memory) claim(key [32]byte, until time.Time) (bool, error) {
	m.statesMu.Lock()
	defer m.statesMu.Unlock()
	now := m.now().UnixNano()
	if exp, used := m.states[key]; used && exp > now || until.UnixNano() <= m.statesFloor {
		return false, nil
	}
	if len(m.states) >= m.maxClaims {
		m.dropClaimsLocked(now)
	}
	m.states[key] = until.UnixNano()
	return true, nil
}

// dropClaimsLocked makes room in a full table: the expired records go,
// and, if that is not enough, the eighth that end soonest. Everything
// ending by then counts as claimed from now on (statesFloor): a dropped
// state can never be used again, and what a flood costs is that the
// oldest pending logins (or, in the cookie store, the sessions closest to
// their end) must start again; never that every login fails.
func (m *Memory) dropClaimsLocked(now int64) {
	for k, exp := range m.states {
		if exp <= now {
			delete(m.states, k)
		}
	}
	if len(m.states) < m.maxClaims {
		return
	}
	ends := make([]int64, 0, len(m.states))
	for _, exp := range m.states {
		ends = append(ends, exp)
	}
	slices.Sort(ends)
	floor := ends[len(ends)/8]
	for k, exp := range m.states {
		if exp <= floor {
			delete(m.states, k)
		}
	}
	m.statesFloor = max(m.statesFloor, floor)
}

// claimed reports whether key was claimed for a record that ends at
// until: a live claim exists, or the table dropped records ending then.
func (m *Memory) claimed(key [32]byte, until time.Time) bool {
	m.statesMu.Lock()
	defer m.statesMu.Unlock()
	exp, ok := m.states[key]
	return ok && exp > m.now().UnixNano() || until.UnixNano() <= m.statesFloor
}

// Len returns how many sessions are held, expired ones not yet swept included.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		n += len(sh.sessions)
		sh.mu.RUnlock()
	}
	return n
}

// Evictions returns how many live sessions were dropped to make room.
func (m *Memory) Evictions() uint64 { return m.evictions.Load() }

func (m *Memory) sweepLoop(every time.Duration) {
	defer close(m.sweepDone)
	sweep := time.NewTicker(every)
	defer sweep.Stop()
	for {
		select {
		case <-m.stopSweep:
			return
		case <-sweep.C:
			m.Sweep()
		}
	}
}

// Sweep removes expired sessions and state records, holding one shard's
// lock at a time so requests on the other shards never wait.
func (m *Memory) Sweep() {
	for i := range m.shards {
		sh := &m.shards[i]
		now := m.now().UnixNano()
		sh.mu.Lock()
		for k, e := range sh.sessions {
			if e.expires <= now {
				sh.remove(k)
			}
		}
		sh.mu.Unlock()
	}
	now := m.now().UnixNano()
	m.statesMu.Lock()
	for s, exp := range m.states {
		if exp <= now {
			delete(m.states, s)
		}
	}
	m.statesMu.Unlock()
}

// Close stops the sweeper. The sessions stay readable.
func (m *Memory) Close() error {
	m.stopOnce.Do(func() { close(m.stopSweep); m.release() })
	<-m.sweepDone
	return nil
}

var (
	_ Store   = (*Memory)(nil)
	_ Revoker = (*Memory)(nil)
)

// DefaultMaxSessions bounds the memory store when max_sessions is not set.
const DefaultMaxSessions = 1_000_000

// MemoryConfig is the memory store's configuration: sessions in this
// process, kept across config reloads (the default store).
type MemoryConfig struct {
	// The most sessions kept; when full, the session closest to expiry
	// goes first (logged). Default 1,000,000.
	MaxSessions int `json:"max_sessions,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (MemoryConfig) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: Namespace + ".memory", New: func() caddy.Module { return new(MemoryConfig) }}
}

// Reconfigure applies this config's bound to the store a reload shares:
// the sessions stay.
func (c *MemoryConfig) Reconfigure(s Store, site Site) {
	if m, ok := s.(*Memory); ok {
		m.SetMaxSessions(c.MaxSessions)
		m.SetMaxPerUser(site.MaxSessionsPerUser)
	}
}

// Provision fills in the default and checks the bound.
func (c *MemoryConfig) Provision(caddy.Context) error {
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.MaxSessions < 0 {
		return fmt.Errorf("store: max_sessions %d must be positive", c.MaxSessions)
	}
	return nil
}

// UnmarshalCaddyfile reads "memory { max_sessions <n> }".
func (c *MemoryConfig) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := noArgs(d); err != nil {
		return err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "max_sessions":
			if c.MaxSessions != 0 {
				return d.Errf("store: max_sessions given more than once")
			}
			var val string
			if !d.Args(&val) || d.NextArg() {
				return d.Errf("max_sessions: expected one value")
			}
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 {
				return d.Errf("max_sessions: expected a positive integer, got '%s'", val)
			}
			c.MaxSessions = n
		default:
			return d.Errf("store: unrecognized option for memory: %s", d.Val())
		}
	}
	return nil
}

// PoolKey: one memory store per site.
func (c *MemoryConfig) PoolKey(site Site) string { return "memory|" + site.Binding }

// Open makes the store; a full store warns at most once a minute, with
// the running total, however hard it is pushed.
func (c *MemoryConfig) Open(site Site) (Store, error) {
	m := NewMemory(c.MaxSessions, time.Minute)
	m.SetMaxPerUser(site.MaxSessionsPerUser)
	var lastLog atomic.Int64
	m.OnEviction = func() {
		now := time.Now().Unix()
		if last := lastLog.Load(); now-last >= 60 && lastLog.CompareAndSwap(last, now) {
			site.Logger.Warn("session store full: evicting the sessions closest to expiry; raise max_sessions",
				zap.Uint64("evicted_total", m.Evictions()))
		}
	}
	return m, nil
}
