// Limits against abuse at login: how many calls to the authorization
// server may be in flight at once (a flood of relay posts must not make
// the module an amplifier against the server), and how many failed relay
// posts one client address may make (bounded memory, whatever the flood).

package implicitgrant

import (
	"sync"
	"time"
)

const (
	// maxVerifying is how many logins may be proving their token at once;
	// a login waits up to verifyWait for a place, then gets 429.
	maxVerifying = 32
	verifyWait   = time.Second

	// A client address may fail this many relay posts per window before
	// its relay posts are refused (429) until the window ends. A person
	// fails a login rarely (a denial, an expired tab): a NAT'd office of a
	// few hundred people logging in at 9:00 fails a handful of times, not
	// sixty in five minutes; a script replaying forged answers hits the
	// limit in seconds.
	maxFailuresPerAddress = 60
	failureWindow         = 5 * time.Minute
	// failureAddresses bounds the addresses remembered; past it, the table
	// starts over (a flood from many addresses costs memory no more than
	// this).
	failureAddresses = 100_000
)

// verifySlot takes a place to prove a token, waiting up to verifyWait; the
// returned function gives it back. ok is false when there was none.
func (h *Handler) verifySlot() (release func(), ok bool) {
	t := time.NewTimer(verifyWait)
	defer t.Stop()
	select {
	case h.verifying <- struct{}{}:
		return func() { <-h.verifying }, true
	case <-t.C:
		return nil, false
	}
}

// failedRelays counts failed relay posts per client address.
type failedRelays struct {
	mu      sync.Mutex
	windows map[string]*failureWindowState
}

type failureWindowState struct {
	start time.Time
	count int
}

// blocked reports whether addr has used up its failures in this window.
func (f *failedRelays) blocked(addr string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.windows[addr]
	return w != nil && now.Sub(w.start) < failureWindow && w.count >= maxFailuresPerAddress
}

// add counts one failure of addr.
func (f *failedRelays) add(addr string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.windows[addr]
	if w == nil || now.Sub(w.start) >= failureWindow {
		if w == nil && len(f.windows) >= failureAddresses {
			clear(f.windows)
		}
		w = &failureWindowState{start: now}
		f.windows[addr] = w
	}
	w.count++
}
