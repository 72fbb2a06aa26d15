package implicitgrant

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
)

// FuzzConfig feeds random Caddyfile blocks through the parser, Provision
// and a few requests: nothing may panic or hang, whatever the values.
// (go test -run XXX -fuzz FuzzConfig -fuzztime 60s .)
func FuzzConfig(f *testing.F) {
	for _, seed := range []string{
		"authorize_url https://as.example/a\nclient_id c\nredirect_uri https://app.example/cb\nvalidate none",
		"openid https://as.example\nclient_id c\nredirect_uri https://app.example/cb\nallow email *@corp.example\nclaims sub email",
		"authorize_url https://as.example/a\nclient_id c\nredirect_uri https://app.example/cb\nvalidate jwt {\nissuer https://as.example\n}\nstore cookie",
		"authorize_url https://as.example/a\nclient_id c\nredirect_uri https://app.example/cb\nvalidate introspect https://as.example/i\ncookie_name " + strings.Repeat("c", 3800),
		"authorize_url https://as.example/a\nclient_id c\nredirect_uri https://app.example/cb\nvalidate none\nlogin_path /in\nlogout_path /out\nstate_ttl 1s\nexpiry_leeway 0s",
		"authorize_url https://as.example/a\nclient_id c\nredirect_uri https://app.example/cb\nvalidate userinfo https://as.example/me\nrevalidate 1s\nstore memory {\nmax_sessions 1\n}",
	} {
		f.Add(seed)
	}
	storage := &certmagic.FileStorage{Path: f.TempDir()}
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > 16<<10 {
			return
		}
		// Tokenize as Caddy does (NewTestDispenser exits the process on a
		// lexer error, such as a malformed heredoc).
		tokens, err := caddyfile.Tokenize([]byte("implicit_grant {\n"+body+"\n}"), "Caddyfile")
		if err != nil {
			return
		}
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		if strings.Contains(string(h.StoreRaw), `"redis"`) {
			return // would dial out
		}
		if h.Secret == "" {
			h.Secret = testSecret // else Provision writes one to Caddy's storage
		}
		h.storage = storage // a bare context has no Caddy storage (the cookie store's revocations use it)
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		defer cancel()
		within(t, "Provision", func() {
			if err := h.Provision(ctx); err != nil {
				h.store = nil
			}
		})
		defer h.Cleanup()
		if h.store == nil {
			return
		}
		for _, target := range []string{"/page?x=1", h.LoginPath + "?return_to=%2Fpage", h.LogoutPath, h.callbackPath + "?error=access_denied"} {
			r := httptest.NewRequest(http.MethodGet, "https://app.example/", nil)
			r.URL.Path, r.URL.RawQuery, _ = strings.Cut(target, "?")
			r.Header.Set("Accept", "text/html")
			r.Header.Set("Sec-Fetch-Site", "same-origin")
			r.Header.Set("Cookie", h.CookieName+"=x; "+h.CookieName+"_1=y")
			within(t, target, func() { _ = h.ServeHTTP(httptest.NewRecorder(), r, noopNext) })
		}
	})
}

// within fails the test if f takes longer than a few seconds.
func within(t *testing.T, what string, f func()) {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return within 5 s", what)
	}
}
