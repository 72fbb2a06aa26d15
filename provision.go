// Provision: placeholders, defaults, the checks every config value must
// pass (one home per rule, for JSON and Caddyfile alike), the values derived
// from them, and the secret.

package implicitgrant

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/relay"
)

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
