package implicitgrant

import (
	"testing"
	"time"
)

// TestExpiring: entries end at their time; a live key is not replaced;
// full, the ended entries make room, and past that nothing new is kept.
func TestExpiring(t *testing.T) {
	now := time.Now()
	c := newExpiring[string, int](2)
	if !c.add("a", 1, now.Add(time.Minute), now) || c.add("a", 2, now.Add(time.Hour), now) {
		t.Fatal("a new key must be added, a live one not replaced")
	}
	if v, ok := c.get("a", now); !ok || v != 1 {
		t.Errorf("get a: %v %v", v, ok)
	}
	if _, ok := c.get("a", now.Add(time.Minute)); ok {
		t.Error("an entry outlived its time")
	}
	c.add("b", 2, now.Add(time.Second), now)
	if c.add("c", 3, now.Add(time.Hour), now) {
		t.Error("a full map took a third entry")
	}
	later := now.Add(2 * time.Second) // b has ended: room for c
	if !c.add("c", 3, now.Add(time.Hour), later) {
		t.Error("an ended entry did not make room")
	}
	if len(c.entries) != 2 {
		t.Errorf("%d entries, bound 2", len(c.entries))
	}
}
