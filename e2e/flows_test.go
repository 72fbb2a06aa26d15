package e2e

import (
	"fmt"
	"path/filepath"
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

// TestSessionScriptKeepsPollingPageAlive: a page that includes session.js
// and calls its API every second, across more than two token lifetimes,
// never gets a 401: the script renews the session in a hidden frame
// before it ends, with no dialog.
func TestSessionScriptKeepsPollingPageAlive(t *testing.T) {
	// 10 s tokens, 1 s leeway, renew_before 4 s: a renewal every ~5 s. The
	// provider is on the site's own site (localhost, another port): its
	// cookies are first-party in the frame, as an IdP at
	// login.corp.example is for dash.corp.example.
	s := newSite(t, devProviderOn("localhost", ""), 10*time.Second, "expiry_leeway 1s\n\t\trenew_before 4s")
	b := newBrowser(t)
	b.openDashboard(s)
	time.Sleep(25 * time.Second)
	statuses := eval[[]int](b, b.ctx, "window.statuses")
	renewals := eval[int](b, b.ctx, "window.renewals")
	if len(statuses) < 20 {
		t.Fatalf("only %d API calls in 25 s", len(statuses))
	}
	for i, status := range statuses {
		if status != 200 {
			t.Logf("renewals %d, login_required %d", renewals, eval[int](b, b.ctx, "window.loginRequired"))
			t.Fatalf("API call %d of %d got %d (all: %v)", i, len(statuses), status, statuses)
		}
	}
	if renewals < 3 || eval[int](b, b.ctx, "window.loginRequired") != 0 {
		t.Errorf("%d renewals and %d login_required events in 25 s of 9 s sessions", renewals, eval[int](b, b.ctx, "window.loginRequired"))
	}
	if loc := b.location(b.ctx); loc != s.origin+"/dashboard" {
		t.Errorf("the page navigated away: %s", loc)
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors or CSP violations:\n%s", strings.Join(errs, "\n"))
	}
	t.Logf("%d API calls, all 200; %d renewals", len(statuses), renewals)
}

// TestSessionScriptTellsLoginRequired: when the server will not renew
// without the user, session.js says so with an event (the page decides
// what to do) and leaves the page where it is.
func TestSessionScriptTellsLoginRequired(t *testing.T) {
	s := newSite(t, devProviderWith("demand_interaction"), 10*time.Second, "expiry_leeway 1s\n\t\trenew_before 4s")
	b := newBrowser(t)
	b.openDashboard(s)
	b.waitFor(b.ctx, "window.loginRequired > 0", "an implicit_grant:login_required event")
	if loc := b.location(b.ctx); loc != s.origin+"/dashboard" {
		t.Errorf("the page navigated away: %s", loc)
	}
}

// openDashboard logs in to the polling dashboard page.
func (b *browser) openDashboard(s *site) {
	b.t.Helper()
	b.navigate(b.ctx, s.origin+"/dashboard")
	b.decide(b.ctx, "approve")
	b.waitLocation(b.ctx, s.origin+"/dashboard")
	b.waitFor(b.ctx, "window.statuses !== undefined", "the dashboard's script")
}

// customPages are the templates of examples/custom-pages, for every page.
func customPages(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../examples/custom-pages")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, page := range []string{"relay", "start", "error", "forbidden", "signed_out"} {
		lines = append(lines, fmt.Sprintf("template %s %s", page, filepath.Join(dir, page+".html")))
	}
	return strings.Join(lines, "\n\t\t")
}

// TestCustomPages: every page rendered from the site owner's templates
// (examples/custom-pages) in Chromium: the login (start and relay pages)
// still works, the error, forbidden and signed-out pages show the owner's
// look (their <style> admitted by the CSP: the font is applied), and no
// CSP violation or script error is reported anywhere.
func TestCustomPages(t *testing.T) {
	brand := func(b *browser, page string) {
		t.Helper()
		b.waitFor(b.ctx, `!!document.querySelector(".brand") && document.readyState === "complete"`, "the "+page+" page in the owner's look")
		if font := eval[string](b, b.ctx, "getComputedStyle(document.body).fontFamily"); !strings.Contains(font, "Georgia") {
			t.Errorf("%s page: the template's style is not applied (font %q): blocked by the CSP?", page, font)
		}
	}
	t.Run("login, error, signed out", func(t *testing.T) {
		s := newSite(t, devProvider(), 0, customPages(t))
		b := newBrowser(t)
		b.navigate(b.ctx, s.origin+"/app")
		b.decide(b.ctx, "deny")
		b.waitLocation(b.ctx, s.origin+"/oauth/callback?error=access_denied")
		brand(b, "error")
		if text := b.text(b.ctx, "main"); !strings.Contains(text, "access_denied") || !strings.Contains(text, "The user denied the request") {
			t.Errorf("error page: %q", text)
		}
		b.loginTo(t, s, "/app#x", "/app", true)
		b.navigate(b.ctx, s.origin+"/oauth/logout")
		brand(b, "signed out")
		if text := b.text(b.ctx, "h1"); text != "Signed out" {
			t.Errorf("signed-out page: %q", text)
		}
		if errs := b.consoleErrors(); len(errs) > 0 {
			t.Errorf("console errors or CSP violations:\n%s", strings.Join(errs, "\n"))
		}
	})
	t.Run("forbidden", func(t *testing.T) {
		s := newSite(t, devProvider(), 0, customPages(t)+"\n\t\tallow email *@other.example")
		b := newBrowser(t)
		b.navigate(b.ctx, s.origin+"/app")
		b.decide(b.ctx, "approve")
		brand(b, "forbidden")
		if text := b.text(b.ctx, "h1"); text != "No access to this dashboard" {
			t.Errorf("forbidden page: %q", text)
		}
		if errs := b.consoleErrors(); len(errs) > 0 {
			t.Errorf("console errors or CSP violations:\n%s", strings.Join(errs, "\n"))
		}
	})
}

// TestCodeFlowPollingAcrossLifetimes: the code flow with PKCE as a public
// client, against the dev provider and Ory Hydra (refresh tokens rotating,
// reuse revoking the family): a deep URL lands with its query and
// fragment; a page polling its API every second across more than three
// 6 s token lifetimes never sees anything but 200, while the upstream
// gets each new token (refreshed on the server, no frame, no prompt);
// logout ends it.
func TestCodeFlowPollingAcrossLifetimes(t *testing.T) {
	for _, srv := range []authServer{devProvider(), hydraServer(t, "code")} {
		t.Run(srv.name, func(t *testing.T) {
			extra := "expiry_leeway 1s\n\t\trenew_before 3s"
			if srv.name == "dev-provider" {
				// The dashboard's fetch calls pass only with session.js adding the header.
				extra += "\n\t\tresponse_type code\n\t\trequire_header X-CSRF 1"
			}
			s := newSite(t, srv, 6*time.Second, extra)
			b := newBrowser(t)
			deep := s.origin + "/reports/7?range=30d#/panel/3"
			b.navigate(b.ctx, deep)
			b.decide(b.ctx, "approve")
			b.waitLocation(b.ctx, deep)
			b.upstreamSaysValid(t, b.ctx)

			b.navigate(b.ctx, s.origin+"/dashboard")
			b.waitFor(b.ctx, "window.statuses !== undefined", "the dashboard's script")
			time.Sleep(20 * time.Second)
			statuses := eval[[]int](b, b.ctx, "window.statuses")
			if len(statuses) < 15 {
				t.Fatalf("only %d API calls in 20 s", len(statuses))
			}
			for i, status := range statuses {
				if status != 200 {
					t.Fatalf("API call %d of %d got %d (all: %v)", i, len(statuses), status, statuses)
				}
			}
			tokens := map[string]bool{}
			for _, a := range s.upstream.allAuths() {
				tokens[a] = true
			}
			if len(tokens) < 4 {
				t.Errorf("the upstream saw %d tokens in 20 s of 6 s tokens; want the login's and at least three refreshed", len(tokens))
			}
			if valid, _ := srv.check(strings.TrimPrefix(s.upstream.lastAuth(), "Bearer ")); !valid {
				t.Error("the server says the newest token is not valid")
			}
			if renewals := eval[int](b, b.ctx, "window.renewals"); renewals != 0 {
				t.Errorf("%d frame renewals: the code flow refreshes on the server", renewals)
			}
			b.navigate(b.ctx, s.origin+"/oauth/logout")
			if body := eval[string](b, b.ctx, "document.body.innerText"); !strings.Contains(body, "Signed out") {
				t.Fatalf("logout page: %s", body)
			}
			b.navigate(b.ctx, s.origin+"/oauth/session")
			if body := eval[string](b, b.ctx, "document.body.innerText"); !strings.Contains(body, `"authenticated":false`) {
				t.Errorf("after logout the session path says: %s", body)
			}
		})
	}
}
