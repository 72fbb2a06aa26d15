// What the checked config derives: the authorization request, the
// handler's identity and paths, and the keys each use of the secret gets.

package implicitgrant

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
)

// derive computes what requests use from the checked config.
func (h *Handler) derive() {
	ru, _ := url.Parse(h.RedirectURI)
	h.callbackPath = callbackPathOf(h.RedirectURI)
	h.origin = originOf(ru)
	h.authorization = authserver.AuthorizationRequest{
		ResponseType: "token", ClientID: h.ClientID, RedirectURI: h.RedirectURI, Scopes: h.Scopes,
		ShowDialog: h.ShowDialog, Params: h.Params,
	}
	switch {
	case h.codeFlow():
		h.authorization.ResponseType = ResponseTypeCode
	case h.OpenID != "":
		h.authorization.ResponseType = "id_token token"
	}
	if h.OpenID != "" && !slices.Contains(h.Scopes, "openid") {
		h.authorization.Scopes = append([]string{"openid"}, h.Scopes...)
	}
	if h.ResponseMode == ResponseModeFormPost {
		h.authorization.ResponseMode = string(h.ResponseMode)
	}
	if h.AuthorizeURL != "" {
		h.authorizePrefix = h.authorization.Prefix(h.AuthorizeURL)
	}
	h.verifier = h.newVerifier()
	h.identity = h.handlerIdentity()
	h.nonceKeys = h.keys("nonce " + h.identity)
	h.sameSite = http.SameSiteLaxMode
	if h.SameSite == "strict" {
		h.sameSite = http.SameSiteStrictMode
	}
	switch {
	case h.OpenID != "":
		h.issuer = h.OpenID
	case h.Validation != nil && h.Validation.Mode == validateJWT:
		h.issuer = h.Validation.Issuer
	}
	if h.codeFlow() {
		h.pkceKeys = h.keys("pkce " + h.identity)
		var d *authserver.Discovery
		if h.openid != nil {
			d = h.openid.Discovery
		}
		h.tokenEndpoint = authserver.NewTokenEndpoint(h.TokenURL, h.ClientID, h.ClientSecret, h.TokenAuth, h.RedirectURI, d, authserver.DefaultTimeout)
		h.refreshes = &refreshes{done: newExpiring[[32]byte, refreshed](maxRemembered), calls: make(chan struct{}, maxRefreshing)}
	}
	h.provisionLogout()
	if len(h.AcceptBearer) > 0 {
		h.bearers = &bearerChecks{cache: newExpiring[[32]byte, string](maxBearers)}
	}
	if h.Revalidate > 0 {
		h.rechecks = &rechecks{every: time.Duration(h.Revalidate), verifier: h.verifier, checked: map[string]time.Time{}, inflight: map[string]*recheck{}}
	}
	h.states = relay.StateCookies{
		Keys:       h.keys("state cookie " + h.identity),
		NamePrefix: h.CookieName + "_state_" + h.identity[:6] + "_",
		TTL:        time.Duration(h.StateTTL),
		MaxPending: DefaultMaxPendingLogins,
		Insecure:   h.plainHTTP,
		CrossSite:  h.ResponseMode == ResponseModeFormPost,
	}
	h.errorNotes = relay.ErrorNote{Keys: h.keys("error note " + h.identity), Name: h.CookieName + "_error", Insecure: h.plainHTTP}
}

// handlerIdentity names what this handler's sessions, login states and
// nonces are valid for: its callback, client and server, how it proves
// tokens, whom it admits and what it keeps of them. Handlers with another
// identity (another path's allow rules, another host) refuse them, so a
// session made where the rules are looser never opens a stricter handler;
// handlers configured alike share their logins.
func (h *Handler) handlerIdentity() string {
	parts := []string{h.RedirectURI, h.ClientID, h.AuthorizeURL, h.OpenID, h.trustMode()}
	if h.codeFlow() { // (the implicit grant's identity stays what it was: its sessions live on)
		parts = append(parts, "code", h.TokenURL)
	}
	if v := h.Validation; v != nil {
		parts = append(parts, v.Issuer, v.JWKSURL, strings.Join(v.Audience, " "), v.URL, v.ClientID, v.Typ)
	}
	for _, rule := range h.Allow {
		parts = append(parts, "allow "+rule.String())
	}
	parts = append(parts, "claims "+strings.Join(h.Claims, " "), fmt.Sprint("unverified email ", h.AllowUnverifiedEmail))
	if h.Userinfo != "" && h.Userinfo != UserinfoMissing { // (the default's sessions from before it existed live on)
		parts = append(parts, "userinfo "+h.Userinfo)
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

// defaultSibling is the default login or logout path: beside the callback,
// so /oauth/callback gives /oauth/login, and a site served under a prefix
// (handle_path /app/*, redirect_uri …/app/oauth/callback) gets
// /app/oauth/login with no further setting.
func defaultSibling(redirectURI, name string) string {
	dir := path.Dir(callbackPathOf(redirectURI))
	if dir == "/" || dir == "." {
		return "/oauth/" + name
	}
	return dir + "/" + name
}

// callbackPathOf is the path the relay is served at: redirect_uri's.
func callbackPathOf(redirectURI string) string {
	if ru, err := url.Parse(redirectURI); err == nil && ru.Path != "" {
		return ru.Path
	}
	return "/"
}

// keys derives the key for purpose from each secret: the current one first.
func (h *Handler) keys(purpose string) [][]byte {
	keys := make([][]byte, len(h.secrets))
	for i, s := range h.secrets {
		keys[i] = deriveKey(s, purpose)
	}
	return keys
}

// deriveKey gives each use of the secret its own key, so a key leaked from
// one use (say, state cookies) says nothing about another.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("implicit_grant v1 " + purpose))
	return m.Sum(nil)
}
