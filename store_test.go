package implicitgrant

import (
	"testing"
	"time"

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
