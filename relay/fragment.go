package relay

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/implicitgrant/caddy-implicit-grant/internal/printable"
)

// MaxFragmentBytes bounds a relay POST body: room for large JWTs, small
// enough that nobody can make the server buffer much.
const MaxFragmentBytes = 64 << 10

// maxExpiresIn caps expires_in at a year: no real token lives longer, and
// it keeps the arithmetic far from overflow.
const maxExpiresIn = 365 * 24 * 3600

// TokenResponse is a successful authorization response (RFC 6749 §4.2.2).
type TokenResponse struct {
	AccessToken string
	IDToken     string // with OpenID Connect's "id_token token"
	TokenType   string // as the server sent it; checked to be "bearer" in any case
	ExpiresIn   int64  // seconds; 0 when the server sent none
	Scope       string // space-separated, decoded from "+" or "%20"
	State       string
	// The code flow: the authorization code the callback brought, and
	// then the refresh token the token endpoint gave for it, if any.
	Code         string
	RefreshToken string
}

// AuthError is an error response (RFC 6749 §4.2.2.1), from the fragment or,
// as some servers send it, the query.
type AuthError struct {
	Code        string
	Description string
	State       string
}

// InvalidResponseError says why a response was refused; it never contains a
// token or state value.
type InvalidResponseError struct{ Reason string }

func (e *InvalidResponseError) Error() string { return "invalid authorization response: " + e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidResponseError{Reason: fmt.Sprintf(format, args...)}
}

// ParseFragment reads what the relay script posted: the callback URL's
// fragment, form-encoded as the authorization server wrote it. It returns
// either a validated token response or the server's error.
func ParseFragment(fragment string) (*TokenResponse, *AuthError, error) {
	if len(fragment) > MaxFragmentBytes {
		return nil, nil, invalid("response too large")
	}
	vals, err := url.ParseQuery(strings.TrimPrefix(fragment, "#"))
	if err != nil {
		return nil, nil, invalid("not form-encoded")
	}
	// RFC 6749 §3.1: parameters must not be repeated. A repeat is either a
	// broken server or someone splicing values in; refuse both.
	for name, v := range vals {
		if len(v) > 1 {
			return nil, nil, invalid("parameter %.32q repeated", name)
		}
	}
	if ae, isErr := ParseAuthError(vals); isErr {
		return nil, ae, nil
	}

	tr := &TokenResponse{
		AccessToken: vals.Get("access_token"),
		IDToken:     vals.Get("id_token"),
		TokenType:   vals.Get("token_type"),
		Scope:       vals.Get("scope"),
		State:       vals.Get("state"),
	}
	if e := vals.Get("expires_in"); e != "" {
		n, err := strconv.ParseInt(e, 10, 64)
		if err != nil || n <= 0 || e[0] == '+' {
			return nil, nil, invalid("expires_in is not a positive integer")
		}
		tr.ExpiresIn = n // capped by CheckTokens
	}
	if err := tr.CheckTokens(); err != nil {
		return nil, nil, err
	}
	if tr.State == "" {
		return nil, nil, invalid("state missing")
	}
	return tr, nil, nil
}

// CheckTokens checks what a token response, from the fragment, a form
// post or the token endpoint, must be before anything uses it, and caps
// its expires_in (0, or less: the server did not say).
func (tr *TokenResponse) CheckTokens() error {
	tr.ExpiresIn = min(max(tr.ExpiresIn, 0), maxExpiresIn)
	if tr.AccessToken == "" {
		return invalid("access_token missing")
	}
	// The token goes upstream after "Bearer ", so it must be what RFC 6750
	// §2.1 allows there (b64token), not only RFC 6749's wider VSCHAR: a
	// space, comma or quote would let "x, Basic YWRt…" reach an upstream
	// that parses Authorization leniently.
	if !isB64Token(tr.AccessToken) {
		return invalid("access_token is not a bearer token (RFC 6750 b64token)")
	}
	if tr.IDToken != "" && !isB64Token(tr.IDToken) {
		return invalid("id_token contains characters a JWT may not contain")
	}
	if !printable.IsVSChars(tr.RefreshToken) {
		return invalid("refresh_token contains characters a token may not contain (RFC 6749 VSCHAR)")
	}
	if !strings.EqualFold(tr.TokenType, "bearer") {
		if tr.TokenType == "" {
			return invalid("token_type missing")
		}
		return invalid("token_type is not bearer")
	}
	if !printable.IsVSChars(tr.Scope) {
		return invalid("scope contains characters a scope may not contain")
	}
	return nil
}

// ParseAuthError returns the error response in vals, if there is one.
func ParseAuthError(vals url.Values) (*AuthError, bool) {
	if !vals.Has("error") {
		return nil, false
	}
	return &AuthError{
		Code:        printable.VSChars(vals.Get("error"), 64),
		Description: printable.VSChars(vals.Get("error_description"), 512),
		State:       vals.Get("state"),
	}, true
}

// isB64Token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
// (RFC 6750 §2.1).
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
