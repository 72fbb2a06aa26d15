package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/browsers"
)

// TestFirefoxLogin: in Firefox, a deep URL with a query and a fragment
// comes back exactly after the login; the session cookie is HttpOnly,
// SameSite=Lax, Path=/ and invisible to document.cookie; no page logs an
// error or a CSP violation (the favicon request once did); logout, then a
// new login, works.
func TestFirefoxLogin(t *testing.T) {
	s := newSite(t, devProvider(), 0, "")
	f := loggedInFirefox(t, s.origin+"/app?view=2#/reports/17")
	c, ok := cookieNamed(f.Cookies(), sessionCookie)
	if !ok {
		t.Fatalf("no %s cookie in Firefox", sessionCookie)
	}
	if !c.HTTPOnly || c.Path != "/" || !strings.EqualFold(c.SameSite, "lax") {
		t.Errorf("session cookie: %+v", c)
	}
	var visible string
	if err := f.Eval("document.cookie", &visible); err != nil || strings.Contains(visible, "implicit_grant") {
		t.Errorf("document.cookie: %q %v", visible, err)
	}
	f.Navigate(s.origin + "/oauth/logout")
	f.WaitFor(`document.body && document.body.textContent.indexOf("Signed out") >= 0`, "the signed-out page")
	f.Navigate(s.origin + "/again#frag")
	f.WaitLocation(s.origin + "/again#frag")
	if errs := f.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestFirefoxDenyThenTryAgain: a denial shows the error page; "Try again"
// starts a new login that comes back to the page.
func TestFirefoxDenyThenTryAgain(t *testing.T) {
	s := newSite(t, devProvider(), 0, "")
	f := browsers.StartFirefox(t)
	f.Navigate(s.origin + "/dash?tab=2")
	f.Click("#deny")
	f.WaitFor(`document.body && document.body.textContent.indexOf("Sign-in was declined") >= 0`, "the error page")
	f.Click("a.button")
	f.Click("#approve")
	f.WaitLocation(s.origin + "/dash?tab=2")
	if errs := f.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestFirefoxExpiry: when the token expires the next page load logs in
// again without a dialog, fragment included.
func TestFirefoxExpiry(t *testing.T) {
	s := newSite(t, devProvider(), 4*time.Second, "expiry_leeway 1s")
	f := browsers.StartFirefox(t)
	target := s.origin + "/live?x=1#/panel"
	f.Navigate(target)
	f.Click("#approve")
	f.WaitLocation(target)
	before := s.upstream.count()
	time.Sleep(3500 * time.Millisecond)
	f.Navigate("about:blank")
	f.Navigate(target)
	f.WaitLocation(target)
	if s.upstream.count() == before {
		t.Error("after expiry the page was not served again")
	}
}

// TestFirefoxOverHTTPS: over https the fragment survives and the cookie is
// Secure with the __Host- prefix.
func TestFirefoxOverHTTPS(t *testing.T) {
	tls := newHTTPSSite(t, devProvider(), "", "")
	f := browsers.StartFirefox(t)
	target := tls.origin + "/reports?range=7d#/panel/3"
	f.Navigate(target)
	f.Click("#approve")
	f.WaitLocation(target)
	if c, ok := cookieNamed(f.Cookies(), "__Host-implicit_grant"); !ok || !c.Secure || !c.HTTPOnly {
		t.Errorf("no Secure, HttpOnly __Host-implicit_grant cookie over https")
	}
	if errs := f.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestFirefoxFormPost: a form_post login in Firefox (plain http on
// localhost, which Firefox treats as secure for the SameSite=None state
// cookie) comes back to the exact URL, fragment included.
func TestFirefoxFormPost(t *testing.T) {
	s := newSite(t, devProvider(), 0, "response_mode form_post")
	f := loggedInFirefox(t, s.origin+"/app?view=2#/reports/17")
	if errs := f.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// loggedInFirefox opens target in a new Firefox, approves at the dev
// provider's consent page, and waits for target (fragment included) to
// show the upstream's page with a valid token.
func loggedInFirefox(t *testing.T, target string) *browsers.Firefox {
	t.Helper()
	f := browsers.StartFirefox(t)
	f.Navigate(target)
	f.Click("#approve")
	f.WaitLocation(target)
	f.WaitFor(`document.querySelector("#token-status") && document.querySelector("#token-status").textContent === "valid"`, "the upstream's page with a valid token")
	return f
}

// cookieNamed finds a cookie in what Firefox or WebKit reports.
func cookieNamed(cookies []browsers.Cookie, name string) (browsers.Cookie, bool) {
	for _, c := range cookies {
		if c.Name == name {
			return c, true
		}
	}
	return browsers.Cookie{}, false
}
