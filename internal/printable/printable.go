// Package printable is the one home of the rules on control characters.
// Values that end up in a header, a log line or a page (claims, error
// descriptions, reasons, config names) are checked or cleaned here, so the
// rule cannot drift between its users.
package printable

import "strings"

// IsControl reports whether r is a C0 control character or DEL: what must
// never reach a header, a log line or a page unescaped.
func IsControl(r rune) bool { return r < 0x20 || r == 0x7f }

// HasControl reports whether s contains a control character.
func HasControl(s string) bool { return strings.IndexFunc(s, IsControl) >= 0 }

// Strip drops s's control characters (other non-ASCII text stays).
func Strip(s string) string {
	if !HasControl(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// isVSChar: visible ASCII and space, RFC 6749's VSCHAR (%x20-7E).
func isVSChar(c byte) bool { return c >= 0x20 && c < 0x7f }

// IsVSChars reports whether s holds only RFC 6749 VSCHARs.
func IsVSChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isVSChar(s[i]) {
			return false
		}
	}
	return true
}

// VSChars keeps only s's VSCHARs, at most n bytes of them: a server's
// error code or description, made safe to show.
func VSChars(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; i++ {
		if isVSChar(s[i]) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// IsToken reports whether s is non-empty visible ASCII without spaces: a
// name in the config (a path, a scope, a cookie or claim name).
func IsToken(s string) bool {
	return s != "" && IsVSChars(s) && !strings.Contains(s, " ")
}
