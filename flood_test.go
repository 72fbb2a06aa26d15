package implicitgrant

import (
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
)

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestFloodsKeepMemoryBounded reads the heap before and after floods a
// stranger can send: logins whose bodies are padded with a large ignored
// field (the used state once kept the whole body alive), and login starts
// for 4 KB return paths (nothing of which is kept on the server).
func TestFloodsKeepMemoryBounded(t *testing.T) {
	// One address makes every login here: the per-address login limit
	// is not what this test is about.
	s := newTestSite(t, siteOptions{handler: func(h *Handler) { h.MaxLoginsPerAddress = 10_000 }})
	pad := "&pad=" + strings.Repeat("p", 60<<10)

	const logins = 1000
	// One browser per login, made first, so that only the logins count.
	authorizations := make([]string, logins)
	browsers := make([]*testbrowser.Browser, logins)
	for i := range browsers {
		browsers[i] = newBrowser(t)
		authorizations[i] = browsers[i].AuthorizationRequest(browsers[i].Navigate(s.origin + "/dash"))
	}
	fragments := make([]string, logins)
	for i, b := range browsers {
		fragments[i] = b.AuthorizeAt(authorizations[i], true).EscapedFragment()
	}
	before := liveHeap()
	for i, b := range browsers {
		if resp := b.RelayPost(s.origin+"/oauth/callback", fragments[i]+pad, s.origin); resp.StatusCode != 200 {
			t.Fatalf("padded login %d: %d", i, resp.StatusCode)
		}
	}
	grew := int64(liveHeap()) - int64(before)
	t.Logf("%d logins padded with 60 KiB: heap %+d bytes (%d per login)", logins, grew, grew/logins)
	if grew > logins*8<<10 {
		t.Errorf("%d padded logins grew the heap by %d bytes: more than 8 KiB each", logins, grew)
	}

	before = liveHeap()
	b := newBrowser(t)
	for i := 0; i < 2000; i++ {
		b.Navigate(s.origin + "/oauth/login?return_to=" + url.QueryEscape("/x?"+strings.Repeat("q", 4000)))
	}
	grew = int64(liveHeap()) - int64(before)
	t.Logf("2000 login starts for 4 KB return paths: heap %+d bytes", grew)
	if grew > 4<<20 {
		t.Errorf("2000 login starts grew the heap by %d bytes", grew)
	}
}
