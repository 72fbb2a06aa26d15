package cookieheader

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestValue(t *testing.T) {
	h := http.Header{"Cookie": {`a=1; __Host-s=abc; __Host-s_1=def`, `b="quoted"`}}
	for name, want := range map[string]string{"a": "1", "__Host-s": "abc", "__Host-s_1": "def", "b": "quoted", "__Host": "", "missing": ""} {
		if got := Value(h, name); got != want {
			t.Errorf("Value(%q) = %q, want %q", name, got, want)
		}
	}
	if v, n := Joined(h, "__Host-s"); v != "abcdef" || n != 2 {
		t.Errorf("Joined = %q, %d", v, n)
	}
}

func TestStrip(t *testing.T) {
	for in, want := range map[string]string{
		"theme=dark; __Host-s=x; lang=en":                    "theme=dark; lang=en",
		"__Host-s=x":                                         "",
		"__Host-s=x; __Host-s_state_abc=y; __Host-s_1=z":     "",
		"__Host-session=keep; __Host-s=x":                    "__Host-session=keep",
		"a=1;b=2; __Host-s=x ;c=3":                           "a=1; b=2; c=3",
		"__Host-sx=keep; __Host-s_state_1=gone; other=value": "__Host-sx=keep; other=value",
	} {
		h := http.Header{"Cookie": {in}}
		Strip(h, "__Host-s")
		if got := h.Get("Cookie"); got != want {
			t.Errorf("Strip(%q) = %q, want %q", in, got, want)
		}
		if want == "" && len(h["Cookie"]) != 0 {
			t.Errorf("Strip(%q) left an empty Cookie header", in)
		}
	}
	h := http.Header{"Cookie": {"a=1; __Host-s=x", "b=2"}} // HTTP/2 may send several lines
	Strip(h, "__Host-s")
	if got := h.Values("Cookie"); len(got) != 1 || got[0] != "a=1; b=2" {
		t.Errorf("several lines: %q", got)
	}
}

// TestJoinedIsLinearAndCapped: a header of 40,000 tiny cookies is read
// once, not once per chunk; chunks past MaxChunks are ignored.
func TestJoinedIsLinearAndCapped(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 40_000; i++ {
		fmt.Fprintf(&b, "c%d=v; ", i)
	}
	b.WriteString("s=a; s_1=b; s_2=c; s_3=d; s_4=e; s_5=f")
	h := http.Header{"Cookie": {b.String()}}
	start := time.Now()
	v, n := Joined(h, "s")
	if elapsed := time.Since(start); elapsed > 200*time.Millisecond {
		t.Errorf("joining took %s over a 40,000-cookie header", elapsed)
	}
	if v != "abcd" || n != MaxChunks {
		t.Errorf("Joined = %q, %d; want abcd, %d", v, n, MaxChunks)
	}
	if v, n := Joined(http.Header{"Cookie": {"s_1=b; s=a; s_3=d"}}, "s"); v != "ab" || n != 2 {
		t.Errorf("a gap ends the value: %q, %d", v, n)
	}
	one := http.Header{"Cookie": {"x=1; s=abc; y=2"}}
	if allocs := testing.AllocsPerRun(100, func() { Joined(one, "s") }); allocs > 0 {
		t.Errorf("one chunk: %.0f allocations", allocs)
	}
}
