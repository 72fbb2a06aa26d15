package relay

import (
	"net/url"
	"strings"
)

// SafeReturnPath returns p if a browser given it as a location would stay
// on this origin, and "/" otherwise. p is a request URI (path and query)
// that came from the client, so anything a browser might read as another
// origin is refused: "//host", "/\host", schemes, control characters
// (browsers strip tabs and newlines before parsing), and the same tricks
// percent-encoded once.
func SafeReturnPath(p string) string {
	if !sameOriginPath(p) {
		return "/"
	}
	if dec, err := url.PathUnescape(p); err != nil || !sameOriginPath(dec) {
		return "/"
	}
	return p
}

func sameOriginPath(p string) bool {
	if len(p) == 0 || p[0] != '/' || len(p) > 4096 {
		return false
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && !strings.HasPrefix(u.Path, "//")
}
