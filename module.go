// Package implicitgrant is a Caddy HTTP handler that puts an OAuth 2.0
// implicit-grant login (RFC 6749 §4.2) in front of whatever Caddy proxies
// and sends the upstream "Authorization: Bearer <access token>" on every
// request until the token expires. The browser never holds the token: it
// stays in the session store and Caddy injects it.
package implicitgrant

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("implicit_grant", parseCaddyfile)
	// After basic_auth, before forward_auth and the handlers that respond,
	// so no global "order" line is needed in front of reverse_proxy.
	httpcaddyfile.RegisterDirectiveOrder("implicit_grant", httpcaddyfile.After, "basic_auth")
}

// Defaults for the optional fields.
const (
	DefaultCookieName       = "__Host-implicit_grant"
	DefaultLoginPath        = "/oauth/login"  // with redirect_uri's path /oauth/callback: siblings of it
	DefaultLogoutPath       = "/oauth/logout" // (see defaultSibling)
	DefaultExpiresIn        = time.Hour
	DefaultExpiryLeeway     = 30 * time.Second
	DefaultStateTTL         = 10 * time.Minute
	DefaultMaxPendingLogins = 8
	DefaultMaxTokenBytes    = 8192
	DefaultMaxSession       = 8 * time.Hour
	minSecretBytes          = 32
	secretStorageKey        = "implicit_grant/secret"
	// DefaultRefreshBefore: a session with a refresh token is refreshed
	// on the server this long before its access token ends.
	DefaultRefreshBefore = time.Minute
)

// Handler is the implicit_grant HTTP handler. Requests for its own paths
// (the redirect_uri's path, login_path, logout_path) are answered by it;
// every other request either carries a valid session, and goes on to the
// next handler with the bearer token set, or is sent to log in.
type Handler struct {
	// The authorization server's authorization endpoint: https, or http on
	// a loopback host (for development). Required unless openid is set.
	AuthorizeURL string `json:"authorize_url,omitempty"`

	// The OpenID Connect issuer. Discovery gives the authorization endpoint
	// and the signing keys; logins ask for response_type "id_token token"
	// with a nonce, and the ID token proves the access token is the
	// issuer's, for this client and this login.
	OpenID string `json:"openid,omitempty"`

	// How access tokens are proved genuine when openid is not set. One of
	// openid or validate is required.
	Validation *Validation `json:"validate,omitempty"`

	// Who may enter: every rule must hold. Users who fail one get 403.
	Allow []AllowRule `json:"allow,omitempty"`

	// An email rule admits a user only when the server says the address is
	// verified (email_verified true). With this set, an answer with no
	// email_verified at all is taken as verified: for servers that vouch
	// for every address they give and do not say so. Default false.
	AllowUnverifiedEmail bool `json:"allow_unverified_email,omitempty"`

	// Claims kept with the session for {http.auth.user.<claim>}
	// placeholders ({http.auth.user.id} is the subject). Default: sub
	// email name preferred_username.
	Claims []string `json:"claims,omitempty"`

	// With openid: when the claims are asked of the issuer's userinfo
	// endpoint (OpenID Connect Core §5.4 puts the profile and email claims
	// there, not in the ID token, whenever an access token is issued).
	// "missing" (default): at a login or refresh whose ID token lacks a
	// kept claim or one an allow rule names. "always": every login and
	// refresh, its values winning over the ID token's (for servers whose
	// ID tokens carry stale claims). "never".
	Userinfo string `json:"userinfo,omitempty"`

	// With validate introspect or userinfo: a session whose last check is
	// older than this is checked again before its next request is served,
	// so a token revoked at the server stops working within this time.
	// Default: never (checked at login only).
	Revalidate caddy.Duration `json:"revalidate,omitempty"`

	// The OAuth client id registered with the authorization server. Required.
	ClientID string `json:"client_id,omitempty"`

	// The grant: "token" (default; "id_token token" with openid), the
	// implicit grant, whose token comes back in the redirect's fragment;
	// or "code", the authorization code grant with PKCE (RFC 7636), which
	// RFC 10017 requires of a backend like this one: the module trades the
	// code for tokens at the token endpoint and keeps the refresh token.
	ResponseType string `json:"response_type,omitempty"`

	// code: the token endpoint. Default: the token_endpoint of openid's
	// discovery; required without openid.
	TokenURL string `json:"token_url,omitempty"`

	// code: this client's secret at the token endpoint, making it a
	// confidential client (RFC 10017 asks for one where the server can
	// register it). Use a placeholder such as {env.CLIENT_SECRET}.
	// Without it, a public client: PKCE alone binds the code to the login.
	ClientSecret string `json:"client_secret,omitempty"`

	// code: how the client authenticates at the token endpoint:
	// "client_secret_basic" (default with a client_secret),
	// "client_secret_post", or "none" (default without one).
	TokenAuth string `json:"token_auth,omitempty"`

	// Let scripts and services in with their own bearer token: a request
	// without a session whose Authorization is "Bearer <token>" is
	// checked as a resource server would (a JWT access token, RFC 9068,
	// with openid or validate jwt; introspection with validate
	// introspect). The token must name one of these audiences. A good one
	// goes upstream as it came, with its identity and the allow rules; a
	// bad one gets 401 invalid_token. No session, no cookie. Default: off.
	AcceptBearer []string `json:"accept_bearer,omitempty"`

	// The revocation endpoint (RFC 7009). Default: openid's discovered
	// revocation_endpoint. With one, a logout revokes the session's
	// refresh and access tokens at the server, and ending a user's
	// sessions through the admin API revokes their refresh tokens.
	RevocationURL string `json:"revocation_url,omitempty"`

	// With openid: a logout also ends the user's login at the server
	// (OpenID Connect RP-Initiated Logout 1.0): the browser goes to the
	// issuer's end_session_endpoint with id_token_hint, client_id, a fresh
	// state and, as post_logout_redirect_uri, logout_redirect (an absolute
	// URL registered at the server; default: the logout path's URL, where
	// the state is checked). Sessions then keep their ID token.
	EndSession bool `json:"end_session,omitempty"`

	// With openid: where the server POSTs back-channel logout tokens
	// (OpenID Connect Back-Channel Logout 1.0), ending the sessions of the
	// user (sub) or of one login (sid). Register <origin><path> as the
	// client's backchannel_logout_uri. Default: off.
	BackchannelLogoutPath string `json:"backchannel_logout_path,omitempty"`

	// The session cookie's SameSite: "lax" (default) or "strict". Strict
	// keeps the cookie off every request another site starts, links
	// included: arriving from one starts with no session (a page load
	// then logs in again, silently where the server remembers the user).
	SameSite string `json:"same_site,omitempty"`

	// A header every request with a session must carry unless it is a
	// page load (a top-level GET navigation), or it gets 403: the
	// custom-header defence against cross-site requests (RFC 10017
	// §6.1.3.2), as Duende BFF's "X-CSRF: 1". session.js sends it.
	RequireHeader *RequiredHeader `json:"require_header,omitempty"`

	// The absolute callback URL registered with the authorization server.
	// Required. Its path is served by this handler (the relay page).
	RedirectURI string `json:"redirect_uri,omitempty"`

	// Scopes to request, sent space-separated in the scope parameter.
	Scopes []string `json:"scopes,omitempty"`

	// Send show_dialog=true, asking the server to show its consent screen
	// even to a user who already approved (Spotify's parameter).
	ShowDialog bool `json:"show_dialog,omitempty"`

	// Extra authorization request parameters, such as audience or prompt.
	// response_type, client_id, redirect_uri and state cannot be set here.
	Params map[string]string `json:"params,omitempty"`

	// Key material (at least 32 bytes) that signs login states and seals
	// sessions. Use a placeholder such as {env.IMPLICIT_GRANT_SECRET}. When
	// omitted, a random secret is generated once and kept in Caddy's storage.
	Secret string `json:"secret,omitempty"`

	// Secrets used before secret, newest first: what they signed or sealed
	// (pending logins, sessions in the cookie and Redis stores) still opens
	// until it expires; nothing new uses them. To rotate, reload with the
	// new secret as secret and the old one here.
	PreviousSecrets []string `json:"previous_secrets,omitempty"`

	// Name of the session cookie. Default "__Host-implicit_grant". Pending
	// logins use cookies named <cookie_name>_state_*. On a plain-http
	// loopback site (a developer's machine) the __Host- prefix is dropped
	// with the Secure attribute it requires: Safari and WebKit refuse
	// Secure cookies on http://localhost.
	CookieName string `json:"cookie_name,omitempty"`

	// Path that starts a login explicitly: GET <login_path>?return_to=/page.
	// Default "/oauth/login". The 401 answer to API calls points here.
	LoginPath string `json:"login_path,omitempty"`

	// Path that ends the session (GET or POST). Default "/oauth/logout".
	LogoutPath string `json:"logout_path,omitempty"`

	// Where to send the browser after logout. Default: a "signed out" page.
	LogoutRedirect string `json:"logout_redirect,omitempty"`

	// Token lifetime to assume when the server sends no expires_in.
	// Default 1h.
	DefaultExpiresIn caddy.Duration `json:"default_expires_in,omitempty"`

	// How long before the token's expiry the session ends, so the upstream
	// never receives a token about to expire. Default 30s; never more than
	// half of the token's lifetime.
	ExpiryLeeway caddy.Duration `json:"expiry_leeway,omitempty"`

	// The longest access token (and ID token) a login may bring, in bytes:
	// larger ones are refused with a page that says so. Default 8192, room
	// for real JWTs with many claims.
	MaxTokenBytes int `json:"max_token_bytes,omitempty"`

	// How many sessions one user may have at a time: a login past it ends
	// the user's oldest session, so one account, or one stolen token
	// replayed through many logins, cannot fill the store and push everyone
	// else out. Default 20. Memory and redis stores (the cookie store keeps
	// no sessions to count).
	MaxSessionsPerUser int `json:"max_sessions_per_user,omitempty"`

	// How many logins may succeed from one client address (an IPv6 /64)
	// in 5 minutes; past it, its logins get 429 until the window ends.
	// Default 600: room for an office behind one NAT address.
	MaxLoginsPerAddress int `json:"max_logins_per_address,omitempty"`

	// The longest a session may live, whatever expires_in says. Default 8h:
	// a working day, so a stolen cookie, or a token the server would since
	// have revoked, does not outlive the night.
	MaxSessionLifetime caddy.Duration `json:"max_session_lifetime,omitempty"`

	// How long a login may take from redirect to callback. Default 10m.
	StateTTL caddy.Duration `json:"state_ttl,omitempty"`

	// What a request without a session gets: "auto" (default) redirects
	// browser page loads to log in and answers API calls (fetch/XHR,
	// non-GET, no text/html in Accept, Sec-Fetch-Mode other than navigate)
	// with 401; "redirect" redirects every GET and HEAD; "reject" answers
	// 401 to everything.
	Unauthenticated UnauthenticatedPolicy `json:"unauthenticated,omitempty"`

	// Who shows a person what went wrong (a denial, an expired login, a
	// store outage): "builtin" (default), the module's own pages and JSON
	// for scripts; "handle_errors", the site's handle_errors routes, with
	// {http.implicit_grant.*} placeholders for the details.
	ErrorPages ErrorPages `json:"error_pages,omitempty"`

	// Whether the URL's fragment (#/view) survives the login: the start
	// page keeps it in the tab's sessionStorage and the relay page puts it
	// back. Default true; false drops it.
	PreserveFragment *bool `json:"preserve_fragment,omitempty"`

	// How the authorization server sends its response to redirect_uri:
	// "fragment" (default), in the URL's fragment, which the relay page
	// posts back; "form_post", in a POST it makes itself (OAuth 2.0 Form
	// Post Response Mode), so the token never appears in any URL.
	ResponseMode ResponseMode `json:"response_mode,omitempty"`

	// A page load on a session with less than this left goes through the
	// authorization endpoint again and comes back to the same URL, so a
	// long-lived page gets a fresh token before the old one runs out.
	// Default: off. A session with a refresh token (response_type code)
	// is instead refreshed on the server, by whichever request comes
	// first when this much (default 1m) of its access token is left.
	RenewBefore caddy.Duration `json:"renew_before,omitempty"`

	// What a renewal asks for: "none" (default) sends prompt=none, so no
	// dialog is shown (an answer that the server needs the user starts a
	// normal login at once); "default" sends what a normal login sends.
	RenewPrompt RenewPrompt `json:"renew_prompt,omitempty"`

	// The path that tells a page's script whether it has a session, as
	// JSON (never the token). Default: beside redirect_uri's path,
	// /oauth/session.
	SessionPath string `json:"session_path,omitempty"`

	// The site owner's own pages, html/template files by page: "relay",
	// "start", "error", "signed_out", "forbidden". The module's scripts
	// and security headers stay; see the README for each page's fields.
	Templates map[string]string `json:"templates,omitempty"`

	// Where sessions live: {"type": "memory"} (the default), "cookie" or
	// "redis", with the store's own options beside the type.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=http.handlers.implicit_grant.stores inline_key=type"`

	authorization     authserver.AuthorizationRequest
	tokenEndpoint     *authserver.TokenEndpoint   // with response_type code
	revocation        *authserver.Revocation      // with revocation_url or openid
	postLogoutURL     string                      // with end_session: the post_logout_redirect_uri
	postLogoutPath    string                      // its path, when the browser comes back through this handler
	logoutTokens      *expiring[string, struct{}] // with backchannel_logout_path: the jti seen, until they could no longer be accepted
	bearers           *bearerChecks               // with accept_bearer
	refreshes         *refreshes                  // with response_type code
	issuer            string                      // the server's issuer, where known: what iss must say (RFC 9207)
	pkceKeys          [][]byte                    // with response_type code: what PKCE verifiers derive from
	sameSite          http.SameSite
	authorizePrefix   string // the authorization request up to the state's value; "" until discovery gives the endpoint
	verifier          authserver.Verifier
	openid            *authserver.OpenID // with openid: discovery, for the authorization endpoint
	nonceKeys         [][]byte
	rechecks          *rechecks // with revalidate
	refusals          *refusalLog
	plainHTTP         bool // redirect_uri is http on a loopback host: cookies without Secure
	events            events
	limits            *loginLimits
	storeType         string // the store module's name, for events
	callbackPath      string
	origin            string   // scheme://host of redirect_uri: what Origin must say on the relay POST
	identity          string   // see handlerIdentity
	secrets           [][]byte // the current secret, then the previous ones
	secretGiven       bool     // secret was set (it may be empty once its placeholder is replaced)
	clientSecretGiven bool     // client_secret was set (likewise)
	releaseClock      func()   // with renew_before or the code flow: the hold on coarseclock
	states            relay.StateCookies
	pages             *relay.Pages
	errorNotes        relay.ErrorNote
	backend           storeBackend
	store             tokencache.Store
	storePoolKey      string
	sessionInCookie   bool              // the store's cookie value is the sealed session (see sessionInCookie)
	storage           certmagic.Storage // Caddy's: the generated secret, the cookie store's revocations
	logger            *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.implicit_grant",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
