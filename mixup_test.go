package implicitgrant

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testredis"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// checkingUpstream answers 200 only when the bearer it got is the one of
// the session whose number the client put in X-Session: any mix-up between
// one browser's cookie and another's token shows as a 409.
type checkingUpstream struct{ mismatches atomic.Int64 }

func (u *checkingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	if r.Header.Get("Authorization") != "Bearer token-"+r.Header.Get("X-Session") {
		u.mismatches.Add(1)
		w.WriteHeader(http.StatusConflict)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// hammer makes sessions in the handler's store, then sends rounds of
// requests for all of them from workers at once, each with its session's
// cookie, and counts what came back.
func hammer(tb testing.TB, store json.RawMessage, sessions, rounds, workers int) (statuses map[int]int64, mismatches int64, elapsed time.Duration) {
	tb.Helper()
	up := &checkingUpstream{}
	h := newTestHandler(tb, func(h *Handler) {
		h.ClientID = "mixup-" + strconv.Itoa(int(time.Now().UnixNano()))
		h.StoreRaw = store
	})
	l := listen(tb)
	serve(tb, l, h, up)
	origin := "http://" + l.Addr().String()

	cookies := make([]string, sessions)
	for i := range cookies {
		v, err := h.store.Put(tb.Context(), tokencache.Session{Authorization: "Bearer token-" + strconv.Itoa(i), Expires: time.Now().Add(time.Hour)})
		if err != nil {
			tb.Fatal(err)
		}
		cookies[i] = v
	}

	var mu sync.Mutex
	statuses = map[int]int64{}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1) - 1)
				if n >= sessions*rounds {
					return
				}
				i := (n * 7919) % sessions // not in order: neighbours' sessions interleave
				req, _ := http.NewRequest(http.MethodGet, origin+"/api/data", nil)
				req.Header.Set("Accept", "application/json")
				req.Header.Set("Cookie", "theme=dark; "+DefaultCookieName+"="+cookies[i])
				req.Header.Set("X-Session", strconv.Itoa(i))
				status := 0
				if resp, err := client.Do(req); err == nil {
					status = resp.StatusCode
					resp.Body.Close()
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return statuses, up.mismatches.Load(), time.Since(start)
}

// TestNoMixupsUnderLoad: 10,000 sessions, requested concurrently, each
// request's upstream bearer is its own cookie's, with the memory and the
// Redis store: no mismatch, nothing but 200.
func TestNoMixupsUnderLoad(t *testing.T) {
	stores := map[string]func() json.RawMessage{
		"memory": func() json.RawMessage { return json.RawMessage(`{"type":"memory"}`) },
		"redis": func() json.RawMessage {
			return json.RawMessage(fmt.Sprintf(`{"type":"redis","url":%q,"key_prefix":"mixup:"}`, testredis.Start(t).URL))
		},
	}
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			statuses, mismatches, elapsed := hammer(t, store(), 10_000, 3, 32)
			t.Logf("%s: 30,000 requests in %s: %v", name, elapsed.Round(time.Millisecond), statuses)
			if mismatches != 0 || len(statuses) != 1 || statuses[http.StatusOK] != 30_000 {
				t.Errorf("%d mismatches; statuses %v, want 30,000 × 200", mismatches, statuses)
			}
		})
	}
}

// BenchmarkNoMixups is the larger run: 100,000 sessions, 5 rounds, 64
// workers (go test -run XXX -bench NoMixups -benchtime 1x .).
func BenchmarkNoMixups(b *testing.B) {
	for b.Loop() {
		statuses, mismatches, elapsed := hammer(b, json.RawMessage(`{"type":"memory"}`), 100_000, 5, 64)
		b.ReportMetric(float64(500_000)/elapsed.Seconds(), "requests/s")
		if mismatches != 0 || statuses[http.StatusOK] != 500_000 {
			b.Fatalf("%d mismatches; statuses %v", mismatches, statuses)
		}
	}
}
