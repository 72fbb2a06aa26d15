package implicitgrant

import (
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// TestFailedRelayPostsPerAddress: one address that fails relay posts again
// and again is refused (429, Retry-After) for the rest of the window, even
// with a genuine answer; another site's count is its own.
func TestFailedRelayPostsPerAddress(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	b := newBrowser(t)
	for i := 0; i < maxFailuresPerAddress; i++ {
		if resp := b.RelayPost(s.origin+"/oauth/callback", "access_token=a&token_type=Bearer&state=s", "https://evil.example"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("failure %d: %d", i, resp.StatusCode)
		}
	}
	authorize := b.AuthorizationRequest(b.Navigate(s.origin + "/dash"))
	resp := b.RelayPost(s.origin+"/oauth/callback", b.AuthorizeAt(authorize, true).EscapedFragment(), s.origin)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(bodyOf(resp), "too_many_failures") {
		t.Errorf("after %d failures: %d Retry-After=%q %s", maxFailuresPerAddress, resp.StatusCode, resp.Header.Get("Retry-After"), bodyOf(resp))
	}
	if other := newTestSite(t, siteOptions{}); newBrowser(t).Navigate(other.origin+"/dash").StatusCode != http.StatusFound {
		t.Error("another site refuses this address too")
	}
}

// TestVerifyingIsBounded: with every place to prove a token taken, a login
// waits a moment, then gets 429 with Retry-After and no session; once a
// place is free, logins go through.
func TestVerifyingIsBounded(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	for i := 0; i < maxVerifying; i++ {
		s.h.verifying <- struct{}{} // as many logins as allowed, all stuck at the server
	}
	b := newBrowser(t)
	authorize := b.AuthorizationRequest(b.Navigate(s.origin + "/dash"))
	fragment := b.AuthorizeAt(authorize, true).EscapedFragment()
	resp := b.RelayPost(s.origin+"/oauth/callback", fragment, s.origin)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("with no place free: %d Retry-After=%q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	<-s.h.verifying
	if page, _ := newBrowser(t).Login(s.origin, "/dash"); page.StatusCode != http.StatusOK {
		t.Errorf("with a place free: %d", page.StatusCode)
	}
}

// TestFailureTableIsBounded: failed relay posts from 300,000 addresses keep
// the table at its bound, and the heap with it.
func TestFailureTableIsBounded(t *testing.T) {
	f := &failedRelays{windows: map[string]*failureWindowState{}}
	before := liveHeap()
	now := time.Now()
	for i := 0; i < 300_000; i++ {
		f.add(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
	}
	if n := len(f.windows); n > failureAddresses {
		t.Errorf("%d addresses remembered; bound %d", n, failureAddresses)
	}
	grew := int64(liveHeap()) - int64(before)
	t.Logf("300,000 addresses: %d remembered, heap %+d bytes", len(f.windows), grew)
	if grew > 32<<20 {
		t.Errorf("the table grew the heap by %d bytes", grew)
	}
	runtime.KeepAlive(f)
}

// TestSessionsPerUser: past max_sessions_per_user, a user's next login
// ends their oldest session; the newest ones and another user's stay.
func TestSessionsPerUser(t *testing.T) {
	s := newTestSite(t, siteOptions{handler: func(h *Handler) { h.MaxSessionsPerUser = 2 }})
	var alice []*testbrowser.Browser
	for range 3 {
		b := newBrowser(t)
		if page, _ := b.LoginAs(s.origin, "/dash", "alice"); page.StatusCode != http.StatusOK {
			t.Fatalf("login: %d", page.StatusCode)
		}
		alice = append(alice, b)
		time.Sleep(1100 * time.Millisecond) // the server's expiries are in seconds: the oldest is the one closest to its end
	}
	bob := newBrowser(t)
	bob.LoginAs(s.origin, "/dash", "bob")
	var got []int
	for _, b := range append(alice, bob) {
		got = append(got, b.Navigate(s.origin+"/dash").StatusCode)
	}
	if want := fmt.Sprint([]int{http.StatusFound, http.StatusOK, http.StatusOK, http.StatusOK}); fmt.Sprint(got) != want {
		t.Errorf("alice's three sessions, then bob's: %v, want %s (the oldest sent to log in again)", got, want)
	}
}

// TestOneUserCannotFillTheStore: one account logging in again and again
// (or one stolen token replayed through many logins) keeps at most
// max_sessions_per_user sessions; the store holds no more, and another
// user's session is untouched.
func TestOneUserCannotFillTheStore(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	bob := newBrowser(t)
	bob.LoginAs(s.origin, "/dash", "bob")
	mallory := newBrowser(t) // the provider remembers her: no dialog after the first
	for range 200 {
		mallory.Client.Jar.SetCookies(originURL(s.origin), []*http.Cookie{{Name: testbrowser.SessionCookie, Value: "", MaxAge: -1, Path: "/"}}) // a new login, not a replacement
		authorize := mallory.AuthorizationRequest(mallory.Navigate(s.origin + "/dash"))
		if status, _ := mallory.FinishAtCallback(mallory.AuthorizeAs(authorize, "mallory", true)); status != http.StatusOK {
			t.Fatalf("login: %d", status)
		}
	}
	if n, _, _ := s.h.store.(tokencache.Revoker).Count(t.Context()); n != tokencache.DefaultMaxSessionsPerUser+1 {
		t.Errorf("%d sessions after 200 logins by one user and one by another, want %d", n, tokencache.DefaultMaxSessionsPerUser+1)
	}
	if bob.Navigate(s.origin+"/dash").StatusCode != http.StatusOK {
		t.Error("the other user's session ended")
	}
}

func originURL(origin string) *url.URL {
	u, _ := url.Parse(origin)
	return u
}
