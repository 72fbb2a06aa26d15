package implicitgrant

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAdminAPIListsEveryHandler: handlers with the same server and client
// but other allow rules, or another callback, each have their own
// sessions, and each has its own line; handlers configured alike share
// one.
func TestAdminAPIListsEveryHandler(t *testing.T) {
	base := func(h *Handler) {
		h.ClientID = "admin-api-test"
		h.RedirectURI = "https://app.example/oauth/callback"
	}
	configs := []func(*Handler){
		base,
		base, // alike: shares the first one's sessions
		func(h *Handler) { base(h); h.Allow = []AllowRule{{Claim: "groups", Patterns: []string{"admins"}}} },
		func(h *Handler) { base(h); h.RedirectURI = "https://admin.example/oauth/callback" },
	}
	for _, c := range configs {
		newTestHandler(t, c)
	}
	w := httptest.NewRecorder()
	if err := serveSessionsAPI(w, httptest.NewRequest(http.MethodGet, "/implicit_grant/sessions", nil)); err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Sites []siteSessions `json:"sites"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range answer.Sites {
		if s.ClientID == "admin-api-test" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d lines for 4 handlers of which 2 are alike, want 3: %s", n, w.Body.String())
	}
}
