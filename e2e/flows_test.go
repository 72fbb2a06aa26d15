package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestFormPostLogin: with response_mode form_post the server POSTs the
// token to the callback, cross-site; the login lands on the exact URL it
// started from, fragment included, and no URL in the tab ever held the
// token (not even a fragment).
func TestFormPostLogin(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			s := newSite(t, srv, 0, "response_mode form_post")
			b := newBrowser(t)
			target := s.origin + "/app?view=2#/reports/17"
			if loc := b.loginTo(t, s, "/app?view=2#/reports/17", "/app", true); loc != target {
				t.Fatalf("landed on %s, want %s", loc, target)
			}
			history, err := chromedp.Run(b.ctx, chromedp.NavigationEntries())
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range history.Entries {
				if strings.Contains(e.URL, "access_token=") || strings.Contains(e.URL, "id_token=") {
					t.Errorf("history entry %d holds a token: %s", e.ID, e.URL)
				}
			}
			if errs := b.consoleErrors(); len(errs) > 0 {
				t.Errorf("console errors or CSP violations:\n%s", strings.Join(errs, "\n"))
			}
		})
	}
}

// TestRenewBeforeWithoutDialog: a page load inside renew_before goes
// through the authorization server with prompt=none and comes back to the
// same URL, fragment included, with a new token and no dialog (nothing is
// clicked: a dialog would stop the test).
func TestRenewBeforeWithoutDialog(t *testing.T) {
	for _, srv := range servers(t) {
		for _, mode := range []string{"fragment", "form_post"} {
			t.Run(srv.name+"/"+mode, func(t *testing.T) {
				// 30 s tokens, 1 s leeway: a 29 s session enters the 25 s
				// renewal window 4 s after the login.
				s := newSite(t, srv, 30*time.Second, "expiry_leeway 1s\n\t\trenew_before 25s\n\t\tresponse_mode "+mode)
				b := newBrowser(t)
				b.loginTo(t, s, "/page?x=1", "/page?x=1", true)
				first := s.upstream.lastAuth()
				time.Sleep(5 * time.Second)

				b.navigate(b.ctx, s.origin+"/page?x=2#kept")
				if loc := b.waitLocation(b.ctx, s.origin+"/page?x=2"); loc != s.origin+"/page?x=2#kept" {
					t.Errorf("after the renewal landed on %s", loc)
				}
				b.upstreamSaysValid(t, b.ctx)
				if again := s.upstream.lastAuth(); again == first || again == "" {
					t.Error("the upstream did not get a new token from the renewal")
				}
				if errs := b.consoleErrors(); len(errs) > 0 {
					t.Errorf("console errors or CSP violations:\n%s", strings.Join(errs, "\n"))
				}
			})
		}
	}
}

// TestSilentRenewalLeadsToLogin: when the server answers the renewal's
// prompt=none with "the user is needed", the person sees the server's
// login page, never the module's error page. The dev provider is set to
// demand interaction (interaction_required); Hydra has forgotten the user
// (its cookies deleted: login_required), and its login app signs alice in
// again at once.
func TestSilentRenewalLeadsToLogin(t *testing.T) {
	for _, srv := range []authServer{devProviderWith("demand_interaction"), hydraServer(t, "openid")} {
		t.Run(srv.name, func(t *testing.T) {
			s := newSite(t, srv, 30*time.Second, "expiry_leeway 1s\n\t\trenew_before 25s")
			b := newBrowser(t)
			b.loginTo(t, s, "/page?x=1", "/page?x=1", true)
			first := s.upstream.lastAuth()
			if srv.name == "hydra" {
				for _, c := range cdpCall(b, b.ctx, network.GetCookies, network.GetCookiesParams{}).Cookies {
					if c.Domain == "127.0.0.1" { // Hydra's, not the site's (localhost)
						cdpCall(b, b.ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: c.Name, Domain: c.Domain, Path: c.Path})
					}
				}
			}
			time.Sleep(5 * time.Second)

			b.navigate(b.ctx, s.origin+"/page?x=2#kept")
			if srv.name != "hydra" {
				// The provider's own login page, shown by a normal login.
				b.decide(b.ctx, "approve")
			}
			if loc := b.waitLocation(b.ctx, s.origin+"/page?x=2"); loc != s.origin+"/page?x=2#kept" {
				t.Errorf("after logging in again landed on %s", loc)
			}
			b.upstreamSaysValid(t, b.ctx)
			if again := s.upstream.lastAuth(); again == first {
				t.Error("the upstream did not get a new token")
			}
			if errs := b.consoleErrors(); len(errs) > 0 {
				t.Errorf("console errors or CSP violations:\n%s", strings.Join(errs, "\n"))
			}
		})
	}
}
