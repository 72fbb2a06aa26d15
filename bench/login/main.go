// Command login logs in at a site protected by implicit_grant through the
// development provider, as a browser would, and prints the session cookie's
// value: the load script uses it to send authenticated requests.
package main

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: login <site origin>")
		os.Exit(2)
	}
	origin := os.Args[1]
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		check(err)
		return resp
	}
	// The site sends the browser to its login path, whose start page leads
	// to the authorization server.
	start, _ := io.ReadAll(get(origin + get(origin+"/").Header.Get("Location")).Body)
	next := regexp.MustCompile(`id="next" href="([^"]+)"`).FindSubmatch(start)
	if next == nil {
		check(fmt.Errorf("no start page at %s", origin))
	}
	authorize := html.UnescapeString(string(next[1]))
	body, _ := io.ReadAll(get(authorize).Body)
	m := regexp.MustCompile(`name="request" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		check(fmt.Errorf("no consent form at %s", authorize))
	}
	au, _ := url.Parse(authorize)
	resp, err := c.PostForm(au.Scheme+"://"+au.Host+"/authorize/decision", url.Values{"request": {string(m[1])}, "decision": {"approve"}})
	check(err)
	cb, _ := url.Parse(resp.Header.Get("Location"))
	req, _ := http.NewRequest(http.MethodPost, origin+"/oauth/callback", strings.NewReader(cb.EscapedFragment()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	resp, err = c.Do(req)
	check(err)
	var answer struct{ Location string }
	check(json.NewDecoder(resp.Body).Decode(&answer))
	for _, ck := range resp.Cookies() {
		if ck.Name == "implicit_grant" { // a plain-http loopback site's name
			fmt.Println(ck.Value)
			return
		}
	}
	check(fmt.Errorf("no session cookie (status %d)", resp.StatusCode))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "login:", err)
		os.Exit(1)
	}
}
