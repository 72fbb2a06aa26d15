// Package testbrowser plays a browser's part over HTTP for the in-process
// and process-level suites: a cookie jar, navigation headers, the
// development provider's consent form, and the relay script's POST. It
// follows no redirect by itself, so every step can be checked.
package testbrowser

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// SessionCookie is the default session cookie's name on the plain-http
// loopback sites the suites run (the __Host- prefix goes with Secure there).
const SessionCookie = "implicit_grant"

// Browser is one browser: its own cookies.
type Browser struct {
	T      testing.TB
	Client *http.Client
}

// New returns a browser with an empty cookie jar.
func New(t testing.TB) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{T: t, Client: &http.Client{
		Jar:           loopbackIsSecure{jar},
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// loopbackIsSecure treats plain http on a loopback host as a secure
// context, as Chromium and Firefox do: Secure cookies set there come back
// (Go's jar keeps them for https only).
type loopbackIsSecure struct{ http.CookieJar }

func (j loopbackIsSecure) SetCookies(u *url.URL, cookies []*http.Cookie) {
	j.CookieJar.SetCookies(secureLoopback(u), cookies)
}

func (j loopbackIsSecure) Cookies(u *url.URL) []*http.Cookie {
	return j.CookieJar.Cookies(secureLoopback(u))
}

func secureLoopback(u *url.URL) *url.URL {
	if h := u.Hostname(); u.Scheme == "http" && (h == "localhost" || h == "127.0.0.1") {
		c := *u
		c.Scheme = "https"
		return &c
	}
	return u
}

// Navigate is a top-level page load.
func (b *Browser) Navigate(rawURL string) *http.Response {
	b.T.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.T.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Site", "none")
	return b.Do(req)
}

// Do sends req with the browser's cookies; the body can be read again.
func (b *Browser) Do(req *http.Request) *http.Response {
	b.T.Helper()
	resp, err := b.Client.Do(req)
	if err != nil {
		b.T.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

// BodyOf reads a response's body, leaving it readable again.
func BodyOf(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return string(b)
}

// RelayPost is what the relay script sends: the fragment, same-origin.
func (b *Browser) RelayPost(callback, fragment, origin string) *http.Response {
	b.T.Helper()
	req, _ := http.NewRequest(http.MethodPost, callback, strings.NewReader(fragment))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "cors")
	return b.Do(req)
}

// ReplayPost sends a relay POST from a fresh client that holds copies of
// cookies (a hostile client keeping what a browser would have dropped).
func ReplayPost(t testing.TB, callback, fragment, origin string, cookies []*http.Cookie) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, callback, strings.NewReader(fragment))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	for _, c := range cookies {
		if c.Name != SessionCookie {
			req.AddCookie(c)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

var requestIDField = regexp.MustCompile(`name="request" value="([^"]+)"`)

// AuthorizeAt goes to the development provider's consent page and
// decides, as the user "alice". It returns the callback URL the provider
// sent the browser to, fragment included.
func (b *Browser) AuthorizeAt(authorizeURL string, approve bool) *url.URL {
	b.T.Helper()
	return b.AuthorizeAs(authorizeURL, "alice", approve)
}

// AuthorizeAs is AuthorizeAt signing in as user.
func (b *Browser) AuthorizeAs(authorizeURL, user string, approve bool) *url.URL {
	b.T.Helper()
	resp := b.Decide(authorizeURL, user, approve)
	if resp.StatusCode != http.StatusSeeOther {
		b.T.Fatalf("authorization: %d %s", resp.StatusCode, BodyOf(resp))
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		b.T.Fatal(err)
	}
	return loc
}

// Decide goes to the development provider's authorization endpoint and,
// when it shows its consent page, decides as user. It returns the
// provider's answer: a 303 to the callback, or (form_post) the page with
// the form the browser submits.
func (b *Browser) Decide(authorizeURL, user string, approve bool) *http.Response {
	b.T.Helper()
	consent := b.Navigate(authorizeURL)
	if consent.StatusCode != http.StatusOK || !strings.Contains(BodyOf(consent), `action="/authorize/decision"`) {
		return consent // remembered, or prompt=none: no dialog
	}
	m := requestIDField.FindStringSubmatch(BodyOf(consent))
	if m == nil {
		b.T.Fatalf("no consent form on the provider's page %s: %d %v\n%s", authorizeURL, consent.StatusCode, consent.Header, BodyOf(consent))
	}
	decision := "deny"
	if approve {
		decision = "approve"
	}
	au, _ := url.Parse(authorizeURL)
	form := url.Values{"request": {m[1]}, "decision": {decision}, "user": {user}}
	req, _ := http.NewRequest(http.MethodPost, au.Scheme+"://"+au.Host+"/authorize/decision", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	formField  = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// SubmitFormPost does what the browser does with the development
// provider's form_post page: a top-level POST of the form, cross-site,
// from the provider's origin.
func (b *Browser) SubmitFormPost(page *http.Response) *http.Response {
	b.T.Helper()
	return b.SubmitFormPostWith(page, nil)
}

// SubmitFormPostWith is SubmitFormPost with the request changed first.
func (b *Browser) SubmitFormPostWith(page *http.Response, change func(*http.Request)) *http.Response {
	b.T.Helper()
	body := BodyOf(page)
	action := formAction.FindStringSubmatch(body)
	if page.StatusCode != http.StatusOK || action == nil {
		b.T.Fatalf("not a form_post page: %d %s", page.StatusCode, body)
	}
	fields := url.Values{}
	for _, f := range formField.FindAllStringSubmatch(body, -1) {
		fields.Add(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	req, _ := http.NewRequest(http.MethodPost, html.UnescapeString(action[1]), strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", page.Request.URL.Scheme+"://"+page.Request.URL.Host)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("Accept", "text/html")
	if change != nil {
		change(req)
	}
	return b.Do(req)
}

var landingAnswer = regexp.MustCompile(`id="answer" hidden data-answer="([^"]+)"`)

// LandingLocation reads where the page that answers a form_post sends the
// browser.
func LandingLocation(t testing.TB, resp *http.Response) string {
	t.Helper()
	m := landingAnswer.FindStringSubmatch(BodyOf(resp))
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("not the landing page: %d %s", resp.StatusCode, BodyOf(resp))
	}
	var answer struct {
		Location string `json:"location"`
	}
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &answer); err != nil {
		t.Fatalf("landing answer: %v", err)
	}
	return answer.Location
}

// FinishAtCallback does what the browser and relay script do on the
// callback: load the page (the fragment stays in the browser), then POST
// the fragment. It returns the relay answer's status and location.
func (b *Browser) FinishAtCallback(callback *url.URL) (int, string) {
	b.T.Helper()
	page := callback.Scheme + "://" + callback.Host + callback.Path
	if callback.RawQuery != "" {
		page += "?" + callback.RawQuery
	}
	relayPage := b.Navigate(page)
	if callback.RawQuery != "" { // an error in the query: the server answers with its page
		return relayPage.StatusCode, ""
	}
	if relayPage.StatusCode != http.StatusOK || !strings.Contains(BodyOf(relayPage), "<noscript>") {
		b.T.Fatalf("relay page: %d %s", relayPage.StatusCode, BodyOf(relayPage))
	}
	return RelayAnswer(b.T, b.RelayPost(callback.Scheme+"://"+callback.Host+callback.Path, callback.EscapedFragment(), callback.Scheme+"://"+callback.Host))
}

// RelayAnswer reads a relay answer's status and location.
func RelayAnswer(t testing.TB, resp *http.Response) (int, string) {
	t.Helper()
	var answer struct {
		Location string `json:"location"`
	}
	if err := json.Unmarshal([]byte(BodyOf(resp)), &answer); err != nil {
		t.Fatalf("relay answer is not JSON: %d %q", resp.StatusCode, BodyOf(resp))
	}
	return resp.StatusCode, answer.Location
}

var nextLink = regexp.MustCompile(`id="next" href="([^"]+)"`)

// AuthorizationRequest follows a response that sends the browser to log
// in (a 302 to the site's login path, then its start page) and returns the
// authorization request the start page leads to.
func (b *Browser) AuthorizationRequest(resp *http.Response) string {
	b.T.Helper()
	if resp.StatusCode == http.StatusFound {
		loc, err := resp.Location()
		if err != nil {
			b.T.Fatalf("a %d without a usable Location: %v", resp.StatusCode, err)
		}
		resp = b.Navigate(loc.String())
	}
	m := nextLink.FindStringSubmatch(BodyOf(resp))
	if resp.StatusCode != http.StatusOK || m == nil {
		b.T.Fatalf("no start page leading to the authorization server: %d\n%s", resp.StatusCode, BodyOf(resp))
	}
	return html.UnescapeString(m[1])
}

// Login runs a whole login from a navigation to target, and returns the
// response of the final navigation back to where the relay said to go.
func (b *Browser) Login(origin, target string) (*http.Response, string) {
	b.T.Helper()
	return b.LoginAs(origin, target, "alice")
}

// LoginAs is Login signing in as user.
func (b *Browser) LoginAs(origin, target, user string) (*http.Response, string) {
	b.T.Helper()
	first := b.Navigate(origin + target)
	if first.StatusCode != http.StatusFound {
		b.T.Fatalf("first visit to %s: want 302 to log in, got %d", target, first.StatusCode)
	}
	callback := b.AuthorizeAs(b.AuthorizationRequest(first), user, true)
	status, next := b.FinishAtCallback(callback)
	if status != http.StatusOK {
		b.T.Fatalf("relay post: want 200, got %d", status)
	}
	return b.Navigate(origin + next), next
}

// Cookie returns the value of the browser's cookie called name for origin,
// or "".
func (b *Browser) Cookie(origin, name string) string {
	u, _ := url.Parse(origin)
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// TokenFrom returns the access token in a callback URL's fragment.
func TokenFrom(t testing.TB, callback *url.URL) string {
	t.Helper()
	v, err := url.ParseQuery(callback.Fragment)
	if err != nil || v.Get("access_token") == "" {
		t.Fatalf("no access token in %q", callback.Fragment)
	}
	return v.Get("access_token")
}

// SessionSetCookie returns the session cookie a response sets, if any.
func SessionSetCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			return c
		}
	}
	return nil
}

// AssertNoSession fails unless resp leaves the browser without a session.
func AssertNoSession(t testing.TB, resp *http.Response) {
	t.Helper()
	if c := SessionSetCookie(resp); c != nil && c.Value != "" {
		t.Fatalf("a session cookie was set on a refused response (status %d)", resp.StatusCode)
	}
}

// ServiceToken is what a script does before it calls a site with
// accept_bearer: the client credentials grant at the development
// provider's token endpoint (HTTP Basic), for the service's access token.
func ServiceToken(t testing.TB, provider, service, secret string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, provider+"/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(service, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&tr) != nil || tr.AccessToken == "" {
		t.Fatalf("client credentials for %s: %d", service, resp.StatusCode)
	}
	return tr.AccessToken
}
