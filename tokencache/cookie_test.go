package tokencache

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

func newTestCookie(t *testing.T, name string) *Cookie {
	c, err := NewCookie([][]byte{bytes.Repeat([]byte{7}, 32)}, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCookieConformance(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return newTestCookie(t, "__Host-s") })
}

func TestCookieSealing(t *testing.T) {
	c := newTestCookie(t, "__Host-a")
	ctx := context.Background()
	token := "Bearer secret-token-value-" + strings.Repeat("x", 40)
	v, _ := c.Put(ctx, Session{Authorization: token, Expires: time.Now().Add(time.Hour)})
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	if bytes.Contains(raw, []byte("secret-token")) || strings.Contains(v, "secret-token") {
		t.Fatal("the token is readable in the cookie")
	}
	// Bound to where it was made: the same value for another cookie or site is refused.
	if _, ok, _ := newTestCookie(t, "__Host-b").Get(ctx, v); ok {
		t.Error("a value sealed for another cookie name was accepted")
	}
	raw[len(raw)-1] ^= 1
	if _, ok, _ := c.Get(ctx, base64.RawURLEncoding.EncodeToString(raw)); ok {
		t.Error("a tampered value was accepted")
	}
	other, _ := NewCookie([][]byte{bytes.Repeat([]byte{8}, 32)}, "__Host-a")
	defer other.Close()
	if _, ok, _ := other.Get(ctx, v); ok {
		t.Error("a value sealed with another secret was accepted")
	}
}

func BenchmarkCookieGet(b *testing.B) {
	c, _ := NewCookie([][]byte{bytes.Repeat([]byte{7}, 32)}, "__Host-s")
	defer c.Close()
	ctx := context.Background()
	v, _ := c.Put(ctx, Session{Authorization: "Bearer " + strings.Repeat("t", 300), Expires: time.Now().Add(time.Hour)})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok, _ := c.Get(ctx, v); !ok {
				b.Fatal("missing")
			}
		}
	})
}

func BenchmarkCookiePut(b *testing.B) {
	c, _ := NewCookie([][]byte{bytes.Repeat([]byte{7}, 32)}, "__Host-s")
	defer c.Close()
	ctx := context.Background()
	s := Session{Authorization: "Bearer " + strings.Repeat("t", 300), Expires: time.Now().Add(time.Hour)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Put(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCookieLogoutHoldsForEverySpelling: a logged-out value stays refused
// when it is sent with another last character that a lenient base64
// decoder reads as the same bytes.
func TestCookieLogoutHoldsForEverySpelling(t *testing.T) {
	c := newTestCookie(t, "__Host-x")
	ctx := context.Background()
	v, _ := c.Put(ctx, Session{Authorization: "Bearer tok", Expires: time.Now().Add(time.Hour)})
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	var respellings []string
	for _, ch := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		alt := v[:len(v)-1] + string(ch)
		if alt == v {
			continue
		}
		if b, err := base64.RawURLEncoding.DecodeString(alt); err == nil && string(b) == string(raw) {
			respellings = append(respellings, alt)
		}
	}
	if len(respellings) == 0 {
		t.Skip("this value's length leaves no spare bits in its last character")
	}
	if err := c.Delete(ctx, v); err != nil {
		t.Fatal(err)
	}
	for _, alt := range respellings {
		if _, ok, _ := c.Get(ctx, alt); ok {
			t.Errorf("the logged-out session is accepted again as %q", alt[len(alt)-4:])
		}
	}
}

// TestCookieRevocations: ending a user's sessions, or everyone's, is a
// record in Caddy's storage that another instance sharing the storage
// (another store opened for the same site) honours on its next read.
func TestCookieRevocations(t *testing.T) {
	ctx := context.Background()
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	// The identity format is the caller's: here "subject|unix login time".
	owner := func(identity string) (string, time.Time) {
		sub, at, _ := strings.Cut(identity, "|")
		n, _ := strconv.ParseInt(at, 10, 64)
		return sub, time.Unix(n, 0)
	}
	site := Site{SealKeys: [][]byte{bytes.Repeat([]byte{7}, 32)}, CookieName: "__Host-r", Binding: "as|client", Storage: storage, Owner: owner, MaxLifetime: time.Hour}
	open := func() *Cookie {
		s, err := (&CookieConfig{}).Open(site)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.(*Cookie).Close() })
		return s.(*Cookie)
	}
	a, b := open(), open()
	before := fmt.Sprint(time.Now().Add(-time.Minute).Unix())
	alice, _ := a.Put(ctx, Session{Authorization: "Bearer a", Expires: time.Now().Add(time.Hour), Identity: "alice|" + before})
	bob, _ := a.Put(ctx, Session{Authorization: "Bearer b", Expires: time.Now().Add(time.Hour), Identity: "bob|" + before})

	if n, err := a.EndUser(ctx, "alice"); err != nil || n != NotCounted {
		t.Fatalf("EndUser = %d, %v; want NotCounted, nil", n, err)
	}
	if _, ok, _ := a.Get(ctx, alice); ok {
		t.Error("alice's session lives on where she was revoked")
	}
	if _, ok, _ := a.Get(ctx, bob); !ok {
		t.Error("bob's session ended with alice's")
	}
	if err := b.revocations.load(ctx); err != nil { // what b's refresh does every revocationRefresh
		t.Fatal(err)
	}
	if _, ok, _ := b.Get(ctx, alice); ok {
		t.Error("another instance sharing the storage still admits alice")
	}
	later, _ := a.Put(ctx, Session{Authorization: "Bearer a2", Expires: time.Now().Add(time.Hour), Identity: fmt.Sprint("alice|", time.Now().Add(time.Minute).Unix())})
	if _, ok, _ := a.Get(ctx, later); !ok {
		t.Error("alice's login after the revocation was refused")
	}
	// A back-channel logout of one login session (sid): that session's
	// cookies end on both instances, bob's other one lives.
	bobAtLaptop, _ := a.Put(ctx, Session{Authorization: "Bearer b1", Expires: time.Now().Add(time.Hour), Identity: "bob|" + before, Login: "sid-laptop"})
	bobAtPhone, _ := a.Put(ctx, Session{Authorization: "Bearer b2", Expires: time.Now().Add(time.Hour), Identity: "bob|" + before, Login: "sid-phone"})
	if n, err := a.EndLogin(ctx, "sid-laptop"); err != nil || n != NotCounted {
		t.Fatalf("EndLogin = %d, %v; want NotCounted, nil", n, err)
	}
	if err := b.revocations.load(ctx); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*Cookie{"a": a, "b": b} {
		if _, ok, _ := st.Get(ctx, bobAtLaptop); ok {
			t.Errorf("instance %s admits the session of the ended login", name)
		}
		if _, ok, _ := st.Get(ctx, bobAtPhone); !ok {
			t.Errorf("instance %s refuses bob's other login", name)
		}
	}
	if _, err := a.EndAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Get(ctx, bob); ok {
		t.Error("bob's session lives on after everyone's were ended")
	}
	if n, _, _ := a.Count(ctx); n != NotCounted {
		t.Errorf("Count = %d; the cookie store cannot count", n)
	}
}

// TestCookieLogoutAfterAFlood: with the record of used states and logouts
// full, a logout still takes: the old cookie is refused afterwards.
func TestCookieLogoutAfterAFlood(t *testing.T) {
	c := newTestCookie(t, "__Host-f")
	c.claims.maxClaims = 2000
	ctx := context.Background()
	for i := range 5000 {
		if _, err := c.ClaimState(ctx, fmt.Sprint("flood-", i), time.Now().Add(time.Hour+time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	v, _ := c.Put(ctx, Session{Authorization: "Bearer t", Expires: time.Now().Add(30 * time.Minute)})
	if err := c.Delete(ctx, v); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if _, ok, _ := c.Get(ctx, v); ok {
		t.Error("the logged-out cookie still opens a session")
	}
	for i := range 3000 { // more of the flood: the logout's record may be dropped for room
		_, _ = c.ClaimState(ctx, fmt.Sprint("more-", i), time.Now().Add(2*time.Hour+time.Duration(i)*time.Millisecond))
	}
	if _, ok, _ := c.Get(ctx, v); ok {
		t.Error("the logged-out cookie opens a session again once the flood pushed its record out")
	}
}
