// The session cookie: its attributes, and long values split over chunks.

package implicitgrant

import (
	"net/http"

	"github.com/implicitgrant/caddy-implicit-grant/cookieheader"
)

// maxCookieValue keeps each Set-Cookie line, attributes included, well
// under the 4096 bytes browsers are required to store per cookie.
const maxCookieValue = 3800

// maxSessionCookieBytes bounds the cookie store's sealed session: it fits
// in three chunk cookies (each holds maxCookieValue less the name, at
// least 3,700 bytes with a cookie_name of at most 64), so the Cookie header
// the browser sends keeps room for the site's own cookies and a few
// pending logins.
const maxSessionCookieBytes = 3 * 3600

// sessionValue reads the session cookie; the cookie store's sealed
// sessions may be split over numbered chunk cookies.
func (h *Handler) sessionValue(r *http.Request) string {
	if !h.sessionInCookie {
		return cookieheader.Value(r.Header, h.CookieName)
	}
	v, _ := cookieheader.Joined(r.Header, h.CookieName)
	return v
}

// setSessionCookie sets (or, with maxAge < 0, deletes) the session cookie,
// splitting a long value into chunks and deleting chunks the request
// carried that the new value no longer needs.
func (h *Handler) setSessionCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	n := 0
	for ; value != "" || n == 0; n++ {
		part := value[:min(len(value), maxCookieValue-len(h.CookieName))]
		value = value[len(part):]
		http.SetCookie(w, h.sessionCookie(cookieheader.ChunkName(h.CookieName, n), part, maxAge))
	}
	if h.sessionInCookie {
		for ; n < cookieheader.MaxChunks; n++ {
			if cookieheader.Value(r.Header, cookieheader.ChunkName(h.CookieName, n)) == "" {
				continue
			}
			http.SetCookie(w, h.sessionCookie(cookieheader.ChunkName(h.CookieName, n), "", -1))
		}
	}
}

func (h *Handler) sessionCookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   !h.plainHTTP,
		HttpOnly: true,
		SameSite: h.sameSite,
	}
}
