// Logging out at the server too: the session's tokens revoked (RFC
// 7009), and, with end_session, the user's login at the server ended
// (OpenID Connect RP-Initiated Logout 1.0). Back-channel logout, the
// server ending sessions here, is in backchannel.go.

package implicitgrant

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/internal/printable"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// revokeTimeout bounds a logout's revocation calls, together: the logout
// never waits longer for the server.
const revokeTimeout = 3 * time.Second

// maxRevoking is how many revocation calls ending a user's sessions (the
// admin API) makes at once.
const maxRevoking = 4

// logoutStatePrefix marks an end-session state: the browser brings it
// back from the server's end_session_endpoint.
const logoutStatePrefix = "logout-"

// checkLogout: revocation_url, end_session and backchannel_logout_path.
func (h *Handler) checkLogout() error {
	if h.RevocationURL != "" && !authserver.SecureURL(h.RevocationURL) {
		return fmt.Errorf("revocation_url: %q must be an https URL (http only for loopback hosts)", h.RevocationURL)
	}
	if h.EndSession {
		if h.OpenID == "" {
			return errors.New("end_session: needs openid (the end_session_endpoint comes from its discovery, and the ID token is the hint)")
		}
		if lr := h.LogoutRedirect; lr != "" && !authserver.SecureURL(lr) {
			return fmt.Errorf("logout_redirect: with end_session it is the post_logout_redirect_uri: %q must be an absolute https URL registered at the server", lr)
		}
	}
	if h.BackchannelLogoutPath != "" && h.OpenID == "" { // the path itself: checkPaths
		return errors.New("backchannel_logout_path: needs openid (logout tokens are verified with its keys)")
	}
	return nil
}

// provisionLogout prepares the revocation client and the post-logout URL.
func (h *Handler) provisionLogout() {
	var d *authserver.Discovery
	if h.openid != nil {
		d = h.openid.Discovery
	}
	if h.RevocationURL != "" || d != nil {
		auth := h.TokenAuth
		if auth == "" { // the implicit grant: a public client
			auth = authserver.TokenAuthNone
		}
		h.revocation = authserver.NewRevocation(h.RevocationURL, h.ClientID, h.ClientSecret, auth, d, revokeTimeout)
	}
	if h.EndSession {
		h.postLogoutURL = h.LogoutRedirect
		if h.postLogoutURL == "" {
			h.postLogoutURL = h.origin + h.LogoutPath
		}
		if u, err := url.Parse(h.postLogoutURL); err == nil && u.Scheme+"://"+u.Host == h.origin {
			h.postLogoutPath = u.Path
		}
	}
	if h.BackchannelLogoutPath != "" {
		h.logoutTokens = newExpiring[string, struct{}](maxSeenTokens)
	}
}

// checkEndSessionAtLoad refuses end_session when the issuer's discovery,
// reachable now, names no end_session_endpoint. An issuer that cannot be
// reached at load is not held against the config (Caddy starts while the
// server is down); the logout then ends the session here only. The
// fetch is a one-off: a failure now must not be cached for the logins.
func (h *Handler) checkEndSessionAtLoad(ctx context.Context) error {
	if !h.EndSession {
		return nil
	}
	doc, err := authserver.NewDiscovery(h.OpenID, 3*time.Second).Get(ctx)
	switch {
	case err != nil:
		h.logger.Warn("end_session: the issuer's discovery cannot be read now; a logout ends the session here until it can", zap.Error(err))
	case doc.EndSessionEndpoint == "":
		return fmt.Errorf("end_session: the issuer %s names no end_session_endpoint in its discovery document", h.OpenID)
	}
	return nil
}

// keepForLogout keeps with a new session what logging out at the server
// needs: the ID token (end_session's id_token_hint) and the server's login
// session, sid (back-channel logout by sid), when printable and bounded.
func (h *Handler) keepForLogout(s *tokencache.Session, id authserver.Identity, idToken string) {
	if h.EndSession {
		s.IDToken = idToken
	}
	if sid, ok := id.Claims["sid"].(string); ok && h.BackchannelLogoutPath != "" && len(sid) <= maxSubjectBytes && !printable.HasControl(sid) {
		s.Login = sid
	}
}

// revokeAtLogout revokes a logged-out session's tokens at the server: the
// refresh token, then the access token, one attempt each, within
// revokeTimeout. A failure is logged (never the token); the logout stands.
func (h *Handler) revokeAtLogout(ctx context.Context, s tokencache.Session) {
	if h.revocation == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	if s.RefreshToken != "" {
		h.revoke(ctx, s.RefreshToken, "refresh_token")
	}
	h.revoke(ctx, strings.TrimPrefix(s.Authorization, "Bearer "), "access_token")
}

func (h *Handler) revoke(ctx context.Context, token, kind string) bool {
	err := h.revocation.Revoke(ctx, token, kind)
	switch {
	case err == nil:
		return true
	case errors.Is(err, authserver.ErrNoRevocation):
	default:
		h.logRefusal(zap.WarnLevel, "could not revoke a token at the server; the session here has ended anyway", zap.String("token", kind), zap.Error(err))
	}
	return false
}

// revokeRefreshTokens revokes the refresh tokens of ended sessions, at
// most maxRevoking calls at once; how many the server confirmed.
func (h *Handler) revokeRefreshTokens(ctx context.Context, sessions []tokencache.Session) int {
	if h.revocation == nil {
		return 0
	}
	var wg sync.WaitGroup
	var revoked atomic.Int32
	slots := make(chan struct{}, maxRevoking)
	for _, s := range sessions {
		if s.RefreshToken == "" {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			callCtx, cancel := context.WithTimeout(ctx, revokeTimeout)
			defer cancel()
			if h.revoke(callCtx, s.RefreshToken, "refresh_token") {
				revoked.Add(1)
			}
		})
	}
	wg.Wait()
	return int(revoked.Load())
}

// endSession sends a logged-out browser to end its login at the server,
// with a fresh state bound to it; the URL is in the page, not in a
// Location header, so the ID token in it stays out of the access log.
// false when the server names no end_session_endpoint: the logout then
// ends here only.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request, s tokencache.Session) (bool, error) {
	endpoint, err := h.openid.EndSessionEndpoint(r.Context())
	if err != nil || endpoint == "" {
		h.logRefusal(zap.WarnLevel, "end_session: the issuer's end_session_endpoint is unknown now; the logout ended the session here only", zap.Error(err))
		return false, nil
	}
	state := logoutStatePrefix + tokencache.NewID()
	h.states.Issue(w, r, state, "/", false)
	q := url.Values{"client_id": {h.ClientID}, "post_logout_redirect_uri": {h.postLogoutURL}, "state": {state}}
	if s.IDToken != "" {
		q.Set("id_token_hint", s.IDToken)
	}
	sep := "?"
	if strings.Contains(endpoint, "?") {
		sep = "&"
	}
	return true, relay.ServeEndSession(w, endpoint+sep+q.Encode())
}

// returnsFromEndSession says whether r, for path (the public URL's), is
// the browser coming back from the server's end_session_endpoint.
func (h *Handler) returnsFromEndSession(r *http.Request, path string) bool {
	return h.postLogoutPath != "" && path == h.postLogoutPath && r.Method == http.MethodGet &&
		strings.HasPrefix(r.URL.Query().Get("state"), logoutStatePrefix)
}

// finishEndSession checks the state the server sent back (this browser's,
// unused) and says the person is signed out, here and at the server; or,
// when logout_redirect is another page of the site, goes there.
func (h *Handler) finishEndSession(w http.ResponseWriter, r *http.Request) error {
	state := r.URL.Query().Get("state")
	p, err := h.states.Take(w, r, state)
	if err == nil {
		var first bool
		if first, err = h.store.ClaimState(r.Context(), state, p.Expires); err == nil && !first {
			err = errors.New("state already used")
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		h.logRefusal(zap.WarnLevel, "refused a return from the server's end_session_endpoint", zap.String("reason", err.Error()))
		return h.pages.ServeMessage(w, http.StatusBadRequest, relay.SignedOutPage, relay.Message{
			Title:    "This sign-out link is not valid",
			Text:     "It was not started in this browser, or it was used already. You are signed out of this site; to sign out at the authorization server too, sign out again.",
			LinkHref: "/",
			LinkText: "Back to the site",
		})
	}
	if h.postLogoutPath != h.LogoutPath {
		http.Redirect(w, r, h.postLogoutURL, http.StatusSeeOther)
		return nil
	}
	return h.serveSignedOut(w, "You are signed out of this site and at the authorization server.")
}
