package devprovider

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The provider's login session in a browser is a cookie: its value is the
// sid its ID tokens carry (OpenID Connect Back-Channel Logout §2.1). Ending
// it (GET or POST /logout: the end_session_endpoint, and the home page's
// "Sign out everywhere") forgets the browser's approvals and POSTs a
// logout token naming the sid and the user to every client registered
// with a back-channel logout URI.
const sessionCookie = "dev_provider_session"

// loginSession is this browser's sid, made on its first sign-in.
func loginSession(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(sessionCookie); err == nil && len(c.Value) == 22 {
		return c.Value
	}
	sid := randomString()[:22]
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return sid
}

// BackchannelLogoutEvent is the events member of a logout token.
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutToken signs a back-channel logout token as the provider at
// issuer does, with claims over the usual ones (nil deletes one): for
// tests of what a client refuses.
func LogoutToken(issuer, clientID string, claims map[string]any) (string, error) {
	c := map[string]any{"iss": issuer, "aud": clientID, "iat": time.Now().Unix(), "jti": randomString(),
		"events": map[string]any{BackchannelLogoutEvent: map[string]any{}}}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return Sign(issuer, c, "logout+jwt")
}

// Sign signs claims as the provider at issuer signs its tokens, with the
// header's typ: for tests that need a token the provider never issued.
func Sign(issuer string, claims map[string]any, typ string) (string, error) {
	return sign(issuer, claims, typ)
}

var backchannelClient = &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// logout ends this browser's login session here, tells the clients, and
// sends the browser to post_logout_redirect_uri (with state) when it is
// on a registered client's origin, as OpenID Connect RP-Initiated Logout
// 1.0 §3 asks.
func (p *Provider) logout(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return page(w, http.StatusBadRequest, "Bad request", "The sign-out request could not be read.", nil)
	}
	back, state := r.Form.Get("post_logout_redirect_uri"), r.Form.Get("state")
	if back != "" && !p.registeredOrigin(r.Form.Get("client_id"), back) {
		return page(w, http.StatusBadRequest, "Unknown post_logout_redirect_uri", "It is not on the origin of the client named by client_id.", nil)
	}
	var user string
	for id := range p.Clients {
		if u, ok := remembered(r, id); ok {
			user = u
		}
	}
	sid := ""
	if c, err := r.Cookie(sessionCookie); err == nil {
		sid = c.Value
	}
	for _, c := range []*http.Cookie{
		{Name: rememberCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode},
		{Name: rememberCrossSiteCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode},
		{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode},
	} {
		http.SetCookie(w, c)
	}
	if sid != "" {
		p.sendLogouts(issuer(r), user, sid)
	}
	if back != "" {
		if state != "" {
			sep := "?"
			if strings.Contains(back, "?") {
				sep = "&"
			}
			back += sep + url.Values{"state": {state}}.Encode()
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
		return nil
	}
	return page(w, http.StatusOK, "Signed out everywhere", "This browser is signed out of the dev provider, and every application registered for back-channel logout was told.", nil)
}

// registeredOrigin says whether uri is on clientID's redirect_uri origin.
func (p *Provider) registeredOrigin(clientID, uri string) bool {
	registered, ok := p.Clients[clientID]
	ru, err1 := url.Parse(registered)
	u, err2 := url.Parse(uri)
	return ok && err1 == nil && err2 == nil && u.Scheme == ru.Scheme && u.Host == ru.Host
}

// sendLogouts POSTs a logout token for sid (and user) to every client
// registered with a back-channel logout URI, one at a time.
func (p *Provider) sendLogouts(iss, user, sid string) {
	for clientID, uri := range p.BackchannelLogout {
		claims := map[string]any{"sid": sid}
		if user != "" {
			claims["sub"] = user
		}
		token, err := LogoutToken(iss, clientID, claims)
		if err != nil {
			continue
		}
		if resp, err := backchannelClient.PostForm(uri, url.Values{"logout_token": {token}}); err == nil {
			resp.Body.Close()
		}
	}
}
