package tokencache

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// testStore is the conformance suite every Store must pass.
func testStore(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	t.Run("put get delete", func(t *testing.T) {
		s := newStore(t)
		want := Session{Authorization: "Bearer abc.def", Expires: time.Now().Add(time.Hour).Truncate(time.Second), Identity: "alice\x00email\x00alice@corp.example"}
		v1, err := s.Put(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		v2, _ := s.Put(ctx, want)
		if v1 == "" || v1 == v2 {
			t.Fatalf("cookie values must be fresh per login: %q %q", v1, v2)
		}
		got, ok, err := s.Get(ctx, v1)
		if err != nil || !ok || got.Authorization != want.Authorization || got.Identity != want.Identity || !got.Expires.Equal(want.Expires) {
			t.Fatalf("get: %+v %v %v", got, ok, err)
		}
		if err := s.Delete(ctx, v1); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Get(ctx, v1); ok {
			t.Error("session still there after delete")
		}
		if err := s.Delete(ctx, v1); err != nil {
			t.Errorf("deleting twice: %v", err)
		}
	})
	t.Run("unknown and malformed", func(t *testing.T) {
		s := newStore(t)
		for _, v := range []string{"", "nope", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "%%%", string(make([]byte, 5000))} {
			if _, ok, err := s.Get(ctx, v); ok || err != nil {
				t.Errorf("Get(%.20q) = %v, %v", v, ok, err)
			}
		}
	})
	t.Run("expiry", func(t *testing.T) {
		s := newStore(t)
		v, err := s.Put(ctx, Session{Authorization: "Bearer short", Expires: time.Now().Add(1100 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Get(ctx, v); !ok {
			t.Fatal("fresh session missing")
		}
		time.Sleep(1300 * time.Millisecond)
		if _, ok, _ := s.Get(ctx, v); ok {
			t.Error("session outlived its expiry")
		}
	})
	t.Run("state claims are single use", func(t *testing.T) {
		s := newStore(t)
		until := time.Now().Add(time.Minute)
		first, err := s.ClaimState(ctx, "state-x", until)
		if err != nil || !first {
			t.Fatalf("first claim: %v %v", first, err)
		}
		if again, err := s.ClaimState(ctx, "state-x", until); err != nil || again {
			t.Errorf("second claim of the same state: %v %v", again, err)
		}
		if other, _ := s.ClaimState(ctx, "state-y", until); !other {
			t.Error("another state refused")
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		var claims sync.Map
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					auth := fmt.Sprintf("Bearer g%d-%d", g, i)
					v, err := s.Put(ctx, Session{Authorization: auth, Expires: time.Now().Add(time.Minute)})
					if err != nil {
						t.Error(err)
						return
					}
					if got, ok, err := s.Get(ctx, v); err != nil || !ok || got.Authorization != auth {
						t.Errorf("read back %q: %+v %v %v", auth, got, ok, err)
						return
					}
					if i%3 == 0 {
						_ = s.Delete(ctx, v)
					}
					if first, _ := s.ClaimState(ctx, fmt.Sprintf("shared-%d", i), time.Now().Add(time.Minute)); first {
						if _, dup := claims.LoadOrStore(i, g); dup {
							t.Errorf("state shared-%d claimed twice", i)
						}
					}
				}
			}(g)
		}
		wg.Wait()
	})
}
