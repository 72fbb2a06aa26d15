// Provision: placeholders, defaults, running the checks (checks.go), the
// templates and the secret. What the checked config derives is in
// derive.go.

package implicitgrant

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/internal/coarseclock"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
	"github.com/implicitgrant/caddy-implicit-grant/tokencache"
)

// Provision expands placeholders, fills in defaults, runs the checks
// (checks.go) and opens the store.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.refusals = &refusalLog{windows: map[string]*logWindowState{}}
	h.events = newEvents(ctx)
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	h.expandPlaceholders(caddy.NewReplacer())
	if err := h.loadStoreBackend(ctx); err != nil {
		return err
	}
	h.setDefaults()
	if err := h.checkConfig(); err != nil {
		return err
	}
	if h.Validation != nil && h.Validation.Mode == validateNone {
		h.logger.Warn("validate none: any token, even a made-up one, opens a session; the upstream must check every token itself")
	}
	if ru, _ := url.Parse(h.RedirectURI); ru.Scheme == "http" {
		// Only on a loopback host (checkServer): a developer's machine.
		// Safari and WebKit drop Secure cookies on http://localhost, and the
		// __Host- prefix needs Secure, so both go; no https site is touched.
		h.plainHTTP = true
		h.CookieName = strings.TrimPrefix(strings.TrimPrefix(h.CookieName, "__Host-"), "__Secure-")
		h.logger.Info("redirect_uri is plain http on a loopback host: cookies without Secure and the __Host- prefix (development only)",
			zap.String("cookie_name", h.CookieName))
	} else if !strings.HasPrefix(h.CookieName, "__Host-") {
		// Allowed (some setups need a plain name), but the prefix is what
		// stops sibling subdomains from planting cookies.
		h.logger.Warn("cookie_name lacks the __Host- prefix; sibling subdomains could set this cookie")
	}
	if err := h.provisionSecret(ctx); err != nil {
		return err
	}
	h.derive()
	if err := h.checkEndSessionAtLoad(ctx); err != nil {
		return err
	}
	h.limits = newLoginLimits(h.MaxLoginsPerAddress)
	if h.RenewBefore > 0 || h.codeFlow() {
		h.releaseClock = coarseclock.Hold() // renewDue and refreshDue read it
	}
	if err := h.loadTemplates(); err != nil {
		return err
	}
	if err := h.openStore(ctx); err != nil {
		return err
	}
	register(h)
	return nil
}

// expandPlaceholders replaces {env.*} and other global placeholders in
// every value that may carry one, once: the checks see what is used.
func (h *Handler) expandPlaceholders(repl *caddy.Replacer) {
	h.secretGiven = h.Secret != ""
	h.clientSecretGiven = h.ClientSecret != ""
	for _, v := range []*string{&h.AuthorizeURL, &h.ClientID, &h.RedirectURI, &h.OpenID, &h.Secret, &h.TokenURL, &h.ClientSecret, &h.RevocationURL, &h.LogoutRedirect} {
		*v = repl.ReplaceKnown(*v, "")
	}
	for i, p := range h.PreviousSecrets {
		h.PreviousSecrets[i] = repl.ReplaceKnown(p, "")
	}
	for k, v := range h.Params {
		h.Params[k] = repl.ReplaceKnown(v, "")
	}
	for k, v := range h.Templates {
		h.Templates[k] = repl.ReplaceKnown(v, "")
	}
	if v := h.Validation; v != nil {
		for _, s := range []*string{&v.Issuer, &v.JWKSURL, &v.URL, &v.ClientID, &v.ClientSecret} {
			*s = repl.ReplaceKnown(*s, "")
		}
		for i, a := range v.Audience {
			v.Audience[i] = repl.ReplaceKnown(a, "")
		}
	}
}

// setDefaults fills in every option left unset.
func (h *Handler) setDefaults() {
	if h.CookieName == "" {
		h.CookieName = DefaultCookieName
	}
	if h.LoginPath == "" {
		h.LoginPath = defaultSibling(h.RedirectURI, "login")
	}
	if h.LogoutPath == "" {
		h.LogoutPath = defaultSibling(h.RedirectURI, "logout")
	}
	if h.SessionPath == "" {
		h.SessionPath = defaultSibling(h.RedirectURI, "session")
	}
	if h.ResponseMode == "" {
		h.ResponseMode = ResponseModeFragment
	}
	if h.ResponseType == "" {
		h.ResponseType = ResponseTypeToken
	}
	if h.TokenAuth == "" && h.codeFlow() {
		h.TokenAuth = authserver.TokenAuthNone
		if h.ClientSecret != "" {
			h.TokenAuth = authserver.TokenAuthBasic
		}
	}
	if h.SameSite == "" {
		h.SameSite = "lax"
	}
	if h.RenewPrompt == "" {
		h.RenewPrompt = RenewPromptNone
	}
	if h.DefaultExpiresIn == 0 {
		h.DefaultExpiresIn = caddy.Duration(DefaultExpiresIn)
	}
	if h.ExpiryLeeway == 0 {
		h.ExpiryLeeway = caddy.Duration(DefaultExpiryLeeway)
	}
	if h.MaxTokenBytes == 0 {
		h.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if h.MaxSessionLifetime == 0 {
		h.MaxSessionLifetime = caddy.Duration(DefaultMaxSession)
	}
	if h.StateTTL == 0 {
		h.StateTTL = caddy.Duration(DefaultStateTTL)
	}
	if h.Unauthenticated == "" {
		h.Unauthenticated = UnauthenticatedAuto
	}
	if h.ErrorPages == "" {
		h.ErrorPages = ErrorPagesBuiltin
	}
	if h.MaxLoginsPerAddress == 0 {
		h.MaxLoginsPerAddress = DefaultMaxLoginsPerAddress
	}
	if h.Claims == nil {
		h.Claims = DefaultClaims
	}
	if h.MaxSessionsPerUser == 0 && !h.sessionInCookie {
		h.MaxSessionsPerUser = tokencache.DefaultMaxSessionsPerUser
	}
}

// loadTemplates reads the site owner's pages over the built-in ones.
func (h *Handler) loadTemplates() error {
	h.pages = relay.Builtin()
	kinds := slices.Sorted(maps.Keys(h.Templates))
	for _, kind := range kinds {
		if err := h.pages.LoadTemplate(kind, h.Templates[kind]); err != nil {
			return fmt.Errorf("template %s: %w", kind, err)
		}
	}
	return nil
}

// storageOf is Caddy's storage (asked for only when needed: a context
// made outside a running config has none).
func (h *Handler) storageOf(ctx caddy.Context) certmagic.Storage {
	if h.storage == nil {
		h.storage = ctx.Storage()
	}
	return h.storage
}

// provisionSecret takes the configured secrets (checkSecrets checked
// them) or, when there is none, loads or creates one in Caddy's storage so
// restarts keep sessions valid.
func (h *Handler) provisionSecret(ctx caddy.Context) error {
	if h.Secret != "" {
		h.secrets = [][]byte{[]byte(h.Secret)}
		for _, p := range h.PreviousSecrets {
			h.secrets = append(h.secrets, []byte(p))
		}
		return nil
	}
	storage := h.storageOf(ctx)
	stored, err := storage.Load(ctx, secretStorageKey)
	if err == nil && len(stored) >= minSecretBytes {
		h.secrets = [][]byte{stored}
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("secret: none configured and loading the generated one failed: %w", err)
	}
	buf := make([]byte, 32)
	_, _ = rand.Read(buf)
	h.secrets = [][]byte{[]byte(hex.EncodeToString(buf))}
	if err := storage.Store(ctx, secretStorageKey, h.secrets[0]); err != nil {
		return fmt.Errorf("secret: none configured and storing a generated one failed: %w", err)
	}
	h.logger.Info("no secret configured: generated one and stored it in caddy's storage; set 'secret' when several instances must share sessions",
		zap.String("storage_key", secretStorageKey))
	return nil
}
