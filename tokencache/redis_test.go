package tokencache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testredis"
)

func newTestRedis(t testing.TB, url, prefix string) *Redis {
	t.Helper()
	r, err := NewRedis(RedisOptions{URL: url, KeyPrefix: prefix, Keys: [][]byte{bytes.Repeat([]byte{9}, 32)}, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRedisConformance(t *testing.T) {
	srv := testredis.Start(t)
	n := 0
	testStore(t, func(t *testing.T) Store {
		n++
		return newTestRedis(t, srv.URL, "conf"+strings.Repeat("x", n)+":")
	})
}

// TestRedisConformanceCIServer: the same suite against the long-running
// redis-server that .ci/run starts, beside the ones the tests start.
func TestRedisConformanceCIServer(t *testing.T) {
	url := testredis.External(t)
	n := 0
	testStore(t, func(t *testing.T) Store {
		n++
		return newTestRedis(t, url, fmt.Sprintf("ci-%d-%d:", time.Now().UnixNano(), n))
	})
}

// TestRedisSentinelConformance: the same suite through a Sentinel URL.
func TestRedisSentinelConformance(t *testing.T) {
	sentinel := testredis.StartSentinel(t)
	n := 0
	testStore(t, func(t *testing.T) Store {
		n++
		return newTestRedis(t, sentinel.URL, fmt.Sprintf("sentinel%d:", n))
	})
}

// TestRedisClusterConformance: the same suite on a three-master cluster,
// where keys (sessions, state claims) spread over the nodes.
func TestRedisClusterConformance(t *testing.T) {
	url := testredis.StartCluster(t)
	n := 0
	testStore(t, func(t *testing.T) Store {
		n++
		return newTestRedis(t, url, fmt.Sprintf("cluster%d:", n))
	})
}

// TestRedisSharedAcrossInstances: two clients (two Caddy instances) see
// each other's sessions, and a delete on one reaches the other's near-cache.
func TestRedisSharedAcrossInstances(t *testing.T) {
	srv := testredis.Start(t)
	a, b := newTestRedis(t, srv.URL, "ig:"), newTestRedis(t, srv.URL, "ig:")
	ctx := context.Background()
	v, err := a.Put(ctx, Session{Authorization: "Bearer shared", Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // the second read on b is served from its near-cache
		if s, ok, err := b.Get(ctx, v); err != nil || !ok || s.Authorization != "Bearer shared" {
			t.Fatalf("b reads a's session: %+v %v %v", s, ok, err)
		}
	}
	other, err := NewRedis(RedisOptions{URL: srv.URL, KeyPrefix: "ig:", Keys: [][]byte{bytes.Repeat([]byte{9}, 32)}, Binding: "another site"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, ok, _ := other.Get(ctx, v); ok {
		t.Error("a session was valid for another binding (site) sharing Redis, prefix and key")
	}
	if err := a.Delete(ctx, v); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(100 * time.Millisecond)
	for {
		if _, ok, _ := b.Get(ctx, v); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b still serves the session 100 ms after a deleted it")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if first, _ := a.ClaimState(ctx, "st", time.Now().Add(time.Minute)); !first {
		t.Fatal("first claim refused")
	}
	if again, _ := b.ClaimState(ctx, "st", time.Now().Add(time.Minute)); again {
		t.Error("a state claimed on a was claimable again on b")
	}
}

func TestRedisValuesAreSealed(t *testing.T) {
	srv := testredis.Start(t)
	r := newTestRedis(t, srv.URL, "seal:")
	ctx := context.Background()
	v, _ := r.Put(ctx, Session{Authorization: "Bearer plain-token-text", Expires: time.Now().Add(time.Hour), Subject: "alice@corp.example"})
	keys, err := r.client.Do(ctx, r.client.B().Keys().Pattern("seal:*").Build()).AsStrSlice()
	if err != nil || len(keys) != 3 { // the session, the site's index, the user's index
		t.Fatalf("keys: %v %v", keys, err)
	}
	var session string
	for _, k := range keys {
		var contents []byte
		if strings.HasPrefix(k, "seal:s:") {
			session = k
			contents, _ = r.client.Do(ctx, r.client.B().Get().Key(k).Build()).AsBytes()
		} else {
			members, _ := r.client.Do(ctx, r.client.B().Zrange().Key(k).Min("0").Max("-1").Build()).AsStrSlice()
			contents = []byte(strings.Join(members, " "))
		}
		for _, secret := range []string{v, "plain-token-text", "alice"} {
			if strings.Contains(k, secret) || bytes.Contains(contents, []byte(secret)) {
				t.Errorf("%q is readable in Redis, in %s", secret, k)
			}
		}
		ttl, _ := r.client.Do(ctx, r.client.B().Pttl().Key(k).Build()).AsInt64()
		if ttl <= 0 || ttl > time.Hour.Milliseconds() {
			t.Errorf("%s: PTTL %d, want the session's lifetime", k, ttl)
		}
	}
	if session == "" {
		t.Fatalf("no session key among %v", keys)
	}
}

// TestRedisOutageFailsClosed: with Redis gone, reads error (no stale
// near-cache answers), nothing hangs, and service comes back by itself.
func TestRedisOutageFailsClosed(t *testing.T) {
	srv := testredis.Start(t)
	r := newTestRedis(t, srv.URL, "out:")
	ctx := context.Background()
	v, _ := r.Put(ctx, Session{Authorization: "Bearer x", Expires: time.Now().Add(time.Hour)})
	if _, ok, _ := r.Get(ctx, v); !ok {
		t.Fatal("no session")
	}
	srv.Stop()
	deadline := time.Now().Add(3 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		start := time.Now()
		_, _, err = r.Get(ctx, v)
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("a read during the outage took %v", took)
		}
		if err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err == nil {
		t.Fatal("reads kept succeeding with Redis down")
	}
	if _, err := r.Put(ctx, Session{Authorization: "Bearer y", Expires: time.Now().Add(time.Hour)}); err == nil {
		t.Error("a write succeeded with Redis down")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		v2, err := r.Put(ctx, Session{Authorization: "Bearer z", Expires: time.Now().Add(time.Hour)})
		if err == nil {
			if _, ok, err := r.Get(ctx, v2); ok && err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after Redis came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func BenchmarkRedisGet(b *testing.B) {
	srv := testredis.Start(b)
	r := newTestRedis(b, srv.URL, "bench:")
	ctx := context.Background()
	values := make([]string, 10_000)
	for i := range values {
		values[i], _ = r.Put(ctx, Session{Authorization: "Bearer " + strings.Repeat("t", 300), Expires: time.Now().Add(time.Hour)})
	}
	// Warm the near-cache, as traffic does. The invalidations Redis sends
	// for our own SETs arrive a little later and drop some copies, so read
	// everything again once they are through.
	for range 2 {
		for _, v := range values {
			_, _, _ = r.Get(ctx, v)
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok, err := r.Get(ctx, values[i%len(values)]); !ok || err != nil {
				b.Fatal("missing", err)
			}
			i++
		}
	})
}

func BenchmarkRedisPut(b *testing.B) {
	srv := testredis.Start(b)
	r := newTestRedis(b, srv.URL, "benchput:")
	r.SetMaxPerUser(DefaultMaxSessionsPerUser)
	ctx := context.Background()
	// As logins: 1000 users in turn, so past 20,000 sessions every login
	// also ends its user's oldest.
	var n atomic.Int64
	session := func() Session {
		return Session{Authorization: "Bearer " + strings.Repeat("t", 300), Expires: time.Now().Add(time.Hour), Subject: fmt.Sprint("user-", n.Add(1)%1000)}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Put(ctx, session()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestRedisWaitReplicas: with wait_replicas, a new session is refused
// until a replica acknowledges it, and then the replica has it.
func TestRedisWaitReplicas(t *testing.T) {
	master := testredis.Start(t)
	r, err := NewRedis(RedisOptions{URL: master.URL, KeyPrefix: "wait:", Keys: [][]byte{bytes.Repeat([]byte{9}, 32)}, Timeout: 300 * time.Millisecond, WaitReplicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := Session{Authorization: "Bearer durable", Expires: time.Now().Add(time.Hour)}
	if _, err := r.Put(context.Background(), s); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("with no replica: %v, want ErrUnavailable", err)
	}
	testredis.StartReplica(t, master)
	var id string
	deadline := time.Now().Add(10 * time.Second)
	for id == "" && time.Now().Before(deadline) { // until the replica has synced
		id, _ = r.Put(context.Background(), s)
	}
	if id == "" {
		t.Fatal("no session was acknowledged by the replica")
	}
	start := time.Now()
	const n = 50
	for i := 0; i < n; i++ {
		if _, err := r.Put(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("Put with WAIT 1: %s each", time.Since(start)/n)
	if got, ok, _ := r.Get(context.Background(), id); !ok || got.Authorization != "Bearer durable" {
		t.Errorf("the acknowledged session: %+v %v", got, ok)
	}
}

// TestRedisFailover kills the master of a Sentinel-watched pair while
// sessions are written and read. During the failover, reads of a session
// written well before fail closed (an error, so a 503, never "no session",
// which would be a 401 sending people to log in); afterwards it is there.
// It counts the sessions acknowledged before the kill that the promoted
// replica lacks: asynchronous replication can lose the last writes, and
// wait_replicas 1 is meant to lose none.
func TestRedisFailover(t *testing.T) {
	for _, wait := range []int{0, 1} {
		t.Run(fmt.Sprintf("wait_replicas=%d", wait), func(t *testing.T) {
			f := testredis.StartFailover(t)
			r, err := NewRedis(RedisOptions{URL: f.Sentinel.URL, KeyPrefix: "fo:", Keys: [][]byte{bytes.Repeat([]byte{9}, 32)}, Timeout: 500 * time.Millisecond, WaitReplicas: 1})
			if err != nil {
				t.Fatal(err)
			}
			s := Session{Authorization: "Bearer before", Expires: time.Now().Add(time.Hour)}
			var seed string
			for deadline := time.Now().Add(15 * time.Second); seed == "" && time.Now().Before(deadline); {
				seed, _ = r.Put(context.Background(), s) // acknowledged by the replica: it has synced
			}
			if seed == "" {
				t.Fatal("the replica never acknowledged a write")
			}
			plain := r // waits for one replica: used below only to tell when a new master answers
			defer plain.Close()
			r, err = NewRedis(RedisOptions{URL: f.Sentinel.URL, KeyPrefix: "fo:", Keys: [][]byte{bytes.Repeat([]byte{9}, 32)}, Timeout: 500 * time.Millisecond, WaitReplicas: wait})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()

			var mu sync.Mutex
			var written []string
			var killedAt time.Time
			var lostRead, failedWrites, failedReads atomic.Int64
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { // writer
				defer wg.Done()
				for ctx.Err() == nil {
					id, err := r.Put(ctx, Session{Authorization: "Bearer w", Expires: time.Now().Add(time.Hour)})
					if err != nil {
						failedWrites.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					mu.Lock()
					if killedAt.IsZero() {
						written = append(written, id)
					}
					mu.Unlock()
				}
			}()
			go func() { // reader of a session written long before
				defer wg.Done()
				for ctx.Err() == nil {
					_, ok, err := r.Get(ctx, seed)
					switch {
					case err != nil:
						failedReads.Add(1)
						time.Sleep(10 * time.Millisecond)
					case !ok:
						lostRead.Add(1)
					}
				}
			}()
			time.Sleep(500 * time.Millisecond)
			mu.Lock()
			killedAt = time.Now()
			mu.Unlock()
			f.Master.Stop()
			// Wait for the promotion: the new master answers reads. (With
			// wait_replicas 1 it refuses new sessions until a replica joins
			// it again: its only replica was the one promoted.)
			recovered := time.Time{}
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if _, ok, err := plain.Get(context.Background(), seed); err == nil && ok {
					recovered = time.Now()
					break
				}
			}
			time.Sleep(300 * time.Millisecond)
			stop()
			wg.Wait()
			if recovered.IsZero() {
				t.Fatal("no new master within 20 s")
			}
			lost := 0
			for _, id := range written {
				if _, ok, err := r.Get(context.Background(), id); err == nil && !ok {
					lost++
				}
			}
			t.Logf("wait_replicas=%d: %d sessions written before the kill, %d lost; failover %s; %d writes and %d reads failed closed meanwhile",
				wait, len(written), lost, recovered.Sub(killedAt).Round(10*time.Millisecond), failedWrites.Load(), failedReads.Load())
			if lostRead.Load() != 0 {
				t.Errorf("%d reads of a session written long before said 'no session' instead of failing closed", lostRead.Load())
			}
			if _, ok, err := r.Get(context.Background(), seed); err != nil || !ok {
				t.Errorf("the session written long before is gone after the failover: %v %v", ok, err)
			}
			if wait > 0 && lost != 0 {
				t.Errorf("wait_replicas=%d lost %d acknowledged sessions", wait, lost)
			}
		})
	}
}
