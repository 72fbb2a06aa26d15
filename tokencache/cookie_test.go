package tokencache

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"
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
