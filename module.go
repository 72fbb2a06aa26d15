// Package implicitgrant is a Caddy HTTP handler that puts an OAuth 2.0
// implicit-grant login (RFC 6749 §4.2) in front of whatever Caddy proxies
// and sends the upstream "Authorization: Bearer <access token>" on every
// request until the token expires. The browser never holds the token: it
// stays in the session store and Caddy injects it.
package implicitgrant

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/cookieheader"
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
	DefaultLoginPath        = "/oauth/login"
	DefaultLogoutPath       = "/oauth/logout"
	DefaultExpiresIn        = time.Hour
	DefaultExpiryLeeway     = 30 * time.Second
	DefaultStateTTL         = 10 * time.Minute
	DefaultMaxPendingLogins = 8
	DefaultMaxSessions      = 1_000_000
	minSecretBytes          = 32
	secretStorageKey        = "implicit_grant/secret"
)

// Handler is the implicit_grant HTTP handler. Requests for its own paths
// (the redirect_uri's path, login_path, logout_path) are answered by it;
// every other request either carries a valid session, and goes on to the
// next handler with the bearer token set, or is sent to log in.
type Handler struct {
	// The authorization server's authorization endpoint. Required. Must be
	// https, or http on a loopback host (for development).
	AuthorizeURL string `json:"authorize_url,omitempty"`

	// The OAuth client id registered with the authorization server. Required.
	ClientID string `json:"client_id,omitempty"`

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

	// Key material (at least 32 bytes) that signs login states. Use a
	// placeholder such as {env.IMPLICIT_GRANT_SECRET}. When omitted, a random
	// secret is generated once and kept in Caddy's storage.
	Secret string `json:"secret,omitempty"`

	// Name of the session cookie. Default "__Host-implicit_grant". Pending
	// logins use cookies named <cookie_name>_state_*.
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

	// How long a login may take from redirect to callback. Default 10m.
	StateTTL caddy.Duration `json:"state_ttl,omitempty"`

	// What a request without a session gets: "auto" (default) redirects
	// browser navigations to log in and answers API calls (fetch/XHR,
	// non-GET, no text/html in Accept, Sec-Fetch-Mode other than navigate)
	// with 401; "redirect" redirects every GET and HEAD; "reject" answers
	// 401 to everything.
	Unauthenticated string `json:"unauthenticated,omitempty"`

	// Whether browsers keep the URL's fragment (#/view) across the login.
	// Their top-level page loads (Sec-Fetch-Dest: document with
	// Upgrade-Insecure-Requests: 1) then get a short page that saves the
	// fragment and goes on to the authorization server, instead of a 302;
	// other clients always get the 302. Default true; false sends a 302 to
	// everyone.
	PreserveFragment *bool `json:"preserve_fragment,omitempty"`

	// Where sessions live. Default: in memory.
	Store *StoreConfig `json:"store,omitempty"`

	authorize      *url.URL
	authorizeStart string // authorize URL with every parameter but the state's value
	callbackPath   string
	origin         string // scheme://host of redirect_uri: what Origin must say on the relay POST
	secret         []byte
	states         relay.StateCookies
	store          tokencache.Store
	storePoolKey   string
	chunked        bool // the session cookie holds the sealed session and may need several cookies
	logger         *zap.Logger
}

// StoreConfig chooses where sessions live.
type StoreConfig struct {
	// "memory" (the default): in this process, kept across config reloads.
	// "cookie": sealed (AES-256-GCM) into the session cookie itself; no
	// server state, so any number of instances with the same secret work.
	// "redis": in Redis, shared by every instance using it.
	Type string `json:"type,omitempty"`

	// memory: the most sessions kept; when full, the session closest to
	// expiry goes first. Default 1,000,000.
	MaxSessions int `json:"max_sessions,omitempty"`

	// redis: where it is, e.g. redis://user:pass@host:6379/0; rediss:// for
	// TLS; ?addr=host2:6379&addr=host3:6379 for a cluster;
	// ?master_set=mymaster for Sentinel (the hosts are then sentinels).
	URL string `json:"url,omitempty"`

	// redis: prefix of every key. Default "implicit_grant:".
	KeyPrefix string `json:"key_prefix,omitempty"`

	// redis: how long one call may take before the request fails with 503.
	// Default 1s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.implicit_grant",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision expands placeholders, fills in defaults and opens the store.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	repl := caddy.NewReplacer()
	h.AuthorizeURL = repl.ReplaceKnown(h.AuthorizeURL, "")
	h.ClientID = repl.ReplaceKnown(h.ClientID, "")
	h.RedirectURI = repl.ReplaceKnown(h.RedirectURI, "")
	for k, v := range h.Params {
		h.Params[k] = repl.ReplaceKnown(v, "")
	}

	if h.CookieName == "" {
		h.CookieName = DefaultCookieName
	}
	if h.LoginPath == "" {
		h.LoginPath = DefaultLoginPath
	}
	if h.LogoutPath == "" {
		h.LogoutPath = DefaultLogoutPath
	}
	if h.DefaultExpiresIn == 0 {
		h.DefaultExpiresIn = caddy.Duration(DefaultExpiresIn)
	}
	if h.ExpiryLeeway == 0 {
		h.ExpiryLeeway = caddy.Duration(DefaultExpiryLeeway)
	}
	if h.StateTTL == 0 {
		h.StateTTL = caddy.Duration(DefaultStateTTL)
	}
	if h.Unauthenticated == "" {
		h.Unauthenticated = "auto"
	}
	if h.Store == nil {
		h.Store = &StoreConfig{}
	}
	if h.Store.Type == "" {
		h.Store.Type = "memory"
	}
	if h.Store.MaxSessions == 0 {
		h.Store.MaxSessions = DefaultMaxSessions
	}
	if h.Store.KeyPrefix == "" {
		h.Store.KeyPrefix = "implicit_grant:"
	}
	h.Store.URL = repl.ReplaceKnown(h.Store.URL, "")

	if err := h.checkConfig(); err != nil {
		return err
	}
	if err := h.provisionSecret(ctx, repl); err != nil {
		return err
	}
	h.states = relay.StateCookies{
		Key:        deriveKey(h.secret, "state cookie"),
		NamePrefix: h.CookieName + "_state_",
		TTL:        time.Duration(h.StateTTL),
		MaxPending: DefaultMaxPendingLogins,
	}

	return h.openStore()
}

// stores holds the session stores across config reloads: a reload must not
// log anyone out, drop a Redis connection or lose a state claim.
var stores = caddy.NewUsagePool()

type pooledStore struct {
	tokencache.Store
	close func() error
}

func (p pooledStore) Destruct() error { return p.close() }

// openStore takes the configured store from the pool, creating it for the
// first config that uses it.
func (h *Handler) openStore() error {
	var open func() (caddy.Destructor, error)
	sealKey := deriveKey(h.secret, "session seal")
	// The key fingerprint is part of the pool key so a changed secret gets
	// a store that seals with the new key; it reveals nothing of the secret.
	fingerprint := hex.EncodeToString(deriveKey(sealKey, "fingerprint")[:8])
	// Sessions made for one authorization server and client never
	// authenticate requests meant for another.
	binding := h.AuthorizeURL + "|" + h.ClientID
	switch h.Store.Type {
	case "memory":
		h.storePoolKey = "memory|" + binding
		open = func() (caddy.Destructor, error) {
			m := tokencache.NewMemory(h.Store.MaxSessions, time.Minute)
			logger := h.logger
			var lastLog atomic.Int64
			m.OnEviction = func() {
				// At most one line a minute however hard the store is pushed;
				// the running total is in it.
				now := time.Now().Unix()
				if last := lastLog.Load(); now-last >= 60 && lastLog.CompareAndSwap(last, now) {
					logger.Warn("session store full: evicting the sessions closest to expiry; raise max_sessions",
						zap.Uint64("evicted_total", m.Evictions()))
				}
			}
			return pooledStore{m, m.Close}, nil
		}
	case "cookie":
		h.chunked = true
		h.storePoolKey = "cookie|" + h.CookieName + "|" + binding + "|" + fingerprint
		open = func() (caddy.Destructor, error) {
			c, err := tokencache.NewCookie(sealKey, h.CookieName+"|"+binding)
			if err != nil {
				return nil, err
			}
			return pooledStore{c, c.Close}, nil
		}
	case "redis":
		h.storePoolKey = "redis|" + h.Store.URL + "|" + h.Store.KeyPrefix + "|" + binding + "|" + fingerprint
		open = func() (caddy.Destructor, error) {
			r, err := tokencache.NewRedis(tokencache.RedisOptions{
				URL: h.Store.URL, KeyPrefix: h.Store.KeyPrefix, Key: sealKey, Binding: binding, Timeout: time.Duration(h.Store.Timeout),
			})
			if err != nil {
				return nil, err
			}
			return pooledStore{r, r.Close}, nil
		}
	}
	pooled, _, err := stores.LoadOrNew(h.storePoolKey, open)
	if err != nil {
		h.storePoolKey = ""
		return fmt.Errorf("store: %w", err)
	}
	h.store = pooled.(pooledStore).Store
	return nil
}

// provisionSecret expands the configured secret or, when there is none,
// loads or creates one in Caddy's storage so restarts keep sessions valid.
func (h *Handler) provisionSecret(ctx caddy.Context, repl *caddy.Replacer) error {
	if h.Secret != "" {
		s := repl.ReplaceKnown(h.Secret, "")
		switch {
		case s == "":
			return errors.New("secret: empty after replacing placeholders (is the environment variable set?)")
		case len(s) < minSecretBytes:
			return fmt.Errorf("secret: must be at least %d bytes, got %d", minSecretBytes, len(s))
		}
		h.secret = []byte(s)
		return nil
	}
	storage := ctx.Storage()
	stored, err := storage.Load(ctx, secretStorageKey)
	if err == nil && len(stored) >= minSecretBytes {
		h.secret = stored
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("secret: none configured and loading the generated one failed: %w", err)
	}
	buf := make([]byte, 32)
	_, _ = rand.Read(buf)
	h.secret = []byte(hex.EncodeToString(buf))
	if err := storage.Store(ctx, secretStorageKey, h.secret); err != nil {
		return fmt.Errorf("secret: none configured and storing a generated one failed: %w", err)
	}
	h.logger.Info("no secret configured: generated one and stored it in caddy's storage; set 'secret' when several instances must share sessions",
		zap.String("storage_key", secretStorageKey))
	return nil
}

// checkConfig refuses every bad value with the field's name; it runs in
// Provision because the values are only known once placeholders are
// replaced, and the store must not be opened for a config that fails.
func (h *Handler) checkConfig() error {
	if h.AuthorizeURL == "" {
		return errors.New("authorize_url: required")
	}
	au, err := url.Parse(h.AuthorizeURL)
	if err != nil || au.Host == "" || au.Fragment != "" {
		return fmt.Errorf("authorize_url: %q is not an absolute URL without a fragment", h.AuthorizeURL)
	}
	if au.Scheme != "https" && !(au.Scheme == "http" && isLoopback(au.Hostname())) {
		return fmt.Errorf("authorize_url: %q must use https (http is allowed only for loopback hosts)", h.AuthorizeURL)
	}
	if h.ClientID == "" {
		return errors.New("client_id: required")
	}
	if h.RedirectURI == "" {
		return errors.New("redirect_uri: required")
	}
	ru, err := url.Parse(h.RedirectURI)
	if err != nil || ru.Host == "" || (ru.Scheme != "https" && ru.Scheme != "http") || ru.Fragment != "" || ru.RawQuery != "" {
		return fmt.Errorf("redirect_uri: %q must be an absolute http(s) URL without query or fragment", h.RedirectURI)
	}
	if ru.Path == "" {
		ru.Path = "/"
	}
	for _, p := range []struct{ field, path string }{{"login_path", h.LoginPath}, {"logout_path", h.LogoutPath}} {
		if !strings.HasPrefix(p.path, "/") {
			return fmt.Errorf("%s: %q must start with /", p.field, p.path)
		}
		if p.path == ru.Path {
			return fmt.Errorf("%s: %q is the redirect_uri's path; they must differ", p.field, p.path)
		}
	}
	if h.LoginPath == h.LogoutPath {
		return fmt.Errorf("logout_path: %q is also the login_path", h.LogoutPath)
	}
	for _, s := range h.Scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") || !isPrintableASCII(s) {
			return fmt.Errorf("scope: %q is not a valid scope token", s)
		}
	}
	for name := range h.Params {
		switch name {
		case "response_type", "client_id", "redirect_uri", "state":
			return fmt.Errorf("param: %q is set by implicit_grant itself and cannot be overridden", name)
		case "scope":
			if len(h.Scopes) > 0 {
				return errors.New("param: scope is already set by the scope subdirective")
			}
		case "show_dialog":
			if h.ShowDialog {
				return errors.New("param: show_dialog is already set by the show_dialog subdirective")
			}
		case "response_mode":
			if h.Params[name] != "fragment" {
				return fmt.Errorf("param: response_mode %q is not supported; the token must arrive in the fragment", h.Params[name])
			}
		case "":
			return errors.New("param: empty parameter name")
		}
	}
	for name := range au.Query() {
		if slices.Contains([]string{"response_type", "client_id", "redirect_uri", "state"}, name) {
			return fmt.Errorf("authorize_url: its query sets %q, which implicit_grant sets itself", name)
		}
	}
	if h.LogoutRedirect != "" {
		if lu, err := url.Parse(h.LogoutRedirect); err != nil || (lu.Host == "" && !strings.HasPrefix(h.LogoutRedirect, "/")) {
			return fmt.Errorf("logout_redirect: %q must be an absolute URL or a path", h.LogoutRedirect)
		}
	}
	if !strings.HasPrefix(h.CookieName, "__Host-") && h.CookieName != "" {
		// Allowed (some setups need a Domain-less plain name), but the
		// prefix is what stops sibling subdomains from planting cookies.
		h.logger.Warn("cookie_name lacks the __Host- prefix; sibling subdomains could set this cookie")
	}
	if h.CookieName == "" || strings.ContainsAny(h.CookieName, " \t\r\n;,=\"") || !isPrintableASCII(h.CookieName) {
		return fmt.Errorf("cookie_name: %q is not a valid cookie name", h.CookieName)
	}
	switch {
	case time.Duration(h.DefaultExpiresIn) < 0:
		return fmt.Errorf("default_expires_in: %s must be positive", time.Duration(h.DefaultExpiresIn))
	case time.Duration(h.ExpiryLeeway) < 0:
		return fmt.Errorf("expiry_leeway: %s must not be negative", time.Duration(h.ExpiryLeeway))
	case time.Duration(h.StateTTL) < time.Second:
		return fmt.Errorf("state_ttl: %s is too short for anyone to log in (minimum 1s)", time.Duration(h.StateTTL))
	case h.Store.MaxSessions < 0:
		return fmt.Errorf("store: max_sessions %d must be positive", h.Store.MaxSessions)
	case time.Duration(h.Store.Timeout) < 0:
		return fmt.Errorf("store: timeout %s must be positive", time.Duration(h.Store.Timeout))
	}
	switch h.Store.Type {
	case "memory", "cookie":
		if h.Store.URL != "" {
			return fmt.Errorf("store: %s takes no url", h.Store.Type)
		}
	case "redis":
		if h.Store.URL == "" {
			return errors.New("store: redis needs a url, e.g. redis://127.0.0.1:6379/0")
		}
		if u, err := url.Parse(h.Store.URL); err != nil || u.Host == "" && u.Scheme != "unix" {
			return errors.New("store: redis url is not a URL such as redis://host:6379/0") // the URL may hold a password: not repeated
		}
	default:
		return fmt.Errorf("store: %q is not memory, cookie or redis", h.Store.Type)
	}
	switch h.Unauthenticated {
	case "auto", "redirect", "reject":
	default:
		return fmt.Errorf("unauthenticated: %q must be auto, redirect or reject", h.Unauthenticated)
	}

	h.authorize = au
	h.callbackPath = ru.Path
	h.origin = originOf(ru)
	h.authorizeStart = h.buildAuthorizeStart()
	return nil
}

// buildAuthorizeStart renders the authorization request once; each login
// only appends its state.
func (h *Handler) buildAuthorizeStart() string {
	q := h.authorize.Query()
	q.Set("response_type", "token")
	q.Set("client_id", h.ClientID)
	q.Set("redirect_uri", h.RedirectURI)
	if len(h.Scopes) > 0 {
		q.Set("scope", strings.Join(h.Scopes, " "))
	}
	if h.ShowDialog {
		q.Set("show_dialog", "true")
	}
	for k, v := range h.Params {
		q.Set(k, v)
	}
	u := *h.authorize
	u.RawQuery = ""
	// Encode sorts by key; scope's spaces become %20, which every server
	// reads, rather than "+", which some do not.
	return u.String() + "?" + strings.ReplaceAll(q.Encode(), "+", "%20") + "&state="
}

// Validate is part of caddy.Validator; the checks run in Provision (see checkConfig).
func (h *Handler) Validate() error { return nil }

// Cleanup releases this config's hold on the shared session store.
func (h *Handler) Cleanup() error {
	if h.storePoolKey != "" {
		_, err := stores.Delete(h.storePoolKey)
		return err
	}
	return nil
}

// ServeHTTP routes the handler's own paths and guards everything else.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	switch r.URL.Path {
	case h.callbackPath:
		switch r.Method {
		case http.MethodPost:
			return h.serveRelayPost(w, r)
		case http.MethodGet, http.MethodHead:
			return h.serveCallback(w, r)
		}
		w.Header().Set("Allow", "GET, HEAD, POST")
		return caddyhttp.Error(http.StatusMethodNotAllowed, errors.New("implicit_grant: the callback takes GET and POST"))
	case h.LoginPath:
		return h.serveLogin(w, r)
	case h.LogoutPath:
		return h.serveLogout(w, r)
	}
	return h.serveProtected(w, r, next)
}

// serveProtected is the hot path: every proxied request passes here.
func (h *Handler) serveProtected(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if value := h.sessionValue(r); value != "" {
		s, ok, err := h.store.Get(r.Context(), value)
		if err != nil {
			// Fail closed: without the store nobody can be trusted.
			metrics.storeError.Inc()
			h.logger.Error("session store failed; refusing the request", zap.Error(err))
			if !h.isNavigation(r) && !hasErrorRoutes(r) {
				return writeJSON(w, http.StatusServiceUnavailable, map[string]string{
					"error":             "store_unavailable",
					"error_description": "the session store cannot be reached; try again shortly",
				})
			}
			return h.respondError(w, r, http.StatusServiceUnavailable, "store_unavailable", "", r.URL.RequestURI())
		}
		if ok {
			metrics.authenticated.Inc()
			cookieheader.Strip(r.Header, h.CookieName)
			if v := r.Header["Authorization"]; len(v) == 1 {
				v[0] = s.Authorization // replace the client's own in place: no allocation
			} else {
				r.Header["Authorization"] = []string{s.Authorization}
			}
			return next.ServeHTTP(w, r)
		}
	}
	if !h.isNavigation(r) {
		metrics.unauthenticated.Inc()
		return h.respondUnauthenticated(w, r)
	}
	metrics.loginRedirect.Inc()
	return h.startLogin(w, r, r.URL.RequestURI())
}

// isNavigation tells a person's page load, which can be sent to log in,
// from a script's or client's call, which cannot follow that redirect.
func (h *Handler) isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch h.Unauthenticated {
	case "redirect":
		return true
	case "reject":
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" && mode != "navigate" {
		return false
	}
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// startLogin sends the browser to the authorization server with a fresh
// state bound to this browser by its own cookie.
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request, returnTo string) error {
	state := tokencache.NewID()
	h.states.Issue(w, r, state, relay.SafeReturnPath(returnTo))
	if c := h.logger.Check(zap.DebugLevel, "login started"); c != nil {
		c.Write(zap.String("path", r.URL.Path))
	}
	location := h.authorizeStart + state
	if h.keepsFragment(r) {
		return relay.ServeStart(w, location)
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Location", location)
	w.WriteHeader(http.StatusFound)
	_, _ = io.WriteString(w, `<a href="`+html.EscapeString(location)+`">Sign in</a>`)
	// The Location carries the state, and Caddy's access log records the
	// response header map once the handler returns. The headers are on the
	// wire by now (net/http snapshots them), so dropping Location from the
	// map keeps the state out of the logs without changing the response.
	hdr.Del("Location")
	return nil
}

// keepsFragment tells whether this navigation gets the start page that
// keeps the URL's fragment: only real browsers' top-level page loads, which
// Chrome, Firefox and Safari mark with both Sec-Fetch-Dest: document and
// Upgrade-Insecure-Requests: 1. Every other client keeps its plain 302.
func (h *Handler) keepsFragment(r *http.Request) bool {
	return (h.PreserveFragment == nil || *h.PreserveFragment) &&
		r.Method == http.MethodGet &&
		r.Header.Get("Sec-Fetch-Dest") == "document" &&
		r.Header.Get("Sec-Fetch-Mode") == "navigate" &&
		r.Header.Get("Upgrade-Insecure-Requests") == "1"
}

// respondUnauthenticated answers a call that cannot follow a login
// redirect: 401 with a JSON body saying where a person can log in.
func (h *Handler) respondUnauthenticated(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("WWW-Authenticate", `Bearer realm="implicit_grant"`)
	if hasErrorRoutes(r) {
		return caddyhttp.Error(http.StatusUnauthorized, errors.New("implicit_grant: no valid session"))
	}
	returnTo := "/"
	if ref, err := url.Parse(r.Header.Get("Referer")); err == nil && ref.Host != "" && originOf(ref) == h.origin {
		returnTo = relay.SafeReturnPath(ref.RequestURI())
	}
	return writeJSON(w, http.StatusUnauthorized, map[string]string{
		"error":             "unauthenticated",
		"error_description": "no valid session: log in at login_url",
		"login_url":         h.LoginPath + "?return_to=" + url.QueryEscape(returnTo),
	})
}

// serveLogin starts a login on request (for pages whose API calls got 401).
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) error {
	returnTo := relay.SafeReturnPath(r.URL.Query().Get("return_to"))
	if value := h.sessionValue(r); value != "" {
		if _, ok, err := h.store.Get(r.Context(), value); err == nil && ok {
			http.Redirect(w, r, returnTo, http.StatusFound)
			return nil
		}
	}
	return h.startLogin(w, r, returnTo)
}

// serveCallback answers the authorization server's redirect. A success
// carries the token in the fragment, which only the relay page's script
// can read; an error may come in the query (as Spotify sends it).
func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if ae, isErr := relay.ParseAuthError(q); isErr {
		retry := "/"
		if ae.State != "" {
			if p, err := h.states.Take(w, r, ae.State); err == nil {
				retry = p.ReturnTo
			}
		}
		h.logger.Info("authorization server returned an error", zap.String("error", ae.Code))
		countLogin(authErrorOutcome(ae.Code))
		return h.respondError(w, r, authErrorStatus(ae.Code), ae.Code, ae.Description, retry)
	}
	if q.Has("access_token") {
		// A token in the query has already been written to access logs and
		// history on the way here; refuse it rather than make it a session.
		h.logger.Warn("refused an access token sent in the callback's query string; the authorization server must use the fragment")
		countLogin(loginInvalidResponse)
		return h.respondError(w, r, http.StatusBadRequest, "invalid_response", "", "/")
	}
	relay.ServePage(w)
	return nil
}

// serveRelayPost takes what the relay script posted: the callback's fragment.
func (h *Handler) serveRelayPost(w http.ResponseWriter, r *http.Request) error {
	if !h.sameOrigin(r) {
		h.logger.Warn("refused a relay post from another origin", zap.String("origin", r.Header.Get("Origin")))
		countLogin(loginRefused)
		return writeJSON(w, http.StatusForbidden, relayAnswer{Error: "cross_origin", Location: "/"})
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		countLogin(loginRefused)
		return writeJSON(w, http.StatusUnsupportedMediaType, relayAnswer{Error: "unsupported_media_type", Location: "/"})
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, relay.MaxFragmentBytes))
	if err != nil {
		countLogin(loginRefused)
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			return writeJSON(w, http.StatusRequestEntityTooLarge, relayAnswer{Error: "too_large", Location: "/"})
		}
		return writeJSON(w, http.StatusBadRequest, relayAnswer{Error: "invalid_request", Location: "/"})
	}

	tr, ae, err := relay.ParseFragment(string(body))
	switch {
	case ae != nil:
		retry := "/"
		if p, err := h.states.Take(w, r, ae.State); err == nil {
			retry = p.ReturnTo
		}
		h.logger.Info("authorization server returned an error", zap.String("error", ae.Code))
		countLogin(authErrorOutcome(ae.Code))
		return h.relayError(w, authErrorStatus(ae.Code), ae.Code, ae.Description, retry)
	case err != nil:
		h.logger.Warn("refused an authorization response", zap.Error(err))
		countLogin(loginInvalidResponse)
		if vals, perr := url.ParseQuery(string(body)); perr == nil && len(vals["state"]) == 1 {
			h.states.Take(w, r, vals.Get("state")) // the attempt is over either way
		}
		return h.relayError(w, http.StatusBadRequest, "invalid_response", "", "/")
	}

	pending, err := h.states.Take(w, r, tr.State)
	if err != nil {
		h.logger.Warn("refused a login", zap.String("reason", err.Error()))
		countLogin(loginInvalidState)
		return h.relayError(w, http.StatusBadRequest, "invalid_state", "", "/")
	}
	first, err := h.store.ClaimState(r.Context(), tr.State, pending.Expires)
	if err != nil {
		h.logger.Error("session store failed while finishing a login", zap.Error(err))
		countLogin(loginStoreError)
		return h.relayError(w, http.StatusServiceUnavailable, "store_unavailable", "", pending.ReturnTo)
	}
	if !first {
		h.logger.Warn("refused a login", zap.String("reason", "state already used"))
		countLogin(loginInvalidState)
		return h.relayError(w, http.StatusBadRequest, "invalid_state", "", pending.ReturnTo)
	}

	lifetime := time.Duration(h.DefaultExpiresIn)
	if tr.ExpiresIn > 0 {
		lifetime = time.Duration(tr.ExpiresIn) * time.Second
	}
	ttl := max(lifetime-time.Duration(h.ExpiryLeeway), lifetime/2)
	value, err := h.store.Put(r.Context(), tokencache.Session{
		Authorization: "Bearer " + tr.AccessToken,
		Expires:       time.Now().Add(ttl),
	})
	if err != nil {
		h.logger.Error("session store failed while finishing a login", zap.Error(err))
		countLogin(loginStoreError)
		return h.relayError(w, http.StatusServiceUnavailable, "store_unavailable", "", pending.ReturnTo)
	}
	if old := h.sessionValue(r); old != "" {
		_ = h.store.Delete(r.Context(), old) // the browser's previous session ends with the new one
	}
	h.setSessionCookie(w, r, value, int(ttl/time.Second))
	h.logger.Info("login finished", zap.Duration("session_lifetime", ttl), zap.String("scope", tr.Scope))
	countLogin(loginSuccess)
	return writeJSON(w, http.StatusOK, relayAnswer{Location: pending.ReturnTo})
}

// relayAnswer is what the relay script gets back: where to go next.
type relayAnswer struct {
	Location string `json:"location"`
	Error    string `json:"error,omitempty"`
}

// relayError answers the relay script with the error page to show.
func (h *Handler) relayError(w http.ResponseWriter, status int, code, description, retry string) error {
	return writeJSON(w, status, relayAnswer{Error: code, Location: h.errorPage(code, description, retry)})
}

// errorPage is the callback URL that shows the page for an error code. It
// carries no state: the attempt is already over.
func (h *Handler) errorPage(code, description, retry string) string {
	q := url.Values{"error": {code}}
	if description != "" {
		q.Set("error_description", description)
	}
	if retry != "/" {
		q.Set("return_to", retry)
	}
	return h.callbackPath + "?" + q.Encode()
}

// sameOrigin accepts only requests a browser marks as coming from the
// redirect_uri's own origin.
func (h *Handler) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		ou, err := url.Parse(o)
		return err == nil && ou.Host != "" && originOf(ou) == h.origin
	}
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

// serveLogout ends the session in the store and in the browser.
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) error {
	metrics.logouts.Inc()
	if value := h.sessionValue(r); value != "" {
		if err := h.store.Delete(r.Context(), value); err != nil {
			h.logger.Error("session store failed during logout", zap.Error(err))
			return h.respondError(w, r, http.StatusServiceUnavailable, "store_unavailable", "", "/")
		}
		h.logger.Info("logged out")
	}
	h.setSessionCookie(w, r, "", -1)
	w.Header().Set("Cache-Control", "no-store")
	if h.LogoutRedirect != "" {
		http.Redirect(w, r, h.LogoutRedirect, http.StatusSeeOther)
		return nil
	}
	return relay.ServeMessage(w, http.StatusOK, relay.Message{
		Title:    "Signed out",
		Text:     "You are signed out of this site. Your account at the authorization server may still be signed in.",
		LinkHref: "/",
		LinkText: "Sign in again",
	})
}

// maxCookieValue keeps each Set-Cookie line, attributes included, well
// under the 4096 bytes browsers are required to store per cookie.
const maxCookieValue = 3800

// sessionValue reads the session cookie; the cookie store's sealed
// sessions may be split over numbered chunk cookies.
func (h *Handler) sessionValue(r *http.Request) string {
	if !h.chunked {
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
	if h.chunked {
		for ; cookieheader.Value(r.Header, cookieheader.ChunkName(h.CookieName, n)) != ""; n++ {
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
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// respondError shows a person what went wrong, or hands the error to the
// site's handle_errors routes when it has any.
func (h *Handler) respondError(w http.ResponseWriter, r *http.Request, status int, code, description, retry string) error {
	if hasErrorRoutes(r) {
		return caddyhttp.Error(status, fmt.Errorf("implicit_grant: %s", code))
	}
	if rt := r.URL.Query().Get("return_to"); rt != "" && retry == "/" {
		retry = relay.SafeReturnPath(rt)
	}
	return relay.ServeMessage(w, status, relay.ErrorMessage(code, description, retry))
}

func authErrorOutcome(code string) string {
	if code == "access_denied" {
		return loginDenied
	}
	return loginServerError
}

func authErrorStatus(code string) int {
	switch code {
	case "access_denied":
		return http.StatusForbidden
	case "server_error", "temporarily_unavailable":
		return http.StatusBadGateway
	}
	return http.StatusBadRequest
}

func hasErrorRoutes(r *http.Request) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return ok && srv.Errors != nil && len(srv.Errors.Routes) > 0
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// deriveKey gives each use of the secret its own key, so a key leaked from
// one use (say, state cookies) says nothing about another.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("implicit_grant v1 " + purpose))
	return m.Sum(nil)
}

// originOf is a URL's origin as browsers write it in Origin: lower case,
// without the scheme's default port.
func originOf(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if p := u.Port(); (scheme == "https" && p == "443") || (scheme == "http" && p == "80") {
		host = strings.ToLower(u.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return scheme + "://" + host
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
