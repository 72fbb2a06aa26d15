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

// TestLogoutByAStranger: a cross-site link or redirect to the logout path
// (Sec-Fetch-Site: cross-site, or no marks at all) ends nothing; it shows a
// page whose button, a same-origin POST, does. The site's own links
// (same-origin) and a typed address (none) sign out in one step.
func TestLogoutByAStranger(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	logout := func(b *testbrowser.Browser, method, site, origin string) *http.Response {
		req, _ := http.NewRequest(method, s.origin+"/oauth/logout", nil)
		req.Header.Set("Accept", "text/html")
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		return b.Do(req)
	}
	signedIn := func(b *testbrowser.Browser) bool {
		return b.Navigate(s.origin+"/dash").StatusCode == http.StatusOK
	}
	for _, tc := range []struct {
		name, method, site, origin string
		endsSession                bool
	}{
		{"cross-site link", http.MethodGet, "cross-site", "", false},
		{"same-site subdomain", http.MethodGet, "same-site", "", false},
		{"no marks (old browser)", http.MethodGet, "", "", false},
		{"cross-site form post", http.MethodPost, "cross-site", "https://evil.example", false},
		{"the site's own link", http.MethodGet, "same-origin", "", true},
		{"typed by the user", http.MethodGet, "none", "", true},
		{"the confirmation button", http.MethodPost, "same-origin", s.origin, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t)
			b.Login(s.origin, "/dash")
			resp := logout(b, tc.method, tc.site, tc.origin)
			if got := !signedIn(b); got != tc.endsSession {
				t.Fatalf("session ended = %v, want %v (%d)", got, tc.endsSession, resp.StatusCode)
			}
			if !tc.endsSession {
				body := bodyOf(resp)
				if !strings.Contains(body, `<form method="post" action="/oauth/logout">`) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "form-action 'self'") {
					t.Errorf("no sign-out button:\n%s", body)
				}
				if c := testbrowser.SessionSetCookie(resp); c != nil {
					t.Error("the confirmation page touched the session cookie")
				}
			}
		})
	}
}
