// Package cookieheader reads and edits the Cookie request header on the
// hot path without parsing every cookie into a struct, as
// (*http.Request).Cookie does: finding our cookie costs no allocation, and
// removing it costs one.
package cookieheader

import (
	"net/http"
	"strconv"
	"strings"
)

// Value returns the value of the first cookie called name, or "".
func Value(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if k == name {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}

// Strip removes every cookie whose name is name or starts with name+"_"
// (the session cookie and its companions) and keeps the others as they
// were. The header is deleted when nothing is left.
func Strip(h http.Header, name string) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	total := 0
	for _, line := range lines {
		total += len(line) + 2
	}
	var kept strings.Builder
	for _, line := range lines {
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			pair = strings.TrimSpace(pair)
			k, _, _ := strings.Cut(pair, "=")
			if pair == "" || isOurs(k, name) {
				continue
			}
			if kept.Len() == 0 {
				kept.Grow(total) // enough for everything: one allocation
			} else {
				kept.WriteString("; ")
			}
			kept.WriteString(pair)
		}
	}
	if kept.Len() == 0 {
		delete(h, "Cookie")
		return
	}
	// The slice belongs to this request's header: reuse it.
	lines[0] = kept.String()
	h["Cookie"] = lines[:1]
}

func isOurs(cookie, name string) bool {
	return strings.HasPrefix(cookie, name) && (len(cookie) == len(name) || cookie[len(name)] == '_')
}

// ChunkName is the name of the i-th cookie of a value split over several:
// name itself, then name_1, name_2, ….
func ChunkName(name string, i int) string {
	if i == 0 {
		return name
	}
	return name + "_" + strconv.Itoa(i)
}

// MaxChunks bounds how many chunk cookies a value may be split over.
const MaxChunks = 4

// Joined returns a value that may be split over chunk cookies (name,
// name_1, … name_3), and how many chunks the request carried. It reads the
// header once, whatever the number of cookies in it, and ignores chunks
// past MaxChunks.
func Joined(h http.Header, name string) (value string, chunks int) {
	var parts [MaxChunks]string
	for _, line := range h["Cookie"] {
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if i := chunkIndex(k, name); i >= 0 && parts[i] == "" {
				parts[i] = strings.Trim(v, `"`)
			}
		}
	}
	for chunks < MaxChunks && parts[chunks] != "" {
		chunks++
	}
	if chunks <= 1 {
		return parts[0], chunks
	}
	return strings.Join(parts[:chunks], ""), chunks
}

// chunkIndex is i when cookie is the i-th chunk of name, else -1.
func chunkIndex(cookie, name string) int {
	switch {
	case cookie == name:
		return 0
	case len(cookie) == len(name)+2 && strings.HasPrefix(cookie, name) && cookie[len(name)] == '_' &&
		cookie[len(name)+1] >= '1' && cookie[len(name)+1] < '0'+MaxChunks:
		return int(cookie[len(name)+1] - '0')
	}
	return -1
}
