// The authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636): the
// callback's code, the issuer it names (RFC 9207), and the exchange at the
// token endpoint. Everything after the exchange (proving who the user is,
// the allow rules, the session) is the implicit grant's, in callback.go.

package implicitgrant

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
	"github.com/implicitgrant/caddy-implicit-grant/internal/printable"
	"github.com/implicitgrant/caddy-implicit-grant/relay"
)

// The response types.
const (
	ResponseTypeToken = "token" // the implicit grant ("id_token token" with openid)
	ResponseTypeCode  = "code"  // the authorization code grant with PKCE
)

func (h *Handler) codeFlow() bool { return h.ResponseType == ResponseTypeCode }

// pkceVerifier is a login's code_verifier (RFC 7636 §4.1): 256 bits
// derived from its state with a key of the secret that signed its state
// cookie. So it is fresh for every login, bound to the browser as the
// state is (only the browser holding the state's cookie gets the exchange
// made), and neither stored nor ever in a URL or a page: only its S256
// challenge leaves.
func (h *Handler) pkceVerifier(state string, key int) string {
	return base64.RawURLEncoding.EncodeToString(deriveKey(h.pkceKeys[key], state))
}

// pkceParams are the authorization request's PKCE parameters for state.
func (h *Handler) pkceParams(state string) string {
	return "&code_challenge=" + authserver.PKCEChallenge(h.pkceVerifier(state, 0)) + "&code_challenge_method=S256"
}

// finishCodeLogin takes the authorization response of the code flow, from
// the callback's query or (response_mode form_post) the server's post,
// once the address's limit has let it in (addressLimited).
func (h *Handler) finishCodeLogin(w http.ResponseWriter, r *http.Request, vals url.Values) error {
	for name, v := range vals {
		if len(v) > 1 { // RFC 6749 §3.1: a repeat is a broken server or a splice
			h.logRefusal(zap.WarnLevel, "refused an authorization response: a parameter is repeated", zap.String("parameter", loggable(name)))
			return h.loginFailed(w, r, failure{code: codeInvalidResponse})
		}
	}
	state := vals.Get("state")
	if reason := h.issuerRefusal(r, vals); reason != "" {
		// A mix-up (RFC 9207 §2.4): the answer is another server's. The
		// login is over: its state goes, and its code is never sent anywhere.
		h.logRefusal(zap.WarnLevel, "refused an authorization response", zap.String("reason", reason))
		p, _ := h.endWithError(w, r, state)
		return h.loginFailed(w, r, failure{code: codeInvalidResponse, retry: p.ReturnTo})
	}
	if ae, isErr := relay.ParseAuthError(vals); isErr {
		return h.serverError(w, r, ae)
	}
	code := vals.Get("code")
	if code == "" || len(code) > relay.MaxFragmentBytes/2 || !printable.IsVSChars(code) {
		h.logRefusal(zap.WarnLevel, "refused an authorization response: no usable code")
		p, _ := h.endWithError(w, r, state)
		return h.loginFailed(w, r, failure{code: codeInvalidResponse, retry: p.ReturnTo})
	}
	return h.finishLogin(w, r, &relay.TokenResponse{State: state, Code: code})
}

// issuerRefusal applies RFC 9207: an iss in the response must be the
// issuer's, and a server that says it always sends one must have.
// ("": nothing to refuse.) Without a known issuer (no openid, no validate
// jwt issuer), iss cannot be checked, and is not.
func (h *Handler) issuerRefusal(r *http.Request, vals url.Values) string {
	if h.issuer == "" {
		return ""
	}
	iss, given := vals.Get("iss"), vals.Has("iss")
	switch {
	case given && iss != h.issuer:
		return "iss is not this server's issuer (a mix-up, RFC 9207)"
	case !given && h.openid != nil:
		if doc, err := h.openid.Discovery.Get(r.Context()); err == nil && doc.IssParameterSupported {
			return "iss is missing, and the server's discovery says it sends it (RFC 9207)"
		}
	}
	return ""
}

// tokenResponse is the token endpoint's answer as a login's response,
// for the checks every token response passes (CheckTokens).
func tokenResponse(t authserver.Tokens, state string) *relay.TokenResponse {
	return &relay.TokenResponse{AccessToken: t.AccessToken, IDToken: t.IDToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken,
		ExpiresIn: t.ExpiresIn, Scope: t.Scope, State: state}
}

// exchangeCode trades the login's code for its tokens at the token
// endpoint; the failure, if any, says what the person is shown.
func (h *Handler) exchangeCode(r *http.Request, tr *relay.TokenResponse, pending relay.PendingLogin) (*relay.TokenResponse, *failure) {
	tokens, err := h.tokenEndpoint.Exchange(r.Context(), tr.Code, h.pkceVerifier(pending.State, pending.Key))
	if te, refused := errors.AsType[*authserver.TokenError](err); refused {
		h.logRefusal(zap.WarnLevel, "refused a login: the token endpoint did not take the code", zap.String("error", te.Code), zap.Int("status", te.Status))
		if te.Code == "invalid_grant" {
			return nil, &failure{code: codeInvalidGrant}
		}
		return nil, &failure{code: code(te.Code), description: te.Description, verified: true}
	}
	if errors.Is(err, authserver.ErrUnavailable) {
		h.logRefusal(zap.ErrorLevel, "cannot finish a login: the token endpoint is unavailable", zap.Error(err))
		return nil, &failure{code: codeServerUnavailable}
	}
	if err != nil {
		h.logRefusal(zap.WarnLevel, "refused a login", zap.Error(err))
		return nil, &failure{code: codeInvalidResponse}
	}
	out := tokenResponse(tokens, tr.State)
	if err := out.CheckTokens(); err != nil {
		h.logRefusal(zap.WarnLevel, "refused the token endpoint's answer", zap.Error(err))
		return nil, &failure{code: codeInvalidResponse}
	}
	return out, nil
}
