package relay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Why a relay POST's state was refused. The messages are safe to log and
// show: they never contain the state.
var (
	ErrStateMissing = errors.New("no pending login in this browser matches the state (expired, already used, or started in another browser)")
	ErrStateInvalid = errors.New("state cookie signature is invalid")
	ErrStateExpired = errors.New("login took too long: the state has expired")
)

// StateCookies issues and checks the cookies that bind a pending login to
// the browser that started it. Each pending login has its own cookie, so
// logins in several tabs do not overwrite each other; at most MaxPending
// are kept, the oldest going first.
type StateCookies struct {
	// HMAC keys, derived from the configured secrets: the first signs, any
	// of them verifies (a rotated-out secret's logins still finish).
	Keys       [][]byte
	NamePrefix string        // e.g. "__Host-implicit_grant_state_"
	TTL        time.Duration // how long a login may take
	MaxPending int
	// Insecure drops the Secure attribute: only for a site on plain http
	// on a loopback host (a developer's machine).
	Insecure bool
	// CrossSite makes the cookies SameSite=None (and so Secure, always):
	// with response_mode form_post the server's answer is a cross-site
	// POST, on which a Lax cookie is not sent.
	CrossSite bool
	Now       func() time.Time
}

// PendingLogin is what a state cookie remembers.
type PendingLogin struct {
	State    string
	ReturnTo string // "" when it was too long for the cookie: the page resumes it
	Expires  time.Time
	// Silent: the login asked for prompt=none (a renewal); an answer that
	// the server needs the user starts an interactive login.
	Silent bool
	// Key is which of Keys made the cookie (0: the current secret's): the
	// secret the login's other values (its PKCE verifier) derive from.
	Key int
}

// silentMark follows the expiry in a silent login's cookie.
const silentMark = "~silent"

// MaxCookieReturnPath is the longest return path a state cookie carries.
// A longer one stays with the start page, in the tab's sessionStorage (the
// relay page resumes it): however long the URL, every pending login's
// cookie stays small, so neither one cookie nor the whole Cookie header
// outgrows what browsers and Caddy accept.
const MaxCookieReturnPath = 512

// Issue binds a new login's state (made by the caller, from crypto/rand)
// to this browser: it sets the state's cookie on w and removes the oldest
// pending logins beyond MaxPending.
func (c *StateCookies) Issue(w http.ResponseWriter, r *http.Request, state, returnTo string, silent bool) {
	expires := c.now().Add(c.TTL)
	name := c.cookieName(c.Keys[0], state)
	if len(returnTo) > MaxCookieReturnPath {
		returnTo = "" // the start page keeps it
	}
	payload := strconv.FormatInt(expires.Unix(), 10)
	if silent {
		payload += silentMark
	}
	payload += "|" + state + "|" + returnTo

	c.trim(w, r, c.MaxPending-1)
	ck := c.cookie(name, base64.RawURLEncoding.EncodeToString([]byte(payload))+"."+mac(c.Keys[0], name, payload))
	ck.MaxAge = int(c.TTL / time.Second)
	http.SetCookie(w, ck)
}

// cookie is a state cookie with its attributes.
func (c *StateCookies) cookie(name, value string) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", Secure: !c.Insecure, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if c.CrossSite {
		ck.Secure, ck.SameSite = true, http.SameSiteNoneMode
	}
	return ck
}

// Take checks state against the cookie of its pending login and, valid or
// not, deletes that cookie: a state can be presented once per browser.
// (Replays with a copied cookie are stopped by the caller's store claim.)
func (c *StateCookies) Take(w http.ResponseWriter, r *http.Request, state string) (PendingLogin, error) {
	if state == "" {
		return PendingLogin{}, ErrStateMissing
	}
	var name string
	var ck *http.Cookie
	key := 0
	for ; key < len(c.Keys); key++ { // the cookie's name depends on the key that made it
		name = c.cookieName(c.Keys[key], state)
		if ck, _ = r.Cookie(name); ck != nil {
			break
		}
	}
	if ck == nil {
		return PendingLogin{}, ErrStateMissing
	}
	c.expire(w, name)
	p, err := c.open(name, ck.Value)
	if err != nil {
		return PendingLogin{}, err
	}
	if !hmac.Equal([]byte(p.State), []byte(state)) {
		return PendingLogin{}, ErrStateInvalid
	}
	if !c.now().Before(p.Expires) {
		return PendingLogin{}, ErrStateExpired
	}
	p.Key = key
	return p, nil
}

// open verifies a cookie value and decodes it.
func (c *StateCookies) open(name, value string) (PendingLogin, error) {
	enc, sig, ok := strings.Cut(value, ".")
	if !ok {
		return PendingLogin{}, ErrStateInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || !signedByOneOf(c.Keys, sig, name, string(raw)) {
		return PendingLogin{}, ErrStateInvalid
	}
	exp, rest, _ := strings.Cut(string(raw), "|")
	state, returnTo, ok := strings.Cut(rest, "|")
	exp, silent := strings.CutSuffix(exp, silentMark)
	unix, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil {
		return PendingLogin{}, ErrStateInvalid
	}
	return PendingLogin{State: state, ReturnTo: returnTo, Expires: time.Unix(unix, 0), Silent: silent}, nil
}

// trim expires pending-login cookies so that at most keep remain: broken
// and expired ones first, then the oldest.
func (c *StateCookies) trim(w http.ResponseWriter, r *http.Request, keep int) {
	type pending struct {
		name    string
		expires time.Time
	}
	var live []pending
	cleared := 0
	for _, ck := range r.Cookies() {
		if !strings.HasPrefix(ck.Name, c.NamePrefix) {
			continue
		}
		p, err := c.open(ck.Name, ck.Value)
		if err != nil || !c.now().Before(p.Expires) {
			// At most MaxPending a time: a request with hundreds of
			// made-up cookies gets a reply no larger for them.
			if cleared < c.MaxPending {
				c.expire(w, ck.Name)
				cleared++
			}
			continue
		}
		live = append(live, pending{ck.Name, p.Expires})
	}
	if len(live) <= keep {
		return
	}
	sort.Slice(live, func(i, j int) bool { return live[i].expires.Before(live[j].expires) })
	for _, p := range live[:len(live)-keep] {
		c.expire(w, p.name)
	}
}

func (c *StateCookies) expire(w http.ResponseWriter, name string) {
	ck := c.cookie(name, "")
	ck.MaxAge = -1
	http.SetCookie(w, ck)
}

// cookieName gives each pending login its own cookie. The suffix is a MAC
// of the state, so the name reveals nothing about the state itself.
func (c *StateCookies) cookieName(key []byte, state string) string {
	return c.NamePrefix + mac(key, "name", state)[:12]
}

// mac signs payload for the cookie called name, so a valid value cannot be
// moved to another pending login's cookie.
func mac(key []byte, name, payload string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signedByOneOf reports whether sig is payload's MAC under one of keys.
func signedByOneOf(keys [][]byte, sig, name, payload string) bool {
	for _, key := range keys {
		if hmac.Equal([]byte(sig), []byte(mac(key, name, payload))) {
			return true
		}
	}
	return false
}

func (c *StateCookies) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
