// Package e2e proves the module in a real browser: headless Chromium
// (driven with chromedp) logs in through a real Caddy against the
// project's dev provider and against Ory Hydra, a real third-party OAuth2
// server, and the upstream checks every token it gets with the server that
// issued it.
package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html/template"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
)

func TestMain(m *testing.M) {
	testcaddy.Main(m, "../cmd/caddy", func() {
		if stopHydra != nil {
			stopHydra()
		}
	})
}

const e2eSecret = "an-end-to-end-secret-of-more-than-32-bytes"

// authServer is one authorization server the scenarios run against.
type authServer struct {
	name string
	// setup registers a client for the site and returns the implicit_grant
	// subdirectives naming the server, plus any Caddy sites it needs.
	setup func(t *testing.T, origin string, tokenLifetime time.Duration) (directives, sites string)
	// check asks the server whether a token is valid, and whose it is.
	check func(token string) (valid bool, user string)
}

func devProvider() authServer { return devProviderWith("") }

// devProviderWith is the dev provider with more of its subdirectives.
func devProviderWith(providerExtra string) authServer {
	return devProviderOn("127.0.0.1", providerExtra)
}

// devProviderOn runs the dev provider on host: 127.0.0.1 is another site
// than the protected localhost (its cookies are third-party in a frame
// there); localhost, on another port, is the same site (as
// login.corp.example is for dash.corp.example).
func devProviderOn(host, providerExtra string) authServer {
	var providerOrigin string
	return authServer{
		name: "dev-provider",
		setup: func(t *testing.T, origin string, lifetime time.Duration) (string, string) {
			port := testcaddy.FreePort(t)
			providerOrigin = fmt.Sprintf("http://%s:%d", host, port)
			expires := ""
			if lifetime > 0 {
				expires = "expires_in " + lifetime.String()
			}
			return fmt.Sprintf("openid %s\n\t\tclient_id e2e-client\n\t\tscope profile reports", providerOrigin),
				fmt.Sprintf("http://%s:%d {\n\timplicit_grant_dev_provider {\n\t\tclient e2e-client %s/oauth/callback\n\t\t%s\n\t\t%s\n\t}\n}\n", host, port, origin, expires, providerExtra)
		},
		check: func(token string) (bool, string) {
			req, _ := http.NewRequest(http.MethodGet, providerOrigin+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false, ""
			}
			defer resp.Body.Close()
			var info struct {
				Sub string `json:"sub"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&info)
			return resp.StatusCode == http.StatusOK, info.Sub
		},
	}
}

// One Hydra serves the whole suite; each site registers its own client.
var (
	sharedHydra     *hydra
	sharedHydraErr  error
	stopHydra       func()
	sharedHydraOnce sync.Once
	clientSeq       int
	clientSeqMu     sync.Mutex
)

// hydraServer is Hydra proving its tokens to the module three ways:
// "openid" (id_token token, opaque access tokens), "jwt" (JWT access
// tokens checked with Hydra's keys) or "introspect" (opaque access tokens
// checked at Hydra's admin introspection endpoint).
func hydraServer(t *testing.T, mode string) authServer {
	sharedHydraOnce.Do(func() { sharedHydra, stopHydra, sharedHydraErr = startHydra(t) })
	if sharedHydraErr != nil {
		t.Fatal(sharedHydraErr)
	}
	h := sharedHydra
	name, strategy := "hydra", "opaque"
	if mode != "openid" {
		name = "hydra-" + mode
	}
	if mode == "jwt" || mode == "code" || mode == "code-logout" {
		strategy = mode
	}
	return authServer{
		name: name,
		setup: func(t *testing.T, origin string, lifetime time.Duration) (string, string) {
			clientSeqMu.Lock()
			clientSeq++
			id := fmt.Sprintf("e2e-client-%d", clientSeq)
			clientSeqMu.Unlock()
			h.registerClient(t, id, origin+"/oauth/callback", lifetime, strategy)
			trust := map[string]string{
				"openid": fmt.Sprintf("openid %s/", h.public),
				// Hydra's JWT access tokens say typ JWT, not at+jwt: typ any.
				"jwt":         fmt.Sprintf("authorize_url %s/oauth2/auth\n\t\tvalidate jwt {\n\t\t\tissuer %s/\n\t\t\ttyp any\n\t\t}", h.public, h.public),
				"introspect":  fmt.Sprintf("authorize_url %s/oauth2/auth\n\t\tvalidate introspect %s/admin/oauth2/introspect", h.public, h.admin),
				"code":        fmt.Sprintf("openid %s/\n\t\tresponse_type code", h.public),
				"code-logout": fmt.Sprintf("openid %s/\n\t\tresponse_type code\n\t\tend_session\n\t\tbackchannel_logout_path /oauth/backchannel", h.public),
			}[mode]
			scope := "openid profile reports"
			if strings.HasPrefix(mode, "code") { // Hydra gives a refresh token only for offline_access
				scope = "openid offline_access profile reports"
			}
			return fmt.Sprintf("%s\n\t\tclient_id %s\n\t\tscope %s", trust, id, scope), ""
		},
		check: h.introspect,
	}
}

// servers returns both authorization servers.
func servers(t *testing.T) []authServer {
	chromiumPath(t) // fail or skip before building anything
	return []authServer{devProvider(), hydraServer(t, "openid")}
}

// upstream records what it gets and renders it, after asking the
// authorization server whether the bearer token is valid.
type upstream struct {
	mu        sync.Mutex
	auths     []string
	forwarded []string // X-Forwarded-User, set by the site's header_up
	check     func(string) (bool, string)
}

var upstreamPage = template.Must(template.New("u").Parse(`<!doctype html><html><head><title>upstream</title></head><body>
<h1>Upstream</h1><p>path: <code id="path">{{.Path}}</code></p>
<p>token: <b id="token-status">{{if .Valid}}valid{{else}}invalid{{end}}</b> for <span id="user">{{.User}}</span></p>
<p id="hash"></p></body></html>`))

// wsUpgrader accepts WebSockets from the site's own origin.
var wsUpgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveWebSocket upgrades /ws only for a bearer the server accepts, then
// answers every message with "<user>: <message>".
func (u *upstream) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	valid, user := u.check(token)
	if token == "" || !valid {
		http.Error(w, "no valid bearer on the upgrade", http.StatusUnauthorized)
		return
	}
	conn, err := wsUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	for {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if err := conn.WriteMessage(kind, []byte(user+": "+string(msg))); err != nil {
			return
		}
	}
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ws" {
		u.serveWebSocket(w, r)
		return
	}
	auth := r.Header.Get("Authorization")
	u.mu.Lock()
	u.auths = append(u.auths, auth)
	u.forwarded = append(u.forwarded, strings.Join(r.Header.Values("X-Forwarded-User"), ","))
	u.mu.Unlock()
	token, _ := strings.CutPrefix(auth, "Bearer ")
	valid, user := false, ""
	if token != "" {
		valid, user = u.check(token)
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"valid": valid, "user": user})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.URL.Path == "/dashboard" {
		_, _ = io.WriteString(w, dashboardPage)
		return
	}
	_ = upstreamPage.Execute(w, map[string]any{"Path": r.URL.RequestURI(), "Valid": valid, "User": user})
}

// dashboardPage is a long-lived page that includes session.js and calls
// its API every second, recording each answer's status and the renewals.
const dashboardPage = `<!doctype html><html><head><title>dashboard</title>
<script src="/oauth/session.js"></script></head><body><h1>Dashboard</h1>
<script>
window.statuses = []; window.renewals = 0; window.loginRequired = 0;
window.addEventListener("implicit_grant:renewed", function () { window.renewals++; });
window.addEventListener("implicit_grant:login_required", function () { window.loginRequired++; });
setInterval(function () {
  fetch("/api/poll", { headers: { Accept: "application/json" } })
    .then(function (r) { window.statuses.push(r.status); })
    .catch(function () { window.statuses.push(0); });
}, 1000);
</script></body></html>`

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.auths)
}

// site is Caddy with implicit_grant in front of an upstream, logging in at
// one authorization server.
type site struct {
	origin   string
	upstream *upstream
	caddy    *testcaddy.Proc
}

func newSite(t *testing.T, srv authServer, tokenLifetime time.Duration, extra string) *site {
	t.Helper()
	return newSiteWith(t, srv, tokenLifetime, extra, "")
}

// newSiteWith is newSite with more site-level directives.
func newSiteWith(t *testing.T, srv authServer, tokenLifetime time.Duration, extra, siteExtra string) *site {
	t.Helper()
	return startSite(t, "http", srv, tokenLifetime, extra, siteExtra)
}

// newHTTPSSite serves the site over https, with a self-signed certificate
// for localhost made here (the browsers are told to accept it).
// extra: more implicit_grant subdirectives.
func newHTTPSSite(t *testing.T, srv authServer, extra, siteExtra string) *site {
	t.Helper()
	cert, key := selfSigned(t)
	return startSite(t, "https", srv, 0, extra, fmt.Sprintf("tls %s %s\n\t%s", cert, key, siteExtra))
}

// selfSigned writes a certificate and key for localhost, and returns their files.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func startSite(t *testing.T, scheme string, srv authServer, tokenLifetime time.Duration, extra, siteExtra string) *site {
	t.Helper()
	port := testcaddy.FreePort(t)
	s := &site{origin: fmt.Sprintf("%s://localhost:%d", scheme, port), upstream: &upstream{check: srv.check}}
	l := freeListener(t)
	hs := &http.Server{Handler: s.upstream}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	directives, sites := srv.setup(t, s.origin, tokenLifetime)
	caddyfile := fmt.Sprintf(`
%s {
	%s
	implicit_grant {
		%s
		redirect_uri %s/oauth/callback
		secret {env.IG_E2E_SECRET}
		%s
	}
	reverse_proxy %s {
		header_up X-Forwarded-User {http.auth.user.id}
	}
}
%s`, s.origin, siteExtra, directives, s.origin, extra, l.Addr().String(), sites)
	s.caddy = testcaddy.Start(t, "", caddyfile, "", "IG_E2E_SECRET="+e2eSecret)
	return s
}
