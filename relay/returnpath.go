package relay

import (
	"net/url"
	"strings"

	"github.com/implicitgrant/caddy-implicit-grant/internal/printable"
)

// MaxReturnPath is the longest return path kept: longer ones go to "/".
const MaxReturnPath = 8192

// SafeReturnPath returns p if a browser given it as a location would stay
// on this origin, and "/" otherwise. p is a request URI (path and query)
// that came from the client, so anything a browser might read as another
// origin is refused: "//host", "/\host", schemes, control characters
// (browsers strip tabs and newlines before parsing), and the same tricks
// percent-encoded once, and dot segments that resolve to "//".
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
	if len(p) == 0 || p[0] != '/' || len(p) > MaxReturnPath {
		return false
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; printable.IsControl(rune(c)) || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return false
	}
	// Dot segments resolve away in the browser: "/..//host" becomes the
	// path "//host", which the next relative redirect would read as a host.
	// The browser splits the string as it was sent (%2F is no separator),
	// so the rule looks at the raw path: Go's EscapedPath rebuilds it from
	// the decoded one when the raw form holds a non-ASCII byte, and then
	// sees other segments than the browser does.
	raw := p
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	return !dotSegmentsLeadToNetworkPath(raw)
}

// dotSegmentsLeadToNetworkPath removes dot segments as browsers do (WHATWG
// URL; also their %2e spellings) and reports whether the path then starts
// with "//". Go's url.ResolveReference cleans differently, so it cannot say.
func dotSegmentsLeadToNetworkPath(path string) bool {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	out := make([]string, 0, len(segs))
	for i, seg := range segs {
		last := i == len(segs)-1
		switch strings.ToLower(seg) {
		case ".", "%2e":
			if last {
				out = append(out, "")
			}
		case "..", ".%2e", "%2e.", "%2e%2e":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, seg)
		}
	}
	return len(out) > 1 && out[0] == ""
}
