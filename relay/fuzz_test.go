package relay

import (
	"strings"
	"testing"

	whatwg "github.com/nlnwa/whatwg-url/url"
)

// FuzzSafeReturnPath: whatever comes in, what comes out is the input or
// "/", and never something a browser could read as another origin.
func FuzzSafeReturnPath(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//evil", "/\\evil", "/%2F%2Fevil", "/..//evil", "/%2e%2e//x", "https:evil", "/\t/evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := SafeReturnPath(in)
		if out != "/" && out != in {
			t.Fatalf("SafeReturnPath(%q) = %q: neither the input nor /", in, out)
		}
		if out == "/" {
			return
		}
		if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") || strings.ContainsAny(out, "\\\t\r\n\x00") {
			t.Fatalf("SafeReturnPath(%q) = %q is not a plain same-origin path", in, out)
		}
		path, _, _ := strings.Cut(out, "?")
		path, _, _ = strings.Cut(path, "#")
		if dotSegmentsLeadToNetworkPath(path) {
			t.Fatalf("SafeReturnPath(%q) = %q resolves to a network path", in, out)
		}
	})
}

// FuzzSafeReturnPathWHATWG checks the rule against a WHATWG URL parser, the
// standard browsers follow: an accepted path, resolved against a page of
// this origin, stays on this origin with a path that does not begin with
// "//" (which a later relative redirect would read as a host).
func FuzzSafeReturnPathWHATWG(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "/..//evil", "/a%2F..\xff/..//evil", "/%2e%2e//x", "/a/.%2e//x", "/\xc3\xa9/../x", "/a/%2e/..//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if SafeReturnPath(in) != in {
			return // refused: nothing to check
		}
		u, err := whatwg.ParseRef("https://app.example/some/page", in)
		if err != nil {
			t.Fatalf("SafeReturnPath accepted %q, which a browser cannot resolve: %v", in, err)
		}
		if u.Scheme() != "https" || u.Host() != "app.example" || strings.HasPrefix(u.Pathname(), "//") {
			t.Fatalf("SafeReturnPath accepted %q; a browser resolves it to %s", in, u.Href(false))
		}
	})
}

// FuzzParseFragment: no input panics, and an accepted token can never
// carry a character that would break or smuggle an HTTP header.
func FuzzParseFragment(f *testing.F) {
	for _, s := range []string{
		"access_token=a&token_type=Bearer&state=s&expires_in=60",
		"error=access_denied&state=s",
		"access_token=a%0D%0Ab&token_type=bearer&state=s",
		"access_token=a&access_token=b&token_type=Bearer&state=s",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tr, ae, err := ParseFragment(in)
		if tr != nil {
			if err != nil || ae != nil {
				t.Fatal("a token response together with an error")
			}
			if tr.AccessToken == "" || strings.ContainsAny(tr.AccessToken, "\r\n\x00") || !strings.EqualFold(tr.TokenType, "bearer") || tr.State == "" || tr.ExpiresIn < 0 {
				t.Fatalf("accepted %+v from %q", tr, in)
			}
		}
		if ae != nil && strings.ContainsAny(ae.Code+ae.Description, "\r\n\x00") {
			t.Fatalf("error fields keep control characters: %+v", ae)
		}
	})
}
