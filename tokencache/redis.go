package tokencache

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/rueidis"
)

// Redis keeps sessions in Redis (standalone, Sentinel or Cluster), so any
// number of Caddy instances share them, and logout on one is logout on all.
//
// Keys are prefix + "s:" + SHA-256(session id) and values are sealed with
// the secret: a Redis dump reveals neither session ids nor tokens. Reads
// are served from a local near-cache kept correct by Redis itself (RESP3
// client-side caching, CLIENT TRACKING in broadcast mode on the session
// prefix): when any instance deletes a session, or Redis expires it, every
// instance is told and drops its copy. When the connection drops, the
// whole near-cache is dropped, so an outage fails closed instead of serving
// stale sessions.
type Redis struct {
	*sealer
	client  rueidis.Client
	prefix  string
	binding string
	timeout time.Duration

	// near holds decrypted sessions by session id (a Memory: the same
	// zero-allocation lookup). byDigest maps the digests Redis names in
	// invalidations back to ids. reading marks the keys being read from
	// Redis right now; an invalidation sets the mark, and a read whose key
	// was invalidated meanwhile is not cached (see Get).
	near     *Memory
	nearMu   sync.Mutex
	byDigest map[[32]byte]string
	reading  map[[32]byte]bool
	limit    int

	waitReplicas int
	siteTag      string       // names the site in the index keys
	perUser      atomic.Int64 // sessions one user may have; 0: no limit
}

// RedisOptions configure NewRedis.
type RedisOptions struct {
	// URL as rueidis.ParseURL reads it: redis://user:pass@host:6379/0,
	// rediss:// for TLS, ?addr=host2:6379&addr=… for a cluster,
	// ?master_set=name for Sentinel (the hosts are then the sentinels).
	URL string
	// KeyPrefix is put before every key, e.g. "implicit_grant:".
	KeyPrefix string
	// Keys seal session values (32 bytes each, derived from the secrets):
	// the first seals, every one opens.
	Keys [][]byte
	// Binding is sealed in with each value as associated data (with the
	// key name): sessions of one site are not valid for another that
	// shares the Redis, prefix and secret.
	Binding string
	// Timeout bounds each Redis call, so an outage costs a request this
	// long at most and never piles up goroutines. Default 1s.
	Timeout time.Duration
	// NearCacheSize bounds the local copies. Default 100,000.
	NearCacheSize int
	// NearCacheBytes bounds the local copies' bytes. Default 64 MiB.
	NearCacheBytes int64
	// WaitReplicas: a new session counts only once this many replicas
	// have it (Redis WAIT, within Timeout). 0: do not wait.
	WaitReplicas int
	// MaxSessionsPerUser: a user's oldest sessions end past this many.
	// 0: no limit.
	MaxSessionsPerUser int
}

// NewRedis connects to Redis. It fails when Redis cannot be reached now.
func NewRedis(o RedisOptions) (*Redis, error) {
	s, err := newSealer(o.Keys)
	if err != nil {
		return nil, err
	}
	opt, err := rueidis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.NearCacheSize <= 0 {
		o.NearCacheSize = 100_000
	}
	if o.NearCacheBytes <= 0 {
		o.NearCacheBytes = 64 << 20
	}
	r := &Redis{
		sealer: s, prefix: o.KeyPrefix, binding: o.Binding, timeout: o.Timeout,
		waitReplicas: o.WaitReplicas,
		near:         newBoundedMemory(o.NearCacheSize, o.NearCacheBytes), byDigest: map[[32]byte]string{}, reading: map[[32]byte]bool{}, limit: o.NearCacheSize,
	}
	siteDigest := sha256.Sum256([]byte(o.Binding))
	r.siteTag = base64.RawURLEncoding.EncodeToString(siteDigest[:16])
	r.SetMaxPerUser(o.MaxSessionsPerUser)
	opt.OnInvalidations = r.invalidate
	if opt.Dialer.Timeout == 0 {
		opt.Dialer.Timeout = o.Timeout
	}
	if opt.ConnWriteTimeout == 0 {
		opt.ConnWriteTimeout = o.Timeout
	}
	// Broadcast tracking: Redis tells every instance about every change to a
	// session key, with no per-read registration. Reads are then plain GETs,
	// and our near-cache is the only cache (rueidis' own, kept small, stays
	// unused: a second cache could answer with a value we just deleted).
	opt.ClientTrackingOptions = []string{"PREFIX", o.KeyPrefix + "s:", "BCAST"}
	opt.CacheSizeEachConn = 1 << 16
	r.client, err = rueidis.NewClient(opt)
	if err != nil {
		r.near.Close()
		return nil, fmt.Errorf("%w: connecting to redis: %w", ErrUnavailable, err)
	}
	return r, nil
}

func (r *Redis) sessionKey(digest [32]byte) string {
	return r.prefix + "s:" + base64.RawURLEncoding.EncodeToString(digest[:])
}

// The indexes beside the sessions, for counting and ending them (the
// admin API) and the per-user limit:
//   - allKey: a sorted set of every session of the site, scored by expiry
//     (ended ones are dropped as it is written and counted);
//   - userKey: a sorted set per user, scored by creation, expiring with
//     the user's last session;
//   - loginKey: the same per login session of the server (sid), for
//     sessions that keep one (back-channel logout).
//
// Members are the sessions' digests, as in their keys. Each costs Redis
// about 100 bytes per session, beside the session's own ~400.
func (r *Redis) allKey() string { return r.prefix + "all:" + r.siteTag }

func (r *Redis) userKey(subject string) string {
	d := sha256.Sum256([]byte(r.binding + "\x00" + subject))
	return r.prefix + "u:" + base64.RawURLEncoding.EncodeToString(d[:])
}

func (r *Redis) loginKey(login string) string {
	d := sha256.Sum256([]byte(r.binding + "\x00login\x00" + login))
	return r.prefix + "l:" + base64.RawURLEncoding.EncodeToString(d[:])
}

func unixMilli(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// Put implements Store. The session is indexed before it is written: a
// session no index knows of could not be ended by the admin API.
func (r *Redis) Put(ctx context.Context, s Session) (string, error) {
	id := NewID()
	digest := sha256.Sum256([]byte(id))
	member := base64.RawURLEncoding.EncodeToString(digest[:])
	key := r.sessionKey(digest)
	ttl := time.Until(s.Expires)
	if ttl < time.Millisecond {
		return "", errors.New("session already expired")
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	b, now := r.client.B(), time.Now()
	// Each set expires with the last session in it: NX for a new set, GT
	// to extend an existing one.
	ms := ttl.Milliseconds()
	index := rueidis.Commands{
		b.Zadd().Key(r.allKey()).ScoreMember().ScoreMember(float64(s.Expires.UnixMilli()), member).Build(),
		b.Zremrangebyscore().Key(r.allKey()).Min("-inf").Max(unixMilli(now)).Build(),
		b.Pexpire().Key(r.allKey()).Milliseconds(ms).Nx().Build(),
		b.Pexpire().Key(r.allKey()).Milliseconds(ms).Gt().Build(),
	}
	indexed := func(key string) {
		index = append(index,
			b.Zadd().Key(key).ScoreMember().ScoreMember(float64(now.UnixMicro()), member).Build(),
			b.Pexpire().Key(key).Milliseconds(ms).Nx().Build(),
			b.Pexpire().Key(key).Milliseconds(ms).Gt().Build())
	}
	if s.Login != "" {
		indexed(r.loginKey(s.Login))
	}
	userKey := ""
	if s.Subject != "" {
		userKey = r.userKey(s.Subject)
		indexed(userKey)
		index = append(index, b.Zcard().Key(userKey).Build())
	}
	answers := r.client.DoMulti(ctx, index...)
	for _, a := range answers {
		if err := a.Error(); err != nil {
			return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	if err := r.write(ctx, key, s, ttl); err != nil {
		return "", err
	}
	if limit := int(r.perUser.Load()); userKey != "" && limit > 0 {
		if n, _ := answers[len(answers)-1].AsInt64(); n > int64(limit) {
			r.trimUser(ctx, userKey, member, limit)
		}
	}
	return id, nil
}

// SetMaxPerUser sets how many sessions one user may have (0: no limit).
func (r *Redis) SetMaxPerUser(n int) { r.perUser.Store(int64(max(0, n))) }

// write stores the sealed session, waiting for replicas when configured.
func (r *Redis) write(ctx context.Context, key string, s Session, ttl time.Duration) error {
	cmd := r.client.B().Set().Key(key).Value(rueidis.BinaryString(r.seal(s, []byte(r.binding+"|"+key)))).Px(ttl).Build()
	if r.waitReplicas == 0 {
		if err := r.client.Do(ctx, cmd).Error(); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil
	}
	// WAIT counts the replicas that have the writes of this connection:
	// it goes with the SET, in one round trip on one connection.
	wait := r.client.B().Wait().Numreplicas(int64(r.waitReplicas)).Timeout(int64(r.timeout / time.Millisecond)).Build()
	answers := r.client.DoMulti(ctx, cmd, wait)
	if err := answers[0].Error(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	acked, err := answers[1].AsInt64()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if acked < int64(r.waitReplicas) {
		// A failover now could lose the session: refuse it rather than hand
		// out a cookie that may stop working.
		return fmt.Errorf("%w: %d of %d replicas acknowledged the new session", ErrUnavailable, acked, r.waitReplicas)
	}
	return nil
}

// trimUser ends the user's oldest sessions past limit, never kept (the
// one just made). Members whose session has already ended (logged out,
// expired) leave the set on the way. Best effort: a failure leaves the
// user over the limit until the next login.
func (r *Redis) trimUser(ctx context.Context, userKey, kept string, limit int) {
	members, err := r.members(ctx, userKey)
	if err != nil {
		return
	}
	members = slices.DeleteFunc(members, func(m string) bool { return m == kept })
	exists := make(rueidis.Commands, len(members))
	for i, m := range members {
		exists[i] = r.client.B().Exists().Key(r.prefix + "s:" + m).Build()
	}
	var live, ended []string
	for i, a := range r.client.DoMulti(ctx, exists...) {
		if n, err := a.AsInt64(); err == nil && n == 0 {
			ended = append(ended, members[i])
		} else if err == nil {
			live = append(live, members[i]) // oldest first, as ZRANGE gave them
		}
	}
	if len(live) >= limit {
		ended = append(ended, r.endSessions(ctx, live[:len(live)-limit+1])...)
	}
	if len(ended) > 0 {
		_ = r.client.Do(ctx, r.client.B().Zrem().Key(userKey).Member(ended...).Build()).Error()
	}
}

// endSessions deletes the sessions of these members and takes them out of
// the site's set; it returns the members it deleted (every instance drops
// its copy: Redis tells them).
func (r *Redis) endSessions(ctx context.Context, members []string) []string {
	if len(members) == 0 {
		return nil
	}
	dels := make(rueidis.Commands, len(members))
	for i, m := range members {
		dels[i] = r.client.B().Del().Key(r.prefix + "s:" + m).Build()
	}
	var ended []string
	for i, a := range r.client.DoMulti(ctx, dels...) {
		if n, err := a.AsInt64(); err == nil && n > 0 {
			ended = append(ended, members[i])
		}
	}
	_ = r.client.Do(ctx, r.client.B().Zrem().Key(r.allKey()).Member(members...).Build()).Error()
	return ended
}

// EndUser implements Revoker.
func (r *Redis) EndUser(ctx context.Context, subject string) (int, error) {
	return r.endIndexed(ctx, r.userKey(subject))
}

// EndLogin implements Revoker.
func (r *Redis) EndLogin(ctx context.Context, login string) (int, error) {
	return r.endIndexed(ctx, r.loginKey(login))
}

// endIndexed ends the sessions an index names, and the index.
func (r *Redis) endIndexed(ctx context.Context, index string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	members, err := r.members(ctx, index)
	if err != nil {
		return 0, err
	}
	ended := r.endSessions(ctx, members)
	if err := r.client.Do(ctx, r.client.B().Del().Key(index).Build()).Error(); err != nil {
		return len(ended), fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return len(ended), nil
}

// UserSessions implements Lister.
func (r *Redis) UserSessions(ctx context.Context, subject string) ([]Session, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	members, err := r.members(ctx, r.userKey(subject))
	if err != nil || len(members) == 0 {
		return nil, err
	}
	gets := make(rueidis.Commands, len(members))
	for i, m := range members {
		gets[i] = r.client.B().Get().Key(r.prefix + "s:" + m).Build()
	}
	var out []Session
	for i, a := range r.client.DoMulti(ctx, gets...) {
		raw, err := a.AsBytes()
		if err != nil {
			continue // ended meanwhile (nil), or unreadable: nothing to revoke
		}
		if s, ok := r.open(raw, []byte(r.binding+"|"+r.prefix+"s:"+members[i])); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// members are the sessions an index names, oldest first.
func (r *Redis) members(ctx context.Context, index string) ([]string, error) {
	members, err := r.client.Do(ctx, r.client.B().Zrange().Key(index).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return members, nil
}

// EndAll implements Revoker, a batch of sessions at a time.
func (r *Redis) EndAll(ctx context.Context) (int, error) {
	const batch = 500
	total := 0
	for {
		callCtx, cancel := context.WithTimeout(ctx, r.timeout)
		members, err := r.client.Do(callCtx, r.client.B().Zrange().Key(r.allKey()).Min("0").Max(strconv.Itoa(batch-1)).Build()).AsStrSlice()
		if err != nil {
			cancel()
			return total, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		total += len(r.endSessions(callCtx, members))
		cancel()
		if len(members) < batch {
			return total, nil
		}
	}
}

// Count implements Revoker: the site's set, once ended sessions are
// dropped from it. It counts the sessions of every instance sharing the
// Redis; it is exact unless Redis evicted session keys (a maxmemory
// policy) or someone deleted them by hand.
func (r *Redis) Count(ctx context.Context) (int, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	b := r.client.B()
	answers := r.client.DoMulti(ctx,
		b.Zremrangebyscore().Key(r.allKey()).Min("-inf").Max(unixMilli(time.Now())).Build(),
		b.Zcard().Key(r.allKey()).Build())
	n, err := answers[1].AsInt64()
	if err != nil {
		return 0, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return int(n), true, nil
}

// Get implements Store. A near-cache hit costs what a Memory lookup does.
func (r *Redis) Get(ctx context.Context, cookieValue string) (Session, bool, error) {
	if s, ok, _ := r.near.Get(ctx, cookieValue); ok {
		return s, true, nil
	}
	return r.Latest(ctx, cookieValue)
}

// Latest implements SharedStore: the session as Redis has it now (and
// then in the near-cache).
func (r *Redis) Latest(ctx context.Context, cookieValue string) (Session, bool, error) {
	if _, ok := decodeKey(cookieValue); !ok {
		return Session{}, false, nil
	}
	digest := sha256.Sum256([]byte(cookieValue))
	r.nearMu.Lock()
	r.reading[digest] = false
	r.nearMu.Unlock()

	key := r.sessionKey(digest)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	raw, err := r.client.Do(ctx, r.client.B().Get().Key(key).Build()).AsBytes()
	r.nearMu.Lock()
	invalidated, stillMarked := r.reading[digest]
	delete(r.reading, digest)
	r.nearMu.Unlock()
	if rueidis.IsRedisNil(err) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s, ok := r.open(raw, []byte(r.binding+"|"+key))
	if !ok || !time.Now().Before(s.Expires) {
		return Session{}, false, nil
	}
	if stillMarked && !invalidated { // nothing changed this key while we read it
		r.nearMu.Lock()
		if len(r.byDigest) >= 2*r.limit { // ids the Memory evicted linger here: start over
			clear(r.byDigest)
			r.near.clear()
		}
		r.byDigest[digest] = cookieValue
		r.near.set(cookieValue, s)
		r.nearMu.Unlock()
	}
	return s, true, nil
}

// Replace implements Store: SET XX KEEPTTL writes the new record only
// where the session still is, and its expiry stays; every instance's copy
// goes (Redis tells them), this one's at once.
func (r *Redis) Replace(ctx context.Context, cookieValue string, s Session) (string, bool, error) {
	old, ok, err := r.Latest(ctx, cookieValue)
	if err != nil || !ok {
		return "", false, err
	}
	s.Expires = old.Expires // sealed in with the record
	digest := sha256.Sum256([]byte(cookieValue))
	key := r.sessionKey(digest)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err = r.client.Do(ctx, r.client.B().Set().Key(key).Value(rueidis.BinaryString(r.seal(s, []byte(r.binding+"|"+key)))).Xx().Keepttl().Build()).Error()
	r.forget(digest)
	if rueidis.IsRedisNil(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return cookieValue, true, nil
}

// unlockScript deletes a lock only while it is still the caller's: one
// held past its time by a slow instance must not free another's.
var unlockScript = rueidis.NewLuaScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// LockRefresh implements SharedStore with SET NX PX under a random value.
func (r *Redis) LockRefresh(ctx context.Context, cookieValue string, ttl time.Duration) (func(), bool, error) {
	digest := sha256.Sum256([]byte(cookieValue))
	key := r.prefix + "refresh:" + base64.RawURLEncoding.EncodeToString(digest[:])
	holder := NewID()
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := r.client.Do(cctx, r.client.B().Set().Key(key).Value(holder).Nx().Px(ttl).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		_ = unlockScript.Exec(uctx, r.client, []string{key}, []string{holder}).Error() // else it expires with ttl
	}, true, nil
}

// Delete implements Store; every instance's copy goes with it.
func (r *Redis) Delete(ctx context.Context, cookieValue string) error {
	digest := sha256.Sum256([]byte(cookieValue))
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	b := r.client.B()
	for _, a := range r.client.DoMulti(ctx,
		b.Del().Key(r.sessionKey(digest)).Build(),
		b.Zrem().Key(r.allKey()).Member(base64.RawURLEncoding.EncodeToString(digest[:])).Build()) {
		if err := a.Error(); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	r.forget(digest)
	return nil
}

// ClaimState implements Store with SET NX: the first instance to claim a
// state wins, wherever the replay lands.
func (r *Redis) ClaimState(ctx context.Context, state string, until time.Time) (bool, error) {
	digest := sha256.Sum256([]byte(state))
	key := r.prefix + "state:" + base64.RawURLEncoding.EncodeToString(digest[:])
	ttl := max(time.Until(until), time.Second)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := r.client.Do(ctx, r.client.B().Set().Key(key).Value("1").Nx().Px(ttl).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return true, nil
}

// invalidate is called by rueidis with the keys Redis says changed; nil
// means everything (the connection was lost or flushed).
func (r *Redis) invalidate(keys []rueidis.RedisMessage) {
	if keys == nil {
		r.forgetAll()
		return
	}
	sessionPrefix := r.prefix + "s:"
	for _, k := range keys {
		name, err := k.ToString()
		if err != nil || !strings.HasPrefix(name, sessionPrefix) {
			continue
		}
		var digest [32]byte
		if n, err := base64.RawURLEncoding.Decode(digest[:], []byte(name[len(sessionPrefix):])); err == nil && n == len(digest) {
			r.forget(digest)
		}
	}
}

// forget drops the near-cache copy of a session.
func (r *Redis) forget(digest [32]byte) {
	r.nearMu.Lock()
	defer r.nearMu.Unlock()
	if _, inFlight := r.reading[digest]; inFlight {
		r.reading[digest] = true
	}
	if id, ok := r.byDigest[digest]; ok {
		delete(r.byDigest, digest)
		_ = r.near.Delete(context.Background(), id)
	}
}

// forgetAll drops every near-cache copy and marks the reads in flight, so
// that what they fetched is not cached.
func (r *Redis) forgetAll() {
	r.nearMu.Lock()
	defer r.nearMu.Unlock()
	for d := range r.reading {
		r.reading[d] = true
	}
	clear(r.byDigest)
	r.near.clear()
}

// Rekey takes a new key ring (secret rotation). When the ring changed, the
// local copies go too: they were opened with keys the new ring may not
// hold, and Redis will answer for them again.
func (r *Redis) Rekey(keys [][]byte) error {
	if r.sameRing(keys) {
		return nil
	}
	if err := r.sealer.Rekey(keys); err != nil {
		return err
	}
	r.forgetAll()
	return nil
}

// Close disconnects.
func (r *Redis) Close() error {
	r.client.Close()
	return r.near.Close()
}

var (
	_ SharedStore = (*Redis)(nil)
	_ Store       = (*Redis)(nil)
	_ Revoker     = (*Redis)(nil)
)

// RedisConfig is the Redis store's configuration: sessions in Redis,
// shared by every Caddy instance that uses it.
type RedisConfig struct {
	// Where Redis is, e.g. redis://user:pass@host:6379/0; rediss:// for
	// TLS; ?addr=host2:6379&addr=host3:6379 for a cluster;
	// ?master_set=mymaster for Sentinel (the hosts are then sentinels).
	// Placeholders such as {env.REDIS_URL} are replaced.
	URL string `json:"url,omitempty"`

	// Prefix of every key. Default "implicit_grant:".
	KeyPrefix string `json:"key_prefix,omitempty"`

	// How long one call may take before the request fails with 503.
	// Default 1s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// A new session counts only once this many replicas have it (Redis
	// WAIT, within timeout): a failover then cannot lose a session a
	// browser was given. Default 0: do not wait.
	WaitReplicas int `json:"wait_replicas,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (RedisConfig) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: Namespace + ".redis", New: func() caddy.Module { return new(RedisConfig) }}
}

// Provision replaces placeholders, fills in defaults and checks the values.
func (c *RedisConfig) Provision(caddy.Context) error {
	c.URL = caddy.NewReplacer().ReplaceKnown(c.URL, "")
	if c.KeyPrefix == "" {
		c.KeyPrefix = "implicit_grant:"
	}
	if c.URL == "" {
		return errors.New("store: redis needs a url, e.g. redis://127.0.0.1:6379/0")
	}
	if u, err := url.Parse(c.URL); err != nil || u.Host == "" && u.Scheme != "unix" {
		return errors.New("store: redis url is not a URL such as redis://host:6379/0") // it may hold a password: not repeated
	}
	if c.Timeout < 0 {
		return fmt.Errorf("store: timeout %s must be positive", time.Duration(c.Timeout))
	}
	if c.WaitReplicas < 0 || c.WaitReplicas > 16 {
		return fmt.Errorf("store: wait_replicas %d must be from 0 to 16", c.WaitReplicas)
	}
	return nil
}

// UnmarshalCaddyfile reads "redis <url> { key_prefix <p>; timeout <d> }".
func (c *RedisConfig) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "redis"
	if !d.Args(&c.URL) {
		return d.Errf("store: redis needs a url, e.g. redis://127.0.0.1:6379/0")
	}
	if d.NextArg() {
		return d.Errf("store: redis takes one url")
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("store: %s given more than once", opt)
		}
		seen[opt] = true
		var val string
		if !d.Args(&val) || d.NextArg() {
			return d.Errf("%s: expected one value", opt)
		}
		switch opt {
		case "key_prefix":
			c.KeyPrefix = val
		case "timeout":
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur <= 0 {
				return d.Errf("timeout: bad duration value '%s'", val)
			}
			c.Timeout = caddy.Duration(dur)
		case "wait_replicas":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 || n > 16 {
				return d.Errf("wait_replicas: expected a number of replicas from 0 to 16, got '%s'", val)
			}
			c.WaitReplicas = n
		default:
			return d.Errf("store: unrecognized option for redis: %s", opt)
		}
	}
	return nil
}

// Reconfigure gives the shared store a reload's key ring (secret
// rotation) and per-user limit.
func (c *RedisConfig) Reconfigure(s Store, site Site) {
	if r, ok := s.(*Redis); ok {
		_ = r.Rekey(site.SealKeys)
		r.SetMaxPerUser(site.MaxSessionsPerUser)
	}
}

// PoolKey: configs naming the same Redis, prefix and timeout for the same
// site share one connection across reloads, whatever their secrets.
func (c *RedisConfig) PoolKey(site Site) string {
	return "redis|" + c.URL + "|" + c.KeyPrefix + "|" + time.Duration(c.Timeout).String() + "|" + strconv.Itoa(c.WaitReplicas) + "|" + site.Binding
}

// Open connects; it fails when Redis cannot be reached now.
func (c *RedisConfig) Open(site Site) (Store, error) {
	return NewRedis(RedisOptions{
		URL: c.URL, KeyPrefix: c.KeyPrefix, Keys: site.SealKeys, Binding: site.Binding, Timeout: time.Duration(c.Timeout), WaitReplicas: c.WaitReplicas,
		MaxSessionsPerUser: site.MaxSessionsPerUser,
	})
}

// newBoundedMemory is a near-cache bounded in entries and in bytes.
func newBoundedMemory(entries int, bytes int64) *Memory {
	m := NewMemory(entries, time.Minute)
	m.SetMaxBytes(bytes)
	return m
}
