package implicitgrant

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// TestStoreSharedAcrossConfigs: a second config generation (a reload) gets
// the same session store, and the store is released only when the last
// generation is cleaned up.
func TestStoreSharedAcrossConfigs(t *testing.T) {
	newGen := func() *Handler { return newTestHandler(t, nil) }
	old := newGen()
	value, _ := old.store.Put(t.Context(), tokencache.Session{Authorization: "Bearer kept", Expires: time.Now().Add(time.Hour)})
	fresh := newGen()
	if refs, _ := stores.References(old.storePoolKey); refs != 2 {
		t.Fatalf("%d users of the store, want 2", refs)
	}
	if err := old.Cleanup(); err != nil { // the old config goes away after the reload
		t.Fatal(err)
	}
	if s, ok, _ := fresh.store.Get(t.Context(), value); !ok || s.Authorization != "Bearer kept" {
		t.Fatal("the session did not survive the reload")
	}
	if err := fresh.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, loaded := stores.References(fresh.storePoolKey); loaded {
		t.Error("the store is still pooled after its last user was cleaned up")
	}
}

// BenchmarkSessionHeapWithIdentity reports the live heap per session in the
// memory store with 1M sessions, each with a 300-byte token, a 36-byte
// subject and an email, packed as a login packs them.
func BenchmarkSessionHeapWithIdentity(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m := tokencache.NewMemory(n, time.Hour)
		m.SetMaxPerUser(tokencache.DefaultMaxSessionsPerUser)
		exp := time.Now().Add(time.Hour)
		for i := 0; i < n; i++ {
			tok := []byte("Bearer " + strings.Repeat("t", 300))
			tok[8] = byte(i)
			sub := fmt.Sprintf("%08x-9c1a-4f6b-8e2d-7a5c3b1e9f04", i)
			id := authserver.Identity{Subject: sub, Claims: map[string]any{"email": "firstname.lastname@corp.example"}}
			_, _ = m.Put(context.Background(), tokencache.Session{Authorization: string(tok), Expires: exp, Identity: packIdentity(id, DefaultClaims, time.Time{}), Subject: sub})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/session")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "heap-MB")
		runtime.KeepAlive(m)
		m.Close()
	}
}

// TestReloadAppliesStoreOptions: a reload that raises max_sessions takes
// effect on the store the configs share, and no session is lost.
func TestReloadAppliesStoreOptions(t *testing.T) {
	withMax := func(n int) func(*Handler) {
		return func(h *Handler) {
			h.ClientID = "reload-options"
			h.StoreRaw = json.RawMessage(fmt.Sprintf(`{"type":"memory","max_sessions":%d}`, n))
		}
	}
	old := newTestHandler(t, withMax(64))
	kept, _ := old.store.Put(t.Context(), tokencache.Session{Authorization: "Bearer kept", Expires: time.Now().Add(time.Hour)})
	fresh := newTestHandler(t, withMax(64_000))
	_ = old.Cleanup()
	m := fresh.store.(*tokencache.Memory)
	for i := 0; i < 5000; i++ {
		_, _ = m.Put(t.Context(), tokencache.Session{Authorization: "Bearer t", Expires: time.Now().Add(time.Hour)})
	}
	if n := m.Evictions(); n != 0 {
		t.Errorf("5000 sessions under max_sessions 64000 evicted %d: the reload's bound did not apply", n)
	}
	if _, ok, _ := m.Get(t.Context(), kept); !ok {
		t.Error("the session made before the reload is gone")
	}
}

// TestSessionsGauge: caddy_implicit_grant_sessions counts the sessions
// of the memory stores in the pool.
func TestSessionsGauge(t *testing.T) {
	h := newTestHandler(t, nil)
	before := liveMemorySessions()
	for i := 0; i < 3; i++ {
		if _, err := h.store.Put(t.Context(), tokencache.Session{Authorization: "Bearer t", Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := liveMemorySessions() - before; got != 3 {
		t.Errorf("the gauge moved by %v for 3 sessions", got)
	}
}
