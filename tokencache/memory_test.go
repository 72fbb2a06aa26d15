package tokencache

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMemoryConformance(t *testing.T) {
	testStore(t, func(t *testing.T) Store {
		m := NewMemory(10_000, 50*time.Millisecond)
		t.Cleanup(func() { m.Close() })
		return m
	})
}

func TestMemoryBoundEvictsSoonestToExpire(t *testing.T) {
	m := NewMemory(64, time.Hour) // one entry per shard
	defer m.Close()
	ctx := context.Background()
	var values []string
	for i := 0; i < 2000; i++ {
		v, _ := m.Put(ctx, Session{Authorization: "Bearer x", Expires: time.Now().Add(time.Hour + time.Duration(i)*time.Second)})
		values = append(values, v)
	}
	if n := m.Len(); n > 64 {
		t.Errorf("%d sessions held, bound is 64", n)
	}
	if m.Evictions() < 2000-64 {
		t.Errorf("evictions = %d", m.Evictions())
	}
	if _, ok, _ := m.Get(ctx, values[len(values)-1]); !ok {
		t.Error("the newest session was evicted")
	}
}

func TestMemorySweep(t *testing.T) {
	m := NewMemory(1000, 20*time.Millisecond)
	defer m.Close()
	for i := 0; i < 100; i++ {
		_, _ = m.Put(context.Background(), Session{Authorization: "Bearer x", Expires: time.Now().Add(10 * time.Millisecond)})
	}
	_, _ = m.ClaimState(context.Background(), "s", time.Now().Add(10*time.Millisecond))
	deadline := time.Now().Add(2 * time.Second)
	for m.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m.Len() != 0 {
		t.Errorf("%d expired sessions left after sweeping", m.Len())
	}
}

func TestMemoryGetDoesNotAllocate(t *testing.T) {
	m := NewMemory(1000, time.Hour)
	defer m.Close()
	v, _ := m.Put(context.Background(), Session{Authorization: "Bearer " + strings.Repeat("t", 300), Expires: time.Now().Add(time.Hour)})
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { _, _, _ = m.Get(ctx, v) }); n != 0 {
		t.Errorf("Get allocates %.1f times", n)
	}
}

// BenchmarkMemoryGet reads 10k sessions from all cores, as many users do.
func BenchmarkMemoryGet(b *testing.B) {
	m := NewMemory(benchSessions, time.Hour)
	defer m.Close()
	ctx := context.Background()
	values := make([]string, 10_000)
	for i := range values {
		values[i], _ = m.Put(ctx, Session{Authorization: "Bearer " + strings.Repeat("t", 300), Expires: time.Now().Add(time.Hour)})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok, _ := m.Get(ctx, values[i%len(values)]); !ok {
				b.Fatal("missing")
			}
			i++
		}
	})
}

func BenchmarkMemoryPut(b *testing.B) {
	m := NewMemory(benchSessions, time.Hour)
	defer m.Close()
	ctx := context.Background()
	s := Session{Authorization: "Bearer " + strings.Repeat("t", 300), Expires: time.Now().Add(time.Hour)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Put(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchSessions is the default bound, so the benchmarks see the real shard sizes.
const benchSessions = 1_000_000

// BenchmarkMemoryHeapPerSession reports the live heap per session at 100k
// and 1M sessions with 300-byte tokens (each token its own allocation, as
// real ones are).
func BenchmarkMemoryHeapPerSession(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			exp := time.Now().Add(time.Hour)
			reportHeapPerSession(b, n, func(i int) Session {
				tok := []byte("Bearer " + strings.Repeat("t", 300))
				tok[8] = byte(i)
				return Session{Authorization: string(tok), Expires: exp}
			})
		})
	}
}

// BenchmarkMemoryHeapCodeFlowSessions: 1M code-flow sessions (300-byte
// access token, 64-byte refresh token, subject and email).
func BenchmarkMemoryHeapCodeFlowSessions(b *testing.B) {
	now := time.Now()
	reportHeapPerSession(b, 1_000_000, func(i int) Session {
		tok := []byte("Bearer " + strings.Repeat("t", 300))
		tok[8] = byte(i)
		user := fmt.Sprintf("user-%07d", i)
		return Session{Authorization: string(tok), Expires: now.Add(8 * time.Hour), Subject: user,
			Identity:     "1765000000\x00" + user + "\x00email\x00" + user + "@corp.example",
			RefreshToken: strings.Repeat("r", 63) + string(rune('a'+i%26)), RefreshAt: now.Add(time.Hour), TokenExpires: now.Add(time.Hour)}
	})
}

// reportHeapPerSession reports the live heap of a Memory holding the n
// sessions session(i) makes.
func reportHeapPerSession(b *testing.B, n int, session func(i int) Session) {
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m := NewMemory(n, time.Hour)
		ctx := context.Background()
		for i := 0; i < n; i++ {
			_, _ = m.Put(ctx, session(i))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "heap-bytes/session")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB")
		runtime.KeepAlive(m)
		m.Close()
	}
}

// TestMemoryByteBound: with a byte bound, large records push out older
// ones; the bytes held never pass the bound, however large the tokens.
func TestMemoryByteBound(t *testing.T) {
	m := NewMemory(1_000_000, time.Hour)
	defer m.Close()
	m.SetMaxBytes(1 << 20)
	big := "Bearer " + strings.Repeat("t", 6<<10)
	for i := 0; i < 200; i++ {
		_, _ = m.Put(context.Background(), Session{Authorization: big, Expires: time.Now().Add(time.Hour)})
	}
	var held int64
	for i := range m.shards {
		held += m.shards[i].bytes
	}
	if held > 1<<20 {
		t.Errorf("%d bytes held under a 1 MiB bound", held)
	}
	if m.Len() == 0 || m.Evictions() == 0 {
		t.Errorf("%d sessions kept, %d evicted", m.Len(), m.Evictions())
	}
}

// TestMemoryPerUserLimitAmongManyUsers: with many users sharing the count
// buckets, the limit ends only the sessions of the user over it.
func TestMemoryPerUserLimitAmongManyUsers(t *testing.T) {
	m := NewMemory(100_000, time.Minute)
	defer m.Close()
	m.SetMaxPerUser(1)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	var first []string
	for i := range 20_000 {
		v, _ := m.Put(ctx, Session{Authorization: "Bearer t", Expires: exp, Subject: fmt.Sprint("user-", i)})
		first = append(first, v)
	}
	if n, _, _ := m.Count(ctx); n != 20_000 {
		t.Fatalf("%d of 20000 users' single sessions live", n)
	}
	again, _ := m.Put(ctx, Session{Authorization: "Bearer t2", Expires: exp.Add(time.Minute), Subject: "user-7"})
	if _, ok, _ := m.Get(ctx, first[7]); ok {
		t.Error("user-7's older session outlived the limit of 1")
	}
	if _, ok, _ := m.Get(ctx, again); !ok {
		t.Error("user-7's new session ended")
	}
	if n, _, _ := m.Count(ctx); n != 20_000 {
		t.Errorf("%d sessions live, want 20000: another user's session ended", n)
	}
}
