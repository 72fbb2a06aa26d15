package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium; without it the suite skips, or
// fails when IMPLICIT_GRANT_REQUIRE_ALL=1 (CI).
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("IMPLICIT_GRANT_REQUIRE_ALL") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium); IMPLICIT_GRANT_REQUIRE_ALL=1 forbids skipping")
	}
	t.Skip("chromium not installed")
	return ""
}

// browser is one headless Chromium with a fresh profile, and what its pages
// reported on the console.
type browser struct {
	t       testing.TB
	ctx     context.Context
	mu      sync.Mutex
	console []string // errors, exceptions and CSP violations, from every page
}

// cspReporter runs before any page script (DevTools-injected scripts are
// not subject to the page's CSP) and turns violations into console errors.
const cspReporter = `document.addEventListener("securitypolicyviolation", function (e) {
	console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI);
});`

func newBrowser(t testing.TB) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 760),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("ignore-certificate-errors", true), // the https sites' certificates are made by the tests
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	b.watch(ctx)
	return b
}

// watch records console errors and exceptions of the tab behind ctx.
func (b *browser) watch(ctx context.Context) {
	b.t.Helper()
	if err := chromedp.Listen(ctx, func(ev any) {
		var line string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type != runtime.ConsoleAPICalledTypeError {
				return
			}
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value))
			}
			line = "console.error: " + strings.Join(parts, " ")
		case *runtime.EventExceptionThrown:
			line = "exception: " + e.ExceptionDetails.Text
		default:
			return
		}
		b.mu.Lock()
		b.console = append(b.console, line)
		b.mu.Unlock()
	}); err != nil {
		b.t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspReporter}); err != nil {
		b.t.Fatal(err)
	}
}

// newTab opens another tab in the same browser (same cookies).
func (b *browser) newTab() context.Context {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	b.watch(ctx)
	return ctx
}

func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

func (b *browser) navigate(ctx context.Context, url string) {
	b.t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("navigate %s: %v", url, err)
	}
}

func (b *browser) location(ctx context.Context) string {
	b.t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

func eval[T any](b *browser, ctx context.Context, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls the page until cond (a JS expression) is true.
func (b *browser) waitFor(ctx context.Context, cond string, what string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond)); err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("timed out waiting for %s; at %s", what, b.location(ctx))
}

// waitLocation waits until the tab's URL starts with prefix.
func (b *browser) waitLocation(ctx context.Context, prefix string) string {
	b.t.Helper()
	b.waitFor(ctx, fmt.Sprintf("location.href.startsWith(%q) && document.readyState === 'complete'", prefix), "location "+prefix)
	return b.location(ctx)
}

// decide waits for the server's consent screen and clicks approve or deny.
func (b *browser) decide(ctx context.Context, button string) {
	b.t.Helper()
	b.waitFor(ctx, fmt.Sprintf("!!document.querySelector(%q)", "#"+button), "the consent screen's "+button+" button")
	if err := chromedp.Do(ctx, chromedp.Click("#"+button)); err != nil {
		b.t.Fatalf("click %s: %v", button, err)
	}
}

func (b *browser) text(ctx context.Context, sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

func (b *browser) screenshot(ctx context.Context, file string) {
	b.t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 means PNG; below that, JPEG
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// cdpCall runs a DevTools command on the tab behind ctx.
func cdpCall[P, R any](b *browser, ctx context.Context, cmd cdp.Command[P, R], params P) R {
	b.t.Helper()
	r, err := chromedp.Call(ctx, cmd, params)
	if err != nil {
		b.t.Fatalf("%s: %v", cmd.Method, err)
	}
	return r
}
