package implicitgrant

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// request is a GET of target with the given headers ("Name: value").
func request(method, target string, headers ...[2]string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for _, h := range headers {
		r.Header.Set(h[0], h[1])
	}
	return r
}

func hdr(name, value string) [2]string { return [2]string{name, value} }

func TestIsPageLoad(t *testing.T) {
	html := hdr("Accept", "text/html,application/xhtml+xml")
	for _, tc := range []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"a navigation", request("GET", "/", html, hdr("Sec-Fetch-Mode", "navigate")), true},
		{"an old browser's navigation", request("GET", "/", html), true},
		{"HEAD", request("HEAD", "/", html), true},
		{"fetch", request("GET", "/", html, hdr("Sec-Fetch-Mode", "cors")), false},
		{"no-cors", request("GET", "/", html, hdr("Sec-Fetch-Mode", "no-cors")), false},
		{"XHR by header", request("GET", "/", html, hdr("X-Requested-With", "XMLHttpRequest")), false},
		{"JSON wanted", request("GET", "/", hdr("Accept", "application/json")), false},
		{"no Accept", request("GET", "/"), false},
		{"POST", request("POST", "/", html, hdr("Sec-Fetch-Mode", "navigate")), false},
	} {
		if got := isPageLoad(tc.r); got != tc.want {
			t.Errorf("%s: isPageLoad = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRedirectsToLoginByPolicy(t *testing.T) {
	page := request("GET", "/", hdr("Accept", "text/html"))
	api := request("GET", "/", hdr("Accept", "application/json"))
	post := request("POST", "/", hdr("Accept", "text/html"))
	for _, tc := range []struct {
		policy          UnauthenticatedPolicy
		page, api, post bool
	}{
		{UnauthenticatedAuto, true, false, false},
		{UnauthenticatedRedirect, true, true, false},
		{UnauthenticatedReject, false, false, false},
	} {
		h := &Handler{Unauthenticated: tc.policy}
		if h.redirectsToLogin(page) != tc.page || h.redirectsToLogin(api) != tc.api || h.redirectsToLogin(post) != tc.post {
			t.Errorf("%s: page %v api %v post %v, want %v %v %v", tc.policy,
				h.redirectsToLogin(page), h.redirectsToLogin(api), h.redirectsToLogin(post), tc.page, tc.api, tc.post)
		}
	}
}

func TestFrames(t *testing.T) {
	framed := request("GET", "/", hdr("Sec-Fetch-Dest", "iframe"))
	if !inFrame(framed) || !framedLogin(framed) {
		t.Error("a frame's load is not seen as a frame")
	}
	script := request("POST", "/", hdr("Sec-Fetch-Dest", "empty"), hdr("X-Implicit-Grant-Frame", "1"))
	if inFrame(script) || !framedLogin(script) {
		t.Error("the relay script's post from a frame: inFrame must be false, framedLogin true")
	}
	if top := request("GET", "/", hdr("Sec-Fetch-Dest", "document")); inFrame(top) || framedLogin(top) {
		t.Error("a top-level load is seen as a frame")
	}
}

func TestLogoutIsWanted(t *testing.T) {
	h := &Handler{origin: "https://app.example"}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"the site's own form", request("POST", "/oauth/logout", hdr("Origin", "https://app.example")), true},
		{"another site's form", request("POST", "/oauth/logout", hdr("Origin", "https://evil.example")), false},
		{"the site's own link", request("GET", "/oauth/logout", hdr("Sec-Fetch-Site", "same-origin")), true},
		{"typed by the user", request("GET", "/oauth/logout", hdr("Sec-Fetch-Site", "none")), true},
		{"another site's link", request("GET", "/oauth/logout", hdr("Sec-Fetch-Site", "cross-site")), false},
		{"a sibling subdomain's link", request("GET", "/oauth/logout", hdr("Sec-Fetch-Site", "same-site")), false},
		{"an old browser says nothing", request("GET", "/oauth/logout"), false},
		{"PUT", request("PUT", "/oauth/logout", hdr("Origin", "https://app.example")), false},
	} {
		if got := h.logoutIsWanted(tc.r); got != tc.want {
			t.Errorf("%s: logoutIsWanted = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPostedByServer(t *testing.T) {
	h := &Handler{authorizePrefix: "https://as.example:8443/authorize?client_id=x&state="}
	nav := [][2]string{hdr("Sec-Fetch-Mode", "navigate"), hdr("Sec-Fetch-Dest", "document")}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"the server's page", request("POST", "/cb", append(nav, hdr("Origin", "https://as.example:8443"))...), true},
		{"a hidden origin", request("POST", "/cb", append(nav, hdr("Origin", "null"))...), true},
		{"into session.js's frame", request("POST", "/cb", hdr("Sec-Fetch-Mode", "navigate"), hdr("Sec-Fetch-Dest", "iframe"), hdr("Origin", "https://as.example:8443")), true},
		{"another origin", request("POST", "/cb", append(nav, hdr("Origin", "https://evil.example"))...), false},
		{"another port", request("POST", "/cb", append(nav, hdr("Origin", "https://as.example"))...), false},
		{"a script's fetch", request("POST", "/cb", hdr("Sec-Fetch-Mode", "cors"), hdr("Origin", "https://as.example:8443")), false},
		{"an image", request("POST", "/cb", hdr("Sec-Fetch-Mode", "navigate"), hdr("Sec-Fetch-Dest", "image"), hdr("Origin", "null")), false},
		{"no Origin at all", request("POST", "/cb", nav...), false},
	} {
		if got := h.postedByServer(tc.r); got != tc.want {
			t.Errorf("%s: postedByServer = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPublicURLIsTheBrowsers(t *testing.T) {
	orig := request("GET", "https://app.example/app/oauth/login?x=1")
	r := request("GET", "https://app.example/oauth/login")
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, *orig))
	if got := publicURL(r).RequestURI(); got != "/app/oauth/login?x=1" {
		t.Errorf("under handle_path: publicURL = %q, want the original /app/oauth/login?x=1", got)
	}
	if got := publicURL(request("GET", "/plain")).Path; got != "/plain" {
		t.Errorf("without a rewrite: publicURL = %q", got)
	}
}

func TestReturnPathFor(t *testing.T) {
	h := &Handler{origin: "https://app.example"}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"a page load comes back to itself", request("GET", "/reports?x=1", hdr("Accept", "text/html")), "/reports?x=1"},
		{"a script's call, to the page that made it", request("GET", "/api", hdr("Referer", "https://app.example/dash?v=2")), "/dash?v=2"},
		{"another origin's Referer is not followed", request("GET", "/api", hdr("Referer", "https://evil.example/x")), "/"},
		{"no Referer", request("GET", "/api"), "/"},
	} {
		if got := h.returnPathFor(tc.r); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestClientAddress(t *testing.T) {
	r := request("GET", "/")
	r.RemoteAddr = "192.0.2.7:5555"
	if got := clientAddress(r); got != "192.0.2.7" {
		t.Errorf("from the connection: %q", got)
	}
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "203.0.113.9"})
	if got := clientAddress(r.WithContext(ctx)); got != "203.0.113.9" {
		t.Errorf("Caddy's client IP (trusted proxies considered) must win: %q", got)
	}
}

func TestRelayOriginCheck(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { h.RedirectURI = "https://App.Example:443/oauth/callback" })
	for origin, want := range map[string]bool{
		"https://app.example":       true, // browsers omit the default port and lower-case the host
		"https://app.example:443":   true,
		"https://APP.example":       true,
		"http://app.example":        false,
		"https://app.example:8443":  false,
		"https://app.example.evil":  false,
		"https://evil.example":      false,
		"null":                      false,
		"https://app.example@evil/": false,
	} {
		r := httptest.NewRequest(http.MethodPost, "https://app.example/oauth/callback", nil)
		r.Header.Set("Origin", origin)
		if got := h.sameOrigin(r); got != want {
			t.Errorf("Origin %q: same origin = %v, want %v", origin, got, want)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "https://app.example/oauth/callback", nil)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	if h.sameOrigin(r) {
		t.Error("a cross-site request without Origin was accepted")
	}
}
