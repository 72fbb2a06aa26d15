package devprovider

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// userinfo says whether a bearer token is valid, and whose it is: JSON,
// or with UserinfoJWT a JWT signed as ID tokens are, with iss and aud
// (OpenID Connect Core §5.3.2).
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) error {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	g, ok := lookup(token)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		return writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
	}
	claims := g.userClaims()
	claims["sub"] = g.user
	if !p.UserinfoJWT {
		claims["client_id"], claims["scope"], claims["expires_in"] = g.clientID, g.scope, int(time.Until(g.expires).Seconds())
		return writeJSON(w, http.StatusOK, claims)
	}
	claims["iss"], claims["aud"] = g.issuer, g.clientID
	signed, err := sign(g.issuer, claims, "JWT")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/jwt")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write([]byte(signed))
	return err
}

// introspect answers RFC 7662 token introspection, for callers that
// authenticate as one of the introspectors (anyone, when there are none).
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request"})
	}
	if len(p.Introspectors) > 0 {
		id, secret, ok := r.BasicAuth()
		if want, known := p.Introspectors[id]; !ok || !known || want != secret {
			w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
			return writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		}
	}
	g, ok := lookup(r.PostFormValue("token"))
	if !ok {
		return writeJSON(w, http.StatusOK, map[string]any{"active": false})
	}
	answer := map[string]any{
		"active": true, "client_id": g.clientID, "sub": g.user, "username": g.user, "scope": g.scope,
		"iss": g.issuer, "iat": g.issuedAt.Unix(), "exp": g.expires.Unix(), "token_type": "Bearer",
		"email": g.email, "email_verified": g.emailVerified, "groups": g.groups,
	}
	if g.audience != "" {
		answer["aud"] = g.audience
	}
	return writeJSON(w, http.StatusOK, answer)
}

// discovery is the OpenID Provider metadata (OpenID Connect Discovery §3).
func discovery(w http.ResponseWriter, r *http.Request) error {
	iss := issuer(r)
	return writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                         iss,
		"authorization_endpoint":                         iss + "/authorize",
		"jwks_uri":                                       iss + "/jwks",
		"userinfo_endpoint":                              iss + "/userinfo",
		"introspection_endpoint":                         iss + "/introspect",
		"token_endpoint":                                 iss + "/token",
		"revocation_endpoint":                            iss + "/revoke",
		"end_session_endpoint":                           iss + "/logout",
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
		"response_types_supported":                       []string{"code", "token", "id_token token"},
		"response_modes_supported":                       []string{"query", "fragment", "form_post"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token", "implicit", "client_credentials"},
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          []string{"none", "client_secret_basic", "client_secret_post"},
		"authorization_response_iss_parameter_supported": true,
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          []string{"RS256"},
		"scopes_supported":                               []string{"openid", "email", "profile"},
	})
}

// calls counts requests per issuer and path, for tests of how often
// clients call the provider.
var calls sync.Map // issuer + path → *atomic.Int64

func counter(issuer, path string) *atomic.Int64 {
	n, _ := calls.LoadOrStore(issuer+path, new(atomic.Int64))
	return n.(*atomic.Int64)
}

// Calls returns how often the provider at issuer (its origin) was asked
// for path, e.g. "/jwks" or "/introspect".
func Calls(issuer, path string) int64 { return counter(issuer, path).Load() }

// revoke forgets a token (RFC 7009): userinfo and introspection deny it
// from then on. A token of the code flow (access or refresh) ends its
// whole login: the refresh tokens stop working too.
func revoke(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request"})
	}
	mu.Lock()
	revokeLocked(r.PostFormValue("token"))
	mu.Unlock()
	w.WriteHeader(http.StatusOK)
	return nil
}

func jwks(w http.ResponseWriter, r *http.Request) error {
	set, err := publicKeys(issuer(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, set)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
