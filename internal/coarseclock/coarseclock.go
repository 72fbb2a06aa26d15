// Package coarseclock is the process's one coarse clock: the time to a
// tenth of a second, for checks on the hot path (a session's expiry,
// renew_before) where reading it costs a load and time.Now costs 50–100 ns
// on a VM. It ticks only while someone holds it, and stops when the last
// holder lets go (a handler's or a store's Cleanup).
package coarseclock

import (
	"sync"
	"sync/atomic"
	"time"
)

// Tick is how often the clock moves: how stale Now may be.
const Tick = 100 * time.Millisecond

var clock struct {
	mu      sync.Mutex
	holders int
	stop    chan struct{}
	now     atomic.Int64 // unix nanoseconds
}

// Hold keeps the clock ticking until the returned release is called (once;
// later calls do nothing).
func Hold() (release func()) {
	clock.mu.Lock()
	defer clock.mu.Unlock()
	clock.holders++
	if clock.holders == 1 {
		clock.now.Store(time.Now().UnixNano())
		clock.stop = make(chan struct{})
		go run(clock.stop)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			clock.mu.Lock()
			defer clock.mu.Unlock()
			clock.holders--
			if clock.holders == 0 {
				close(clock.stop)
			}
		})
	}
}

func run(stop chan struct{}) {
	t := time.NewTicker(Tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			clock.now.Store(now.UnixNano())
		}
	}
}

// Now is the time in unix nanoseconds, at most Tick old while the clock is
// held. Only holders may rely on it.
func Now() int64 { return clock.now.Load() }

// running reports whether the clock ticks (for tests).
func running() bool {
	clock.mu.Lock()
	defer clock.mu.Unlock()
	return clock.holders > 0
}
