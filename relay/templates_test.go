package relay

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func templateFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "page.html")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func builtinFile(t *testing.T, name string) string {
	t.Helper()
	raw, err := pageFiles.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestBuiltinPagesAreValidTemplates: the built-in pages, copied as a site
// owner would start, load as templates of their kind.
func TestBuiltinPagesAreValidTemplates(t *testing.T) {
	for kind, file := range map[string]string{"relay": "relay.html", "start": "start.html", ErrorPage: "message.html", SignedOutPage: "message.html", ForbiddenPage: "message.html"} {
		if err := Builtin().LoadTemplate(kind, templateFile(t, builtinFile(t, file))); err != nil {
			t.Errorf("%s from %s: %v", kind, file, err)
		}
	}
}

// TestTemplatesRefused: a template that does not parse (the file and line
// named), lacks what the script needs, adds or changes a script, or styles
// in a way the CSP cannot admit, is refused.
func TestTemplatesRefused(t *testing.T) {
	relay := builtinFile(t, "relay.html")
	for _, tc := range []struct{ name, kind, content, want string }{
		{"parse error", ErrorPage, "<p>\n{{.Title}\n</p>", ":2: "},
		{"unknown field", ErrorPage, "<p>{{.Colour}}</p>", "can't evaluate field Colour"},
		{"no status element", "relay", strings.Replace(relay, `id="status"`, `id="state"`, 1), `must render id="status"`},
		{"no answer on landing", "relay", strings.Replace(relay, `id="answer"`, `id="reply"`, 1), `must render id="answer"`},
		{"script left out", "relay", strings.Replace(relay, "<script>{{.Script}}</script>", "", 1), "0 <script> elements"},
		{"a second script", "relay", strings.Replace(relay, "</body>", "<script>alert(1)</script></body>", 1), "2 <script> elements"},
		{"script with src", "relay", strings.Replace(relay, "<script>{{.Script}}</script>", `<script src="/x.js">{{.Script}}</script>`, 1), "no attributes"},
		{"script on a message page", ErrorPage, "<p>{{.Text}}</p><script>alert(1)</script>", "runs no script"},
		{"no sign-out form", SignedOutPage, "<h1>{{.Title}}</h1><p>{{.Text}}</p>", `must render <form`},
		{"start link changed", "start", strings.Replace(builtinFile(t, "start.html"), `data-return-to="{{.ReturnTo}}"`, "", 1), `must render data-return-to`},
		{"style attribute", ErrorPage, `<p style="color:red">{{.Text}}</p>`, "style attribute"},
		{"style from data", ErrorPage, `<style>h1::after{content:"{{.Title}}"}</style><h1>{{.Title}}</h1>`, "change with the page's data"},
		{"unknown page", "login", "<p></p>", `unknown page "login"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := templateFile(t, tc.content)
			err := Builtin().LoadTemplate(tc.kind, file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if tc.kind != "login" && !strings.Contains(err.Error(), file) {
				t.Errorf("the error does not name the file: %v", err)
			}
		})
	}
}

// TestTemplateStylesAdmitted: a template's fixed <style> is admitted by
// its hash, the site's own stylesheets and images by 'self'; the headers
// and the module's script stay.
func TestTemplateStylesAdmitted(t *testing.T) {
	const style = "body{font-family:Georgia,serif;color:#123}"
	p := Builtin()
	if err := p.LoadTemplate(ErrorPage, templateFile(t, `<!doctype html><html><head><title>{{.Title}}</title><style>`+style+`</style><link rel="stylesheet" href="/brand.css"></head><body><img src="/logo.png" alt=""><h1>{{.Title}}</h1><p>{{.Text}}</p></body></html>`)); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	_ = p.ServeMessage(w, http.StatusBadRequest, ErrorPage, Message{Title: "Sign-in failed", Text: "Try again."})
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"style-src 'self' " + styleHash + " " + cspHash(style), "img-src 'self' data:", "default-src 'none'", "frame-ancestors 'none'", "form-action 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if w.Code != http.StatusBadRequest || w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("X-Frame-Options") != "DENY" || !strings.Contains(w.Body.String(), "Georgia") {
		t.Errorf("%d %v\n%s", w.Code, w.Header(), w.Body.String())
	}
	// The other pages are still the built-in ones.
	w = httptest.NewRecorder()
	_ = p.ServeMessage(w, http.StatusOK, SignedOutPage, Message{Title: "Signed out"})
	if strings.Contains(w.Body.String(), "Georgia") || w.Header().Get("Content-Security-Policy") != messageCSP {
		t.Error("another page changed with the error page's template")
	}
}
