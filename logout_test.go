package implicitgrant

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testbrowser"
)

func TestLogout(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	b := newBrowser(t)
	b.Login(s.origin, "/")
	u, _ := url.Parse(s.origin)
	var stolen string
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == testbrowser.SessionCookie {
			stolen = c.Value
		}
	}
	if stolen == "" {
		t.Fatal("no session cookie after login")
	}

	out := b.Navigate(s.origin + "/oauth/logout")
	if out.StatusCode != http.StatusOK || !strings.Contains(bodyOf(out), "Signed out") {
		t.Fatalf("logout: %d %s", out.StatusCode, bodyOf(out))
	}
	if c := testbrowser.SessionSetCookie(out); c == nil || c.MaxAge >= 0 {
		t.Fatalf("logout did not delete the cookie: %+v", c)
	}
	if next := b.Navigate(s.origin + "/"); next.StatusCode != http.StatusFound {
		t.Errorf("after logout: %d, want a new login", next.StatusCode)
	}
	// The session is gone on the server too: a copy of the cookie is useless.
	req, _ := http.NewRequest(http.MethodGet, s.origin+"/", nil)
	req.Header.Set("Cookie", testbrowser.SessionCookie+"="+stolen)
	req.Header.Set("Accept", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("old cookie after logout: %v %v, want 401", resp.StatusCode, err)
	}
}
