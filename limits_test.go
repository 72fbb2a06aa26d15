package implicitgrant

import (
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/devprovider"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// forgedLogin starts a login in b and posts a made-up token with its
// state: a failure of this browser's own login, after the state check.
func forgedLogin(b *testbrowser.Browser, s *testSite) *http.Response {
	authorize := b.AuthorizationRequest(b.Navigate(s.origin + "/dash"))
	state, _ := url.Parse(authorize)
	return b.RelayPost(s.origin+"/oauth/callback", "access_token=made-up&token_type=Bearer&state="+state.Query().Get("state"), s.origin)
}

// TestFailedRelayPostsPerAddress: one address that fails logins again and
// again (made-up tokens under its own states) is refused (429,
// Retry-After) for the rest of the window, even with a genuine answer;
// another site's count is its own.
func TestFailedRelayPostsPerAddress(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	b := newBrowser(t)
	for i := 0; i < maxFailuresPerAddress; i++ {
		if resp := forgedLogin(b, s); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s", i, resp.StatusCode, bodyOf(resp))
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

// TestStrangersCannotLockAnAddressOut: what any web page can make a
// visitor's browser send (cross-site posts of any content type, links to
// the callback with made-up states and errors) is refused without
// counting: afterwards the visitor, and everyone behind their address,
// still logs in.
func TestStrangersCannotLockAnAddressOut(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	b := newBrowser(t)
	for i := 0; i < 3*maxFailuresPerAddress; i++ {
		b.RelayPost(s.origin+"/oauth/callback", "access_token=a&token_type=Bearer&state=s", "https://evil.example")
		req, _ := http.NewRequest(http.MethodPost, s.origin+"/oauth/callback", strings.NewReader("x"))
		req.Header.Set("Content-Type", "text/plain") // a no-cors fetch
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		b.Do(req)
		// A link to the callback: the relay page posts what it carries,
		// same-origin, with a state no login of this browser has.
		b.RelayPost(s.origin+"/oauth/callback", fmt.Sprintf("access_token=a&token_type=Bearer&state=made-up-%d", i), s.origin)
		b.RelayPost(s.origin+"/oauth/callback", "error=access_denied&state=made-up", s.origin)
	}
	if page, _ := b.Login(s.origin, "/dash"); page.StatusCode != http.StatusOK {
		t.Fatalf("after %d of a stranger's posts, the visitor's login: %d %s", 12*maxFailuresPerAddress, page.StatusCode, bodyOf(page))
	}
}

// TestFailuresAreReservedBeforeTheServerIsAsked: 300 concurrent made-up
// tokens from one address, each under a state of its own, make at most
// the failure limit's worth of introspection calls; the rest are refused
// with 429 before the server is asked.
func TestFailuresAreReservedBeforeTheServerIsAsked(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	const n = 300
	fragments := make([]string, n)
	browsers := make([]*testbrowser.Browser, n)
	for i := range n {
		browsers[i] = newBrowser(t)
		authorize := browsers[i].AuthorizationRequest(browsers[i].Navigate(s.origin + "/dash"))
		state, _ := url.Parse(authorize)
		fragments[i] = "access_token=made-up&token_type=Bearer&state=" + state.Query().Get("state")
	}
	before := devprovider.Calls(s.provider, "/introspect")
	var wg sync.WaitGroup
	var refused atomic.Int32
	for i := range n {
		wg.Go(func() {
			if resp := browsers[i].RelayPost(s.origin+"/oauth/callback", fragments[i], s.origin); resp.StatusCode == http.StatusTooManyRequests {
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	calls := devprovider.Calls(s.provider, "/introspect") - before
	t.Logf("%d concurrent made-up logins: %d introspection calls, %d refused with 429", n, calls, refused.Load())
	if calls > maxFailuresPerAddress {
		t.Errorf("%d introspection calls; the failure limit is %d", calls, maxFailuresPerAddress)
	}
}

// TestSuccessfulLoginsPerAddress: past max_logins_per_address, an
// address's next login is refused (429 too_many_logins) without using up
// a state; another address is not affected.
func TestSuccessfulLoginsPerAddress(t *testing.T) {
	s := newTestSite(t, siteOptions{handler: func(h *Handler) { h.MaxLoginsPerAddress = 5 }})
	for i := range 5 {
		if page, _ := newBrowser(t).Login(s.origin, "/dash"); page.StatusCode != http.StatusOK {
			t.Fatalf("login %d: %d", i, page.StatusCode)
		}
	}
	b := newBrowser(t)
	authorize := b.AuthorizationRequest(b.Navigate(s.origin + "/dash"))
	resp := b.RelayPost(s.origin+"/oauth/callback", b.AuthorizeAt(authorize, true).EscapedFragment(), s.origin)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(bodyOf(resp), "too_many_logins") {
		t.Errorf("the sixth login: %d %s", resp.StatusCode, bodyOf(resp))
	}
	l := s.h.limits
	if a, c := l.begin("192.0.2.99", time.Now()); c != "" {
		t.Errorf("another address: %s", c)
	} else {
		a.end(true, false)
	}
}

// TestVerifyingIsBounded: with every place to prove a token taken, a login
// waits a moment, then gets 429 with Retry-After and no session; once a
// place is free, logins go through. One address holds at most a few.
func TestVerifyingIsBounded(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	for i := 0; i < maxVerifying; i++ {
		s.h.limits.global <- struct{}{} // as many logins as allowed, all stuck at the server
	}
	b := newBrowser(t)
	authorize := b.AuthorizationRequest(b.Navigate(s.origin + "/dash"))
	fragment := b.AuthorizeAt(authorize, true).EscapedFragment()
	resp := b.RelayPost(s.origin+"/oauth/callback", fragment, s.origin)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("with no place free: %d Retry-After=%q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	<-s.h.limits.global
	if page, _ := newBrowser(t).Login(s.origin, "/dash"); page.StatusCode != http.StatusOK {
		t.Errorf("with a place free: %d", page.StatusCode)
	}
	for range maxVerifying - 1 {
		<-s.h.limits.global
	}

	l := newLoginLimits(DefaultMaxLoginsPerAddress)
	var held []*attempt
	for range maxVerifyingPerAddress {
		a, c := l.begin("198.51.100.7", time.Now())
		if c != "" {
			t.Fatalf("a place for the address: %s", c)
		}
		held = append(held, a)
	}
	if _, c := l.begin("198.51.100.7", time.Now()); c != codeBusy {
		t.Errorf("one address past %d places: %q, want busy", maxVerifyingPerAddress, c)
	}
	if a, c := l.begin("198.51.100.8", time.Now()); c != "" {
		t.Errorf("another address while the first holds its places: %q", c)
	} else {
		a.end(true, false)
	}
	for _, a := range held {
		a.end(false, false)
	}
}

// TestAddressGroups: IPv6 addresses count by their /64; IPv4 by address.
func TestAddressGroups(t *testing.T) {
	l := newLoginLimits(DefaultMaxLoginsPerAddress)
	now := time.Now()
	for i := range maxFailuresPerAddress {
		l.countFailure(fmt.Sprintf("2001:db8:1:2::%x", i+1), now) // a new address of the same /64 each time
	}
	if c := l.refusal("2001:db8:1:2:ffff::1", now); c != codeTooManyFailures {
		t.Errorf("another address of the same /64: %q, want too_many_failures", c)
	}
	if c := l.refusal("2001:db8:1:3::1", now); c != "" {
		t.Errorf("the next /64: %q", c)
	}
	if addressGroup("192.0.2.1") != "192.0.2.1" || addressGroup("192.0.2.1") == addressGroup("192.0.2.2") {
		t.Error("IPv4 addresses are grouped")
	}
}

// TestFailureTableIsBounded: failed logins from 300,000 addresses keep
// the table at its bound, and the heap with it; an address at its limit
// is not forgotten for them.
func TestFailureTableIsBounded(t *testing.T) {
	l := newLoginLimits(DefaultMaxLoginsPerAddress)
	before := liveHeap()
	start := time.Now()
	for range maxFailuresPerAddress {
		l.countFailure("203.0.113.5", start)
	}
	for i := 0; i < 300_000; i++ { // later, from fresh addresses: to wash the one at its limit out
		l.countFailure(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), start.Add(time.Second))
	}
	if n := len(l.windows); n > limitAddresses {
		t.Errorf("%d addresses remembered; bound %d", n, limitAddresses)
	}
	if c := l.refusal("203.0.113.5", start.Add(time.Minute)); c != codeTooManyFailures {
		t.Errorf("the address at its limit was forgotten in the flood: %q", c)
	}
	grew := int64(liveHeap()) - int64(before)
	t.Logf("300,000 addresses: %d remembered, heap %+d bytes", len(l.windows), grew)
	if grew > 32<<20 {
		t.Errorf("the table grew the heap by %d bytes", grew)
	}
	runtime.KeepAlive(l)
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
