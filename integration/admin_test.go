package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
	"github.com/implicitgrant/caddy-implicit-grant/internal/testredis"
)

// sessionsAnswer is the admin API's answer.
type sessionsAnswer struct {
	Sites []struct {
		RedirectURI   string `json:"redirect_uri"`
		Store         string `json:"store"`
		Sessions      *int   `json:"sessions"`
		Exact         bool   `json:"exact"`
		Ended         *int   `json:"ended"`
		RevokedBefore string `json:"revoked_before"`
	} `json:"sites"`
}

// admin calls Caddy's admin API: /implicit_grant/sessions plus query.
func admin(t *testing.T, p *testcaddy.Proc, method, query string) (int, sessionsAnswer, string) {
	t.Helper()
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d/implicit_grant/sessions%s", p.AdminPort, query), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var answer sessionsAnswer
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &answer); err != nil || len(answer.Sites) != 1 {
			t.Fatalf("%s %s: %s (%v)", method, query, body, err)
		}
	}
	return resp.StatusCode, answer, string(body)
}

// loggedIn logs a new browser in as user and returns its session cookie.
func loggedIn(t *testing.T, origin, user string) string {
	t.Helper()
	b := newBrowser(t)
	if page, _ := b.LoginAs(origin, "/", user); page.StatusCode != http.StatusOK {
		t.Fatalf("login as %s: %d", user, page.StatusCode)
	}
	return jarCookie(t, b, origin, sessionCookie)
}

// statuses is what an API call with each session cookie gets.
func statuses(t *testing.T, origin string, cookies ...string) []int {
	t.Helper()
	var got []int
	for _, c := range cookies {
		status, err := apiCall(http.DefaultClient, origin+"/api/x", c)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, status)
	}
	return got
}

func wantStatuses(t *testing.T, when string, got []int, want ...int) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: API calls got %v, want %v", when, got, want)
	}
}

// TestAdminAPIEndsSessions: through Caddy's admin endpoint, count the
// sessions, end one user's (the others keep working), refuse a request
// that could end everyone's by mistake, then end everyone's; with the
// memory store (ended in the store) and the cookie store (refused from
// the revocation record).
func TestAdminAPIEndsSessions(t *testing.T) {
	const ok, gone = http.StatusOK, http.StatusUnauthorized
	for _, store := range []string{"memory", "cookie"} {
		t.Run(store, func(t *testing.T) {
			s := newSite(t, siteOptions{extra: "store " + store})
			alice1, alice2, bob := loggedIn(t, s.origin, "alice"), loggedIn(t, s.origin, "alice"), loggedIn(t, s.origin, "bob")

			status, answer, body := admin(t, s.caddy, http.MethodGet, "")
			if status != ok || answer.Sites[0].Store != store || answer.Sites[0].RedirectURI != s.origin+"/oauth/callback" {
				t.Fatalf("GET: %d %s", status, body)
			}
			if store == "memory" && (answer.Sites[0].Sessions == nil || *answer.Sites[0].Sessions != 3 || !answer.Sites[0].Exact) {
				t.Fatalf("GET: want 3 exact sessions: %s", body)
			}

			for _, bad := range []struct{ method, query string }{
				{http.MethodDelete, "?usr=alice"}, // misspelt: must not end everyone's
				{http.MethodDelete, "?user="},
				{http.MethodDelete, "?user=a&user=b"},
				{http.MethodDelete, "?user=" + strings.Repeat("a", 300)},
				{http.MethodDelete, "?user=a%0Ab"},
				{http.MethodDelete, "?everyone"},
				{http.MethodPost, ""},
			} {
				if status, _, body := admin(t, s.caddy, bad.method, bad.query); status != http.StatusBadRequest && status != http.StatusMethodNotAllowed {
					t.Errorf("%s %s: %d %s, want 400 or 405", bad.method, bad.query, status, body)
				}
			}
			wantStatuses(t, "after refused admin calls", statuses(t, s.origin, alice1, alice2, bob), ok, ok, ok)

			status, answer, body = admin(t, s.caddy, http.MethodDelete, "?user=alice")
			if status != ok {
				t.Fatalf("DELETE ?user=alice: %d %s", status, body)
			}
			if store == "memory" && (answer.Sites[0].Ended == nil || *answer.Sites[0].Ended != 2) {
				t.Errorf("DELETE ?user=alice: want 2 ended: %s", body)
			}
			if store == "cookie" && answer.Sites[0].RevokedBefore == "" {
				t.Errorf("DELETE ?user=alice: no revoked_before: %s", body)
			}
			wantStatuses(t, "after ending alice's sessions", statuses(t, s.origin, alice1, alice2, bob), gone, gone, ok)

			time.Sleep(time.Second) // the cookie store's revocation covers logins in its second
			alice3 := loggedIn(t, s.origin, "alice")
			wantStatuses(t, "alice logs in again", statuses(t, s.origin, alice3), ok)

			if status, _, body := admin(t, s.caddy, http.MethodDelete, ""); status != ok {
				t.Fatalf("DELETE: %d %s", status, body)
			}
			wantStatuses(t, "after ending every session", statuses(t, s.origin, alice3, bob), gone, gone)
			if store == "memory" {
				if _, answer, body := admin(t, s.caddy, http.MethodGet, ""); *answer.Sites[0].Sessions != 0 {
					t.Errorf("GET after ending every session: %s", body)
				}
			}
			// A reload keeps the revocations (memory: the store; cookie: the record).
			s.caddy.Load(t, s.caddyfile(portOf(s.origin), portOf(s.provider), siteOptions{extra: "store " + store + "\n\t\tparam reloaded 1"}))
			wantStatuses(t, "after a reload", statuses(t, s.origin, alice1, bob), gone, gone)
		})
	}
}

// TestAdminAPIReachesEveryInstance: ending a user's sessions on one
// instance's admin API ends them on the other: through Redis, at once;
// through the cookie store's record in shared Caddy storage, within its
// refresh interval.
func TestAdminAPIReachesEveryInstance(t *testing.T) {
	for _, tc := range []struct {
		store  string
		within time.Duration
	}{
		{"redis", 200 * time.Millisecond},
		{"cookie", 12 * time.Second},
	} {
		t.Run(tc.store, func(t *testing.T) {
			store := "store cookie"
			if tc.store == "redis" {
				store = "store redis " + testredis.Start(t).URL
			}
			ti := newTwoInstances(t, store, filepath.Join(t.TempDir(), "shared-storage"))
			alice := jarCookie(t, ti.loginAcross(t), ti.originA, sessionCookie)
			bob := loggedIn(t, ti.originA, "bob")
			wantStatuses(t, "before", statuses(t, ti.originA, alice, bob), http.StatusOK, http.StatusOK)

			if status, _, body := admin(t, ti.b, http.MethodDelete, "?user=alice"); status != http.StatusOK {
				t.Fatalf("DELETE on B: %d %s", status, body)
			}
			start := time.Now()
			for statuses(t, ti.originA, alice)[0] != http.StatusUnauthorized {
				if time.Since(start) > tc.within {
					t.Fatalf("A still serves alice's session %v after B's admin API ended it", time.Since(start))
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("A refused alice's session %v after B's admin API ended it", time.Since(start).Round(time.Millisecond))
			wantStatuses(t, "bob's session on A", statuses(t, ti.originA, bob), http.StatusOK)
			if tc.store == "redis" {
				if _, answer, body := admin(t, ti.a, http.MethodGet, ""); *answer.Sites[0].Sessions != 1 {
					t.Errorf("A counts %s, want 1 session (bob's)", body)
				}
			}
		})
	}
}
