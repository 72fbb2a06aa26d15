// Identity: who the user is, kept with the session (the subject and the
// configured claims, packed into one string that the cookie and Redis
// stores seal with the token), and Caddy's {http.auth.user.*}
// placeholders made from it on every authenticated request.

package implicitgrant

import (
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/printable"

	"github.com/caddyserver/caddy/v2"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
)

// Bounds on what a session keeps of the user: placeholders end up in
// headers and logs, and every session pays for these bytes.
const (
	maxSubjectBytes    = 256
	maxClaimValueBytes = 512
)

// packIdentity packs when the token was last checked at the server (unix
// seconds; empty when checked is zero, as it is without revalidate: ten
// bytes less per session), the subject and the kept claims as
// checked NUL subject NUL name NUL value NUL name NUL value …. Control characters are
// dropped (a value may become a header upstream); a value longer than
// maxClaimValueBytes, or of a kind other than string, number, boolean or
// list of those, is not kept.
func packIdentity(id authserver.Identity, keep []string, checked time.Time) string {
	var b strings.Builder
	if !checked.IsZero() {
		b.WriteString(strconv.FormatInt(checked.Unix(), 10))
	}
	b.WriteByte(0)
	b.WriteString(printable.Strip(id.Subject))
	for _, name := range keep {
		v, ok := claimString(id.Claims[name])
		if !ok || len(v) > maxClaimValueBytes {
			continue
		}
		b.WriteByte(0)
		b.WriteString(name)
		b.WriteByte(0)
		b.WriteString(v)
	}
	return b.String()
}

// claimString renders a claim for a placeholder; lists are joined with ",".
func claimString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return printable.Strip(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := claimString(e)
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), true
	}
	return "", false
}

// keptClaims are a packed identity's kept claims (as strings).
func keptClaims(packed string) map[string]any {
	claims := map[string]any{}
	_, rest, _ := strings.Cut(packed, "\x00")
	_, rest, _ = strings.Cut(rest, "\x00")
	for k, v := range claimPairs(rest) {
		claims[k] = v
	}
	return claims
}

// claimPairs walks packed claims: name NUL value NUL name NUL value ….
func claimPairs(packed string) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for packed != "" {
			var k, v string
			k, packed, _ = strings.Cut(packed, "\x00")
			v, packed, _ = strings.Cut(packed, "\x00")
			if !yield(k, v) {
				return
			}
		}
	}
}

// repackIdentity packs id as packed was packed: the same check time.
func repackIdentity(packed string, id authserver.Identity, keep []string) string {
	checked, _, _ := strings.Cut(packed, "\x00")
	return checked + packIdentity(id, keep, time.Time{})
}

// subjectOf is a packed identity's subject.
func subjectOf(packed string) string {
	_, rest, _ := strings.Cut(packed, "\x00")
	sub, _, _ := strings.Cut(rest, "\x00")
	return sub
}

// checkedAt is when a packed identity's token was last checked.
func checkedAt(packed string) time.Time {
	unix, _, _ := strings.Cut(packed, "\x00")
	n, _ := strconv.ParseInt(unix, 10, 64)
	return time.Unix(n, 0)
}

// placeholdersFor makes the {http.auth.user.*} placeholders of a packed
// identity: id is the subject, every other name a kept claim. A kept claim
// the user has none of is the empty string, never the placeholder's own
// text upstream. Nothing is computed until a placeholder is used.
func placeholdersFor(packed string, keep *[]string) caddy.ReplacerFunc { // a pointer: the closure stays in a smaller size class
	return func(key string) (any, bool) {
		name, ok := strings.CutPrefix(key, "http.auth.user.")
		if !ok {
			return nil, false
		}
		_, rest, _ := strings.Cut(packed, "\x00")
		sub, rest, _ := strings.Cut(rest, "\x00")
		if name == "id" {
			return sub, true
		}
		for k, v := range claimPairs(rest) {
			if k == name {
				return v, true
			}
		}
		if slices.Contains(*keep, name) {
			return "", true
		}
		return nil, false
	}
}

// displayName is how a person is told whom they signed in as: the email
// when the server gave one, else the subject.
func displayName(id authserver.Identity) string {
	if email, ok := id.Claims["email"].(string); ok && email != "" {
		return printable.Strip(email)
	}
	return printable.Strip(id.Subject)
}

// ownerOf is whose a packed identity is and when it was issued: the
// cookie store's revocations compare them (its sessions record their login
// time as the check time).
func ownerOf(packed string) (subject string, issued time.Time) {
	if t := checkedAt(packed); t.Unix() != 0 {
		issued = t
	}
	return subjectOf(packed), issued
}
