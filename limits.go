// Limits against abuse at login, per client address and in all: how many
// logins may be proving their token at the authorization server at once
// (a flood of relay posts must not make the module an amplifier against
// the server, nor let one address hold every place), how many may fail,
// and how many may succeed (each success records a used state: one
// address must not fill that table). Only what happens after a login's
// state proved it this browser's counts: nothing a stranger's page can
// make a browser send (a cross-site post, a made-up callback link) counts
// against that browser's address.

package implicitgrant

import (
	"net"
	"sync"
	"time"
)

const (
	// maxVerifying is how many logins may be proving their token at once;
	// a login waits up to verifyWait for a place, then gets 429. One
	// address holds at most maxVerifyingPerAddress of them.
	maxVerifying           = 32
	maxVerifyingPerAddress = 4
	verifyWait             = time.Second

	// An address may fail this many logins per window before its logins
	// are refused (429) until the window ends. A person fails a login
	// rarely (a denial, an expired tab): a NAT'd office of a few hundred
	// people logging in at 9:00 fails a handful of times, not sixty in
	// five minutes; a script replaying forged answers hits the limit in
	// seconds. Each attempt reserves its count before it asks the server,
	// so concurrent attempts cannot race past the limit.
	maxFailuresPerAddress = 60
	limitWindow           = 5 * time.Minute
	// DefaultMaxLoginsPerAddress: successful logins per address per
	// window, room for a large office behind one NAT address.
	DefaultMaxLoginsPerAddress = 600
	// limitAddresses bounds the addresses remembered; past it, those that
	// count least go first (a flood from many addresses costs memory no
	// more than this, and forgets no address at its limit).
	limitAddresses = 100_000
)

// loginLimits counts, per address group, the logins of the current window.
type loginLimits struct {
	maxLogins int
	global    chan struct{} // the places to prove a token

	mu      sync.Mutex
	windows map[string]*addressWindow
}

type addressWindow struct {
	start    time.Time
	failures int // failed in this window
	logins   int // succeeded in this window
	// inflight: attempts proving their token now. Each holds a place and
	// a reserved failure, so the limit counts it before the server is
	// asked; a new window keeps them.
	inflight int
}

func newLoginLimits(maxLogins int) *loginLimits {
	return &loginLimits{maxLogins: maxLogins, global: make(chan struct{}, maxVerifying), windows: map[string]*addressWindow{}}
}

// addressGroup is what the limits count by: an IPv4 address, or an IPv6
// address's /64, which one host or network holds whole (counting full
// IPv6 addresses would give a single /64 unlimited tries).
func addressGroup(addr string) string {
	ip := net.ParseIP(addr)
	if ip == nil || ip.To4() != nil {
		return addr
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// window is addr's current window (under l.mu).
func (l *loginLimits) window(addr string, now time.Time) *addressWindow {
	w := l.windows[addr]
	switch {
	case w == nil:
		if len(l.windows) >= limitAddresses {
			l.dropLeastLocked()
		}
		w = &addressWindow{start: now}
		l.windows[addr] = w
	case now.Sub(w.start) >= limitWindow:
		w.start, w.failures, w.logins = now, 0, 0 // in place: attempts under way hold w
	}
	return w
}

// dropLeastLocked forgets the eighth of the windows that count least (one
// scan per limitAddresses/8 new addresses): an address at its limit is the
// last to go, so a flood from many fresh addresses cannot wash it out.
func (l *loginLimits) dropLeastLocked() {
	counts := make([]int64, 0, len(l.windows))
	for _, w := range l.windows {
		counts = append(counts, int64(w.failures+w.logins))
	}
	target := len(counts) / 8
	cut := nthSmallest(counts, target)
	dropped := 0
	for _, below := range []bool{true, false} { // those under the cut first, then as many at it as make an eighth
		for a, w := range l.windows {
			n := int64(w.failures + w.logins)
			if w.inflight == 0 && (n < cut || !below && n == cut && dropped <= target) {
				delete(l.windows, a)
				dropped++
			}
		}
	}
}

// nthSmallest is the n-th smallest of xs (quickselect; xs is reordered).
func nthSmallest(xs []int64, n int) int64 {
	lo, hi := 0, len(xs)-1
	for lo < hi {
		p := xs[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for xs[i] < p {
				i++
			}
			for xs[j] > p {
				j--
			}
			if i <= j {
				xs[i], xs[j] = xs[j], xs[i]
				i, j = i+1, j-1
			}
		}
		switch {
		case n <= j:
			hi = j
		case n >= i:
			lo = i
		default:
			return xs[n]
		}
	}
	return xs[n]
}

// refusal says why addr may not try a login now: too many failures, too
// many logins, or "" when it may.
func (l *loginLimits) refusal(addr string, now time.Time) code {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[addressGroup(addr)]
	if w == nil || now.Sub(w.start) >= limitWindow {
		return ""
	}
	return l.reached(w, true)
}

// reached says which of the window's limits w has used up, counting the
// attempts under way as failures and logins to come (under l.mu); the
// logins' limit only for a login.
func (l *loginLimits) reached(w *addressWindow, login bool) code {
	switch {
	case w.failures+w.inflight >= maxFailuresPerAddress:
		return codeTooManyFailures
	case login && w.logins+w.inflight >= l.maxLogins:
		return codeTooManyLogins
	}
	return ""
}

// attempt is one login proving its token: its place and its reserved
// failure, given back by end.
type attempt struct {
	l *loginLimits
	w *addressWindow
}

// begin reserves a failure and a place for addr's login, waiting up to
// verifyWait for a place. The code says why not, when it cannot.
func (l *loginLimits) begin(addr string, now time.Time) (*attempt, code) {
	return l.start(addr, now, true)
}

// beginProof is begin for a token proved at the server that opens no
// session (a script's bearer, a logout token): the same places and
// failures, and no login to count (end it with succeeded false).
func (l *loginLimits) beginProof(addr string, now time.Time) (*attempt, code) {
	return l.start(addr, now, false)
}

func (l *loginLimits) start(addr string, now time.Time, login bool) (*attempt, code) {
	l.mu.Lock()
	w := l.window(addressGroup(addr), now)
	refused := l.reached(w, login)
	if refused == "" && w.inflight >= maxVerifyingPerAddress {
		refused = codeBusy
	}
	if refused != "" {
		l.mu.Unlock()
		return nil, refused
	}
	w.inflight++
	l.mu.Unlock()

	t := time.NewTimer(verifyWait)
	defer t.Stop()
	select {
	case l.global <- struct{}{}:
		return &attempt{l: l, w: w}, ""
	case <-t.C:
		l.mu.Lock()
		w.inflight--
		l.mu.Unlock()
		return nil, codeBusy
	}
}

// end gives the place back and settles the reserved failure: a success
// counts as a login, a failure as a failure, and neither (the server could
// not be asked: nobody's fault) as nothing.
func (a *attempt) end(succeeded, failed bool) {
	<-a.l.global
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	a.w.inflight--
	switch {
	case failed:
		a.w.failures++
	case succeeded:
		a.w.logins++
	}
}

// countFailure counts a failed login that never reached the server (a
// verified error answer, a token too large), for addr.
func (l *loginLimits) countFailure(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.window(addressGroup(addr), now).failures++
}
