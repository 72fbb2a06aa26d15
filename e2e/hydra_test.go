package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
)

// hydra is a running Ory Hydra v2.3.0 with our login/consent app.
type hydra struct {
	public, admin string // http://127.0.0.1:port
	cmd           *exec.Cmd
	app           *httptest.Server
	output        bytes.Buffer
	// freshLogins counts logins Hydra did not skip (no remembered login
	// session): a login it asked for again.
	freshLogins atomic.Int32
}

var (
	hydraOnce sync.Once
	hydraBin  string
	hydraErr  error
)

// buildHydra builds Hydra from the pinned tools module in ./hydra (the Go
// build cache makes every build after the first a link step).
func buildHydra() (string, error) {
	hydraOnce.Do(func() {
		dir, err := os.MkdirTemp("", "implicit-grant-hydra")
		if err != nil {
			hydraErr = err
			return
		}
		hydraBin = filepath.Join(dir, "hydra")
		cmd := exec.Command("go", "build", "-tags", "sqlite,sqlite_omit_load_extension", "-o", hydraBin, "github.com/ory/hydra/v2")
		cmd.Dir = "hydra"
		out, err := cmd.CombinedOutput()
		if err != nil {
			hydraErr = fmt.Errorf("building hydra: %v\n%s", err, out)
		}
	})
	return hydraBin, hydraErr
}

// startHydra runs Hydra until stop is called (the suite shares one).
func startHydra(t testing.TB) (h *hydra, stop func(), err error) {
	bin, err := buildHydra()
	if err != nil {
		return nil, nil, err // Hydra builds from the module proxy: never skipped
	}
	h = &hydra{}
	h.app = httptest.NewServer(http.HandlerFunc(h.loginConsent))
	pub, adm := testcaddy.FreePort(t), testcaddy.FreePort(t)
	h.public, h.admin = fmt.Sprintf("http://127.0.0.1:%d", pub), fmt.Sprintf("http://127.0.0.1:%d", adm)
	h.cmd = exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	h.cmd.Env = append(os.Environ(),
		"DSN=memory",
		"URLS_SELF_ISSUER="+h.public+"/",
		"URLS_LOGIN="+h.app.URL+"/login",
		"URLS_CONSENT="+h.app.URL+"/consent",
		"URLS_LOGOUT="+h.app.URL+"/logout",
		"SECRETS_SYSTEM=an-e2e-system-secret-that-is-long-enough",
		"SERVE_PUBLIC_HOST=127.0.0.1", fmt.Sprintf("SERVE_PUBLIC_PORT=%d", pub),
		"SERVE_ADMIN_HOST=127.0.0.1", fmt.Sprintf("SERVE_ADMIN_PORT=%d", adm),
		"LOG_LEVEL=warn",
	)
	h.cmd.Stdout, h.cmd.Stderr = &h.output, &h.output
	if err := h.cmd.Start(); err != nil {
		h.app.Close()
		return nil, nil, err
	}
	stop = func() { _ = h.cmd.Process.Kill(); _ = h.cmd.Wait(); h.app.Close() }
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(h.public + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return h, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("hydra did not become ready:\n%s", h.output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// adminJSON calls Hydra's admin API.
func (h *hydra) adminJSON(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.admin+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// registerClient makes a public implicit-grant client; a non-zero
// lifetime shortens its access tokens; strategy is "opaque" or "jwt".
// With strategy "code": a public code-flow client (PKCE, refresh tokens
// with offline_access), opaque tokens; "code-logout": that client,
// registered for RP-initiated logout (post_logout_redirect_uris: the
// site's logout path) and back-channel logout (/oauth/backchannel).
func (h *hydra) registerClient(t testing.TB, id, redirectURI string, lifetime time.Duration, strategy string) {
	t.Helper()
	client := map[string]any{
		"access_token_strategy":      strategy,
		"client_id":                  id,
		"grant_types":                []string{"implicit"},
		"response_types":             []string{"token", "id_token token"},
		"redirect_uris":              []string{redirectURI},
		"scope":                      "openid profile reports",
		"token_endpoint_auth_method": "none",
	}
	if strategy == "code" || strategy == "code-logout" {
		client["access_token_strategy"] = "opaque"
		client["grant_types"] = []string{"authorization_code", "refresh_token"}
		client["response_types"] = []string{"code"}
		client["scope"] = "openid offline_access profile reports"
	}
	if strategy == "code-logout" {
		site := strings.TrimSuffix(redirectURI, "/oauth/callback")
		client["post_logout_redirect_uris"] = []string{site + "/oauth/logout"}
		client["backchannel_logout_uri"] = site + "/oauth/backchannel"
	}
	if err := h.adminJSON(http.MethodPost, "/admin/clients", client, nil); err != nil {
		t.Fatal(err)
	}
	if lifetime > 0 {
		if err := h.adminJSON(http.MethodPut, "/admin/clients/"+id+"/lifespans", map[string]any{
			"implicit_grant_access_token_lifespan":           lifetime.String(),
			"authorization_code_grant_access_token_lifespan": lifetime.String(),
			"refresh_token_grant_access_token_lifespan":      lifetime.String(),
		}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// introspect asks Hydra whether a token is active, and whose it is.
func (h *hydra) introspect(token string) (bool, string) {
	resp, err := http.PostForm(h.admin+"/admin/oauth2/introspect", url.Values{"token": {token}})
	if err != nil {
		return false, ""
	}
	defer resp.Body.Close()
	var r struct {
		Active bool   `json:"active"`
		Sub    string `json:"sub"`
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil {
		return false, ""
	}
	return r.Active, r.Sub
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html><html><head><title>Hydra consent</title></head>
<body><h1>Hydra test consent</h1><p>{{.Client}} asks for: {{.Scopes}}</p>
<form method="post" action="/consent"><input type="hidden" name="challenge" value="{{.Challenge}}">
<button id="approve" name="decision" value="approve">Approve</button><button id="deny" name="decision" value="deny">Deny</button></form></body></html>`))

// loginConsent is the login and consent UI Hydra leaves to its users: the
// login is accepted as "alice" at once; consent asks, unless remembered.
func (h *hydra) loginConsent(w http.ResponseWriter, r *http.Request) {
	var redirect struct {
		To string `json:"redirect_to"`
	}
	var err error
	switch {
	case r.URL.Path == "/login":
		ch := url.QueryEscape(r.URL.Query().Get("login_challenge"))
		var req struct {
			Skip bool `json:"skip"`
		}
		if err = h.adminJSON(http.MethodGet, "/admin/oauth2/auth/requests/login?login_challenge="+ch, nil, &req); err != nil {
			break
		}
		if !req.Skip {
			h.freshLogins.Add(1)
		}
		err = h.adminJSON(http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+ch,
			map[string]any{"subject": "alice", "remember": true, "remember_for": 3600}, &redirect)
	case r.URL.Path == "/logout": // the user confirms at once
		ch := url.QueryEscape(r.URL.Query().Get("logout_challenge"))
		err = h.adminJSON(http.MethodPut, "/admin/oauth2/auth/requests/logout/accept?logout_challenge="+ch, nil, &redirect)
	case r.URL.Path == "/consent" && r.Method == http.MethodGet:
		ch := r.URL.Query().Get("consent_challenge")
		var req struct {
			Skip      bool     `json:"skip"`
			Scopes    []string `json:"requested_scope"`
			Audiences []string `json:"requested_access_token_audience"`
			Client    struct {
				ID string `json:"client_id"`
			} `json:"client"`
		}
		if err = h.adminJSON(http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+url.QueryEscape(ch), nil, &req); err != nil {
			break
		}
		if !req.Skip {
			_ = consentPage.Execute(w, map[string]string{"Client": req.Client.ID, "Scopes": strings.Join(req.Scopes, " "), "Challenge": ch})
			return
		}
		err = h.acceptConsent(ch, &redirect)
	case r.URL.Path == "/consent" && r.Method == http.MethodPost:
		ch := r.PostFormValue("challenge")
		if r.PostFormValue("decision") == "approve" {
			err = h.acceptConsent(ch, &redirect)
		} else {
			err = h.adminJSON(http.MethodPut, "/admin/oauth2/auth/requests/consent/reject?consent_challenge="+url.QueryEscape(ch),
				map[string]any{"error": "access_denied", "error_description": "The resource owner denied the request"}, &redirect)
		}
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, redirect.To, http.StatusFound)
}

func (h *hydra) acceptConsent(challenge string, redirect any) error {
	var req struct {
		Scopes    []string `json:"requested_scope"`
		Audiences []string `json:"requested_access_token_audience"`
	}
	if err := h.adminJSON(http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+url.QueryEscape(challenge), nil, &req); err != nil {
		return err
	}
	return h.adminJSON(http.MethodPut, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(challenge),
		map[string]any{"grant_scope": req.Scopes, "grant_access_token_audience": req.Audiences, "remember": true, "remember_for": 3600}, redirect)
}

func freeListener(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}
