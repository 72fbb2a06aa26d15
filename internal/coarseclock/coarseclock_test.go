package coarseclock

import (
	"testing"
	"time"
)

func TestHoldAndRelease(t *testing.T) {
	a, b := Hold(), Hold()
	if d := time.Now().UnixNano() - Now(); d < 0 || d > int64(2*Tick) {
		t.Errorf("a held clock is %v off", time.Duration(d))
	}
	time.Sleep(3 * Tick)
	if d := time.Now().UnixNano() - Now(); d < 0 || d > int64(2*Tick) {
		t.Errorf("after three ticks the clock is %v off: it does not move", time.Duration(d))
	}
	a()
	a() // a second release of the same hold must not stop b's clock
	if !running() {
		t.Fatal("the clock stopped while b still holds it")
	}
	b()
	if running() {
		t.Error("the clock still runs after its last holder let go")
	}
	c := Hold() // it starts again, fresh
	defer c()
	if d := time.Now().UnixNano() - Now(); d < 0 || d > int64(2*Tick) {
		t.Errorf("a clock held again is %v off", time.Duration(d))
	}
}
