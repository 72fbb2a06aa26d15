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
	t.Run("the login and the ID token are kept", func(t *testing.T) {
		st := newStore(t)
		for _, want := range []Session{
			{Authorization: "Bearer a", Expires: time.Now().Add(time.Hour), Identity: "1\x00alice", Login: "sid-1", IDToken: "eyJ.a.b"},
			{Authorization: "Bearer a", Expires: time.Now().Add(time.Hour), RefreshToken: "r", RefreshAt: time.Now(), TokenExpires: time.Now(), IDToken: "eyJ.c.d"},
			{Authorization: "Bearer a", Expires: time.Now().Add(time.Hour), Login: "sid-2"},
		} {
			v, err := st.Put(ctx, want)
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := st.Get(ctx, v)
			if err != nil || !ok || got.Login != want.Login || got.IDToken != want.IDToken || got.Identity != want.Identity || got.RefreshToken != want.RefreshToken || got.Authorization != want.Authorization {
				t.Errorf("put %+v, got %+v %v %v", want, got, ok, err)
			}
		}
	})
	t.Run("replace keeps the expiry and the refresh token's times", func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		end := time.Now().Add(time.Hour).Truncate(time.Millisecond)
		v, err := st.Put(ctx, Session{Authorization: "Bearer a", Expires: end, Identity: "1\x00alice", Subject: "alice",
			RefreshToken: "r1", RefreshAt: end.Add(-50 * time.Minute), TokenExpires: end.Add(-40 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(20 * time.Minute).Truncate(time.Millisecond)
		nv, ok, err := st.Replace(ctx, v, Session{Authorization: "Bearer b", Expires: end.Add(time.Hour), Identity: "1\x00alice", RefreshToken: "r2", RefreshAt: at, TokenExpires: at.Add(time.Minute)})
		if err != nil || !ok {
			t.Fatalf("replace: %v %v", ok, err)
		}
		got, ok, err := st.Get(ctx, nv)
		if err != nil || !ok || got.Authorization != "Bearer b" || got.RefreshToken != "r2" || !got.RefreshAt.Equal(at) || !got.TokenExpires.Equal(at.Add(time.Minute)) ||
			got.Expires.After(end.Add(time.Second)) || got.Identity != "1\x00alice" {
			t.Fatalf("after replace: %+v %v %v", got, ok, err)
		}
		if err := st.Delete(ctx, nv); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := st.Replace(ctx, nv, got); ok || err != nil {
			t.Errorf("replace of an ended session: %v %v, want not ok", ok, err)
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
	revoker := func(t *testing.T) (Store, Revoker) {
		s := newStore(t)
		r, ok := s.(Revoker)
		if !ok {
			t.Skipf("%T keeps no sessions on the server to end", s)
		}
		if n, _, _ := r.Count(ctx); n == NotCounted {
			t.Skipf("%T keeps no sessions on the server to count or end one by one (its revocations are tested on their own)", s)
		}
		return s, r
	}
	live := func(s Store, values ...string) (n int) {
		for _, v := range values {
			if _, ok, _ := s.Get(ctx, v); ok {
				n++
			}
		}
		return n
	}
	t.Run("per-user limit ends the oldest", func(t *testing.T) {
		s, _ := revoker(t)
		s.(interface{ SetMaxPerUser(int) }).SetMaxPerUser(3)
		var alice []string
		for i := range 5 {
			v, err := s.Put(ctx, Session{Authorization: fmt.Sprint("Bearer a", i), Expires: time.Now().Add(time.Hour + time.Duration(i)*time.Minute), Subject: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			alice = append(alice, v)
		}
		bob, _ := s.Put(ctx, Session{Authorization: "Bearer b", Expires: time.Now().Add(time.Hour), Subject: "bob"})
		anonymous, _ := s.Put(ctx, Session{Authorization: "Bearer n", Expires: time.Now().Add(time.Hour)})
		if n := live(s, alice[:2]...); n != 0 {
			t.Errorf("%d of alice's two oldest sessions outlived the limit of 3", n)
		}
		if n := live(s, alice[2:]...); n != 3 {
			t.Errorf("alice's newest three: %d live, want 3", n)
		}
		if live(s, bob, anonymous) != 2 {
			t.Error("another user's session, or one without a user, ended")
		}
		// One token replayed through many logins: same expiry for all.
		// The newest session always lives, and the user keeps three.
		expires := time.Now().Add(time.Hour)
		var replayed []string
		for i := range 10 {
			v, _ := s.Put(ctx, Session{Authorization: "Bearer stolen", Expires: expires, Subject: "mallory"})
			if live(s, v) != 1 {
				t.Fatalf("login %d: the session just made was ended", i)
			}
			replayed = append(replayed, v)
		}
		if n := live(s, replayed...); n != 3 {
			t.Errorf("replayed logins: %d live sessions, want 3", n)
		}
	})
	t.Run("per-user limit ends the oldest logins, not the soonest to expire", func(t *testing.T) {
		s, _ := revoker(t)
		s.(interface{ SetMaxPerUser(int) }).SetMaxPerUser(3)
		// Servers count expires_in down in whole seconds: a later login's
		// session may end before an earlier one's.
		var alice []string
		for _, seconds := range []int{60, 59, 61, 58, 57} {
			v, err := s.Put(ctx, Session{Authorization: fmt.Sprint("Bearer a", seconds), Expires: time.Now().Add(time.Duration(seconds) * time.Second), Subject: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			alice = append(alice, v)
			time.Sleep(2 * time.Millisecond) // the stores order logins by when they were made
		}
		if n := live(s, alice[:2]...); n != 0 {
			t.Errorf("%d of the two oldest logins outlived the limit of 3", n)
		}
		if n := live(s, alice[2:]...); n != 3 {
			t.Errorf("the three newest logins: %d live, want 3", n)
		}
	})
	t.Run("end a user, then everyone", func(t *testing.T) {
		s, r := revoker(t)
		var alice, others []string
		for i := range 2 {
			v, _ := s.Put(ctx, Session{Authorization: fmt.Sprint("Bearer a", i), Expires: time.Now().Add(time.Hour), Subject: "alice"})
			alice = append(alice, v)
			v, _ = s.Put(ctx, Session{Authorization: fmt.Sprint("Bearer b", i), Expires: time.Now().Add(time.Hour), Subject: "bob"})
			others = append(others, v)
		}
		v, _ := s.Put(ctx, Session{Authorization: "Bearer n", Expires: time.Now().Add(time.Hour)})
		others = append(others, v)
		gone, _ := s.Put(ctx, Session{Authorization: "Bearer gone", Expires: time.Now().Add(time.Hour), Subject: "bob"})
		_ = s.Delete(ctx, gone)
		if n, exact, err := r.Count(ctx); err != nil || n != 5 || !exact {
			t.Fatalf("count: %d %v %v, want 5 exact", n, exact, err)
		}
		if n, err := r.EndUser(ctx, "alice"); err != nil || n != 2 {
			t.Fatalf("EndUser(alice) = %d, %v; want 2", n, err)
		}
		if live(s, alice...) != 0 || live(s, others...) != 3 {
			t.Fatalf("after ending alice: alice %d live (want 0), others %d (want 3)", live(s, alice...), live(s, others...))
		}
		if n, err := r.EndUser(ctx, "nobody"); err != nil || n != 0 {
			t.Errorf("EndUser(nobody) = %d, %v", n, err)
		}
		if n, _, _ := r.Count(ctx); n != 3 {
			t.Errorf("count after ending alice: %d, want 3", n)
		}
		if n, err := r.EndAll(ctx); err != nil || n != 3 {
			t.Fatalf("EndAll = %d, %v; want 3", n, err)
		}
		if live(s, others...) != 0 {
			t.Error("a session outlived EndAll")
		}
		if n, _, _ := r.Count(ctx); n != 0 {
			t.Errorf("count after EndAll: %d", n)
		}
		after, _ := s.Put(ctx, Session{Authorization: "Bearer new", Expires: time.Now().Add(time.Hour), Subject: "alice"})
		if live(s, after) != 1 {
			t.Error("a login after the revocation does not work")
		}
	})
	t.Run("end a login session, list a user's sessions", func(t *testing.T) {
		s, r := revoker(t)
		put := func(subject, login, auth string) string {
			v, err := s.Put(ctx, Session{Authorization: auth, Expires: time.Now().Add(time.Hour), Subject: subject, Login: login, RefreshToken: "rt-" + auth})
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		laptop := []string{put("alice", "sid-laptop", "a1"), put("alice", "sid-laptop", "a2")}
		phone, bob, none := put("alice", "sid-phone", "a3"), put("bob", "sid-bob", "b1"), put("carol", "", "c1")
		if n, err := r.EndLogin(ctx, "sid-laptop"); err != nil || n != 2 {
			t.Fatalf("EndLogin(sid-laptop) = %d, %v; want 2", n, err)
		}
		if live(s, laptop...) != 0 || live(s, phone, bob, none) != 3 {
			t.Errorf("after ending one login: its sessions %d live (want 0), the others %d (want 3)", live(s, laptop...), live(s, phone, bob, none))
		}
		if n, err := r.EndLogin(ctx, "sid-unknown"); err != nil || n != 0 {
			t.Errorf("EndLogin(unknown) = %d, %v", n, err)
		}
		l, ok := s.(Lister)
		if !ok {
			t.Fatalf("%T ends sessions but cannot list them", s)
		}
		got, err := l.UserSessions(ctx, "alice")
		if err != nil || len(got) != 1 || got[0].RefreshToken != "rt-a3" || got[0].Login != "sid-phone" {
			t.Errorf("alice's sessions: %+v, %v; want the phone's", got, err)
		}
	})
}
