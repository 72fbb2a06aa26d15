package relay

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrorNote carries the authorization server's own words about a failed
// login from the relay POST, where the state proved that the login was
// this browser's, to the error page the relay script opens next. The page
// shows the server's description only with a valid note, so a crafted link
// to the error page cannot put a stranger's text on the site.
type ErrorNote struct {
	Keys     [][]byte // HMAC keys from the configured secrets: the first signs, any verifies
	Name     string   // the cookie's name
	Insecure bool     // no Secure attribute: plain http on a loopback host only
	Now      func() time.Time
}

// noteTTL is how long the note waits for the error page: the relay script
// goes there at once.
const noteTTL = time.Minute

// Set leaves a note for the error page about code.
func (n ErrorNote) Set(w http.ResponseWriter, code, description string) {
	payload := strconv.FormatInt(n.now().Add(noteTTL).Unix(), 10) + "|" + code + "|" + description
	http.SetCookie(w, &http.Cookie{
		Name:     n.Name,
		Value:    base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + mac(n.Keys[0], "error note", payload),
		Path:     "/",
		MaxAge:   int(noteTTL / time.Second),
		Secure:   !n.Insecure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

// Take returns the description a valid, unexpired note holds for code,
// and deletes the note.
func (n ErrorNote) Take(w http.ResponseWriter, r *http.Request, code string) (string, bool) {
	ck, err := r.Cookie(n.Name)
	if err != nil {
		return "", false
	}
	http.SetCookie(w, &http.Cookie{Name: n.Name, Path: "/", MaxAge: -1, Secure: !n.Insecure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	enc, sig, _ := strings.Cut(ck.Value, ".")
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || !signedByOneOf(n.Keys, sig, "error note", string(raw)) {
		return "", false
	}
	exp, rest, _ := strings.Cut(string(raw), "|")
	noteCode, description, _ := strings.Cut(rest, "|")
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !n.now().Before(time.Unix(unix, 0)) || noteCode != code {
		return "", false
	}
	return description, true
}

func (n ErrorNote) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}
