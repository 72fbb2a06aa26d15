package relay

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSafeReturnPath(t *testing.T) {
	for in, want := range map[string]string{
		"/":                             "/",
		"/reports/7?range=7d":           "/reports/7?range=7d",
		"/a%20b?q=%2F":                  "/a%20b?q=%2F",
		"/path/with/../dots":            "/path/with/../dots",
		"//evil.example":                "/",
		"/\\evil.example":               "/",
		"/%2F%2Fevil.example":           "/",
		"/%2f/evil.example":             "/",
		"/%5Cevil.example":              "/",
		"/\t/evil.example":              "/",
		"/\n/evil.example":              "/",
		"https://evil.example":          "/",
		"https:evil.example":            "/",
		"javascript:alert(1)":           "/",
		"evil.example/x":                "/",
		"":                              "/",
		"/ok\\but-backslash":            "/",
		"/..//evil.example":             "/",
		"/.//evil.example":              "/",
		"/a/../..//evil.example":        "/",
		"/%2e%2e//evil.example":         "/",
		"/a/./b/../c?x=1":               "/a/./b/../c?x=1",
		"/a%2F..\xff/..//evil.example":  "/", // non-ASCII + encoded slash: Go's EscapedPath saw other segments
		"/a%2f..\xc3\xa9/..//evil":      "/",
		"/\xc3\xa9/..//evil.example":    "/",
		"/caf\xc3\xa9/menu?x=1":         "/caf\xc3\xa9/menu?x=1",
		"/x?next=//evil.example":        "/x?next=//evil.example", // a query is data, not a location
		"/" + strings.Repeat("a", 5000): "/" + strings.Repeat("a", 5000),
		"/" + strings.Repeat("a", 9000): "/",
	} {
		if got := SafeReturnPath(in); got != want {
			t.Errorf("SafeReturnPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseFragment(t *testing.T) {
	tr, ae, err := ParseFragment("access_token=abc.DEF-123_~%2B%2F%3D&token_type=bearer&expires_in=3599&scope=a+b%20c&state=s1")
	if err != nil || ae != nil {
		t.Fatalf("valid response refused: %v %v", err, ae)
	}
	if tr.AccessToken != "abc.DEF-123_~+/=" || tr.ExpiresIn != 3599 || tr.Scope != "a b c" || tr.State != "s1" {
		t.Errorf("parsed %+v", tr)
	}
	if tr, _, err := ParseFragment("#access_token=x&token_type=Bearer&state=s"); err != nil || tr.ExpiresIn != 0 {
		t.Errorf("no expires_in: %+v %v", tr, err)
	}
	if tr, _, _ := ParseFragment("access_token=x&token_type=Bearer&state=s&expires_in=99999999999"); tr.ExpiresIn != maxExpiresIn {
		t.Errorf("huge expires_in not capped: %d", tr.ExpiresIn)
	}

	_, ae, err = ParseFragment("error=access_denied&error_description=User+said+no%0A%3Cscript%3E&state=s2")
	if err != nil || ae == nil || ae.Code != "access_denied" || ae.Description != "User said no<script>" || ae.State != "s2" {
		t.Errorf("error response: %+v %v", ae, err)
	}

	for _, bad := range []string{
		"token_type=Bearer&state=s",
		"access_token=a%0Db&token_type=Bearer&state=s",
		"access_token=a%00b&token_type=Bearer&state=s",
		"access_token=%20a&token_type=Bearer&state=s",
		"access_token=x%2C+Basic+YWRtaW46cGFzcw%3D%3D&token_type=Bearer&state=s",
		"access_token=a+b&token_type=Bearer&state=s",
		"access_token=a%22b&token_type=Bearer&state=s",
		"access_token=a%3Db&token_type=Bearer&state=s",
		"access_token=%3Dab&token_type=Bearer&state=s",
		"access_token=a%3Bb&token_type=Bearer&state=s",
		"access_token=a&id_token=x+y&token_type=Bearer&state=s",
		"access_token=a&token_type=mac&state=s",
		"access_token=a&state=s",
		"access_token=a&token_type=Bearer",
		"access_token=a&token_type=Bearer&state=s&expires_in=abc",
		"access_token=a&token_type=Bearer&state=s&expires_in=-1",
		"access_token=a&token_type=Bearer&state=s&expires_in=0",
		"access_token=a&access_token=b&token_type=Bearer&state=s",
		"access_token=a&token_type=Bearer&state=s&state=t",
		"access_token=a&token_type=Bearer&state=s&scope=%FF",
		"access_token=a;b=%zz",
		strings.Repeat("a", MaxFragmentBytes+1),
	} {
		if _, _, err := ParseFragment(bad); err == nil {
			t.Errorf("accepted %q", bad)
		} else if strings.Contains(err.Error(), "access_token=a") {
			t.Errorf("error repeats the input: %v", err)
		}
	}
}

func stateCookies(now *time.Time) *StateCookies {
	return &StateCookies{Keys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, NamePrefix: "__Host-ig_state_", TTL: time.Minute, MaxPending: 3, Now: func() time.Time { return *now }}
}

// browserRequest carries the cookies a browser kept from earlier responses.
func browserRequest(jar map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "https://app.example/cb", nil)
	for k, v := range jar {
		r.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	return r
}

func keep(jar map[string]string, w *httptest.ResponseRecorder) {
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(jar, c.Name)
		} else {
			jar[c.Name] = c.Value
		}
	}
}

func TestStateCookies(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := stateCookies(&now)
	jar := map[string]string{}
	for _, s := range []string{"state-one", "state-two", "state-three", "state-four"} {
		w := httptest.NewRecorder()
		c.Issue(w, browserRequest(jar), s, "/from/"+s, false)
		keep(jar, w)
		now = now.Add(time.Second)
	}
	if len(jar) != 3 {
		t.Fatalf("%d pending-login cookies, want MaxPending=3", len(jar))
	}
	if _, err := c.Take(httptest.NewRecorder(), browserRequest(jar), "state-one"); err != ErrStateMissing {
		t.Errorf("the oldest login survived the bound: %v", err)
	}
	w := httptest.NewRecorder()
	p, err := c.Take(w, browserRequest(jar), "state-three")
	if err != nil || p.ReturnTo != "/from/state-three" {
		t.Fatalf("take: %+v %v", p, err)
	}
	keep(jar, w)
	if _, err := c.Take(httptest.NewRecorder(), browserRequest(jar), "state-three"); err != ErrStateMissing {
		t.Errorf("a state was usable twice in one browser: %v", err)
	}
	if _, err := c.Take(httptest.NewRecorder(), browserRequest(map[string]string{}), "state-two"); err != ErrStateMissing {
		t.Errorf("another browser's state accepted: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := c.Take(httptest.NewRecorder(), browserRequest(jar), "state-two"); err != ErrStateExpired {
		t.Errorf("expired state: %v", err)
	}
}

func TestStateCookieTamperingAndMoving(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := stateCookies(&now)
	jar := map[string]string{}
	for _, s := range []string{"state-a", "state-b"} {
		w := httptest.NewRecorder()
		c.Issue(w, browserRequest(jar), s, "/", false)
		keep(jar, w)
	}
	nameA, nameB := c.cookieName(c.Keys[0], "state-a"), c.cookieName(c.Keys[0], "state-b")
	moved := map[string]string{nameB: jar[nameA]} // a valid value under another login's name
	if _, err := c.Take(httptest.NewRecorder(), browserRequest(moved), "state-b"); err != ErrStateInvalid {
		t.Errorf("moved cookie: %v", err)
	}
	tampered := map[string]string{nameA: "x" + jar[nameA][1:]}
	if _, err := c.Take(httptest.NewRecorder(), browserRequest(tampered), "state-a"); err != ErrStateInvalid {
		t.Errorf("tampered cookie: %v", err)
	}
	other := &StateCookies{Keys: [][]byte{[]byte("another key, another deployment!")}, NamePrefix: c.NamePrefix, TTL: time.Minute, MaxPending: 3}
	if _, err := other.Take(httptest.NewRecorder(), browserRequest(jar), "state-a"); err == nil {
		t.Error("a cookie signed with another key was accepted")
	}
}

func TestPagesHeaders(t *testing.T) {
	w := httptest.NewRecorder()
	_ = builtin.ServePage(w, false)
	h := w.Header()
	if h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("relay page headers: %v", h)
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'sha256-") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("relay CSP: %s", csp)
	}
	if !strings.Contains(w.Body.String(), "<noscript>") || !strings.Contains(w.Body.String(), "history.replaceState") {
		t.Error("relay page lacks its script or noscript message")
	}

	w = httptest.NewRecorder()
	_ = builtin.ServeMessage(w, http.StatusForbidden, ErrorPage, Message{Title: "Sign-in was declined", Text: "Declined at the consent screen.", Code: "access_denied", Description: `<img src=x onerror=alert(1)>`, LinkHref: "/back", LinkText: "Try again"})
	body := w.Body.String()
	if !strings.Contains(body, "<p>Declined at the consent screen.") {
		t.Errorf("error page lacks its explanation:\n%s", body)
	}
	if w.Code != http.StatusForbidden || strings.Contains(body, "<img") || !strings.Contains(body, "&lt;img") || !strings.Contains(body, `href="/back"`) {
		t.Errorf("error page: %d\n%s", w.Code, body)
	}
}

// TestFramedPages: the pages session.js's frame loads may be framed by
// their own origin, and only then; nothing else changes.
func TestFramedPages(t *testing.T) {
	for name, serve := range map[string]func(w http.ResponseWriter, inFrame bool){
		"relay":   func(w http.ResponseWriter, inFrame bool) { _ = builtin.ServePage(w, inFrame) },
		"landing": func(w http.ResponseWriter, inFrame bool) { _ = builtin.ServeLanding(w, Answer{Location: "/"}, inFrame) },
		"start": func(w http.ResponseWriter, inFrame bool) {
			_ = builtin.ServeStart(w, "https://as.example/a?state=s", "/", true, inFrame)
		},
	} {
		top, framed := httptest.NewRecorder(), httptest.NewRecorder()
		serve(top, false)
		serve(framed, true)
		if top.Header().Get("X-Frame-Options") != "DENY" || !strings.Contains(top.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s page, top level: %v", name, top.Header())
		}
		if framed.Header().Get("X-Frame-Options") != "SAMEORIGIN" || strings.Replace(framed.Header().Get("Content-Security-Policy"), "frame-ancestors 'self'", "frame-ancestors 'none'", 1) != top.Header().Get("Content-Security-Policy") {
			t.Errorf("%s page, framed: %v", name, framed.Header())
		}
	}
}

// TestPagesNameAnInlineIcon: every page names an empty inline icon that
// its CSP admits, so browsers do not ask for /favicon.ico (which the CSP
// would refuse, a console error in Firefox on every page).
func TestPagesNameAnInlineIcon(t *testing.T) {
	for name, serve := range map[string]func(w http.ResponseWriter){
		"relay":   func(w http.ResponseWriter) { _ = builtin.ServePage(w, false) },
		"landing": func(w http.ResponseWriter) { _ = builtin.ServeLanding(w, Answer{Location: "/"}, false) },
		"start": func(w http.ResponseWriter) {
			_ = builtin.ServeStart(w, "https://as.example/a?state=s", "/", true, false)
		},
		"message": func(w http.ResponseWriter) {
			_ = builtin.ServeMessage(w, http.StatusOK, ErrorPage, Message{Title: "t"})
		},
		"form": func(w http.ResponseWriter) {
			_ = builtin.ServeMessage(w, http.StatusOK, ErrorPage, Message{Title: "t", FormAction: "/out", FormButton: "Sign out"})
		},
	} {
		w := httptest.NewRecorder()
		serve(w)
		if !strings.Contains(w.Body.String(), `<link rel="icon" href="data:,">`) || !strings.Contains(w.Header().Get("Content-Security-Policy"), "img-src data:") {
			t.Errorf("%s page: no inline icon the CSP admits", name)
		}
	}
}

// TestStateCookiesAcrossRotation: a login started under the old key
// finishes after the key rotates (the old key is second in Keys), and one
// started under a key no longer listed does not.
func TestStateCookiesAcrossRotation(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	old := stateCookies(&now)
	jar := map[string]string{}
	w := httptest.NewRecorder()
	old.Issue(w, browserRequest(jar), "state-x", "/x", false)
	keep(jar, w)
	rotated := stateCookies(&now)
	rotated.Keys = [][]byte{[]byte("a brand new key, after rotation!"), old.Keys[0]}
	if p, err := rotated.Take(httptest.NewRecorder(), browserRequest(jar), "state-x"); err != nil || p.ReturnTo != "/x" {
		t.Errorf("a login started before the rotation: %+v %v", p, err)
	}
	gone := stateCookies(&now)
	gone.Keys = [][]byte{[]byte("a brand new key, after rotation!")}
	if _, err := gone.Take(httptest.NewRecorder(), browserRequest(jar), "state-x"); err == nil {
		t.Error("a key no longer configured still verifies")
	}
}
