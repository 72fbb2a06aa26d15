package authserver

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// OwnParams are the authorization request parameters the module sets
// itself: neither the endpoint's query nor the config may set them.
var OwnParams = []string{"response_type", "response_mode", "client_id", "redirect_uri", "state", "nonce", "code_challenge", "code_challenge_method"}

// CheckAuthorizeURL checks an authorization endpoint, configured or
// discovered: absolute, https (http on loopback), no fragment, and none of
// OwnParams in its query.
func CheckAuthorizeURL(endpoint string) error {
	au, err := url.Parse(endpoint)
	if err != nil || au.Host == "" || au.Fragment != "" {
		return fmt.Errorf("%q is not an absolute URL without a fragment", endpoint)
	}
	if au.Scheme != "https" && !(au.Scheme == "http" && IsLoopback(au.Hostname())) {
		return fmt.Errorf("%q must use https (http is allowed only for loopback hosts)", endpoint)
	}
	for name := range au.Query() {
		if slices.Contains(OwnParams, name) {
			return fmt.Errorf("its query sets %q, which implicit_grant sets itself", name)
		}
	}
	return nil
}

// AuthorizationRequest is what every login of one client asks the
// authorization endpoint for (RFC 6749 §4.2.1); each login adds its state
// (and nonce).
type AuthorizationRequest struct {
	ResponseType string // "token", "id_token token", "code"
	ResponseMode string // "" (the response type's default) or "form_post"
	ClientID     string
	RedirectURI  string
	Scopes       []string
	ShowDialog   bool              // Spotify's show_dialog=true
	Params       map[string]string // the operator's extra parameters
}

// Prefix renders the request to endpoint once, up to the state's value:
// each login appends only its state (and, with OpenID, "&nonce=…").
func (a AuthorizationRequest) Prefix(endpoint string) string {
	authorize, _ := url.Parse(endpoint)
	q := authorize.Query()
	q.Set("response_type", a.ResponseType)
	q.Set("client_id", a.ClientID)
	q.Set("redirect_uri", a.RedirectURI)
	if len(a.Scopes) > 0 {
		q.Set("scope", strings.Join(a.Scopes, " "))
	}
	if a.ShowDialog {
		q.Set("show_dialog", "true")
	}
	if a.ResponseMode != "" {
		q.Set("response_mode", a.ResponseMode)
	}
	for k, v := range a.Params {
		q.Set(k, v)
	}
	authorize.RawQuery = ""
	// Encode sorts by key; spaces become %20, which every server reads,
	// rather than "+", which some do not.
	return authorize.String() + "?" + strings.ReplaceAll(q.Encode(), "+", "%20") + "&state="
}
