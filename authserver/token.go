package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/implicitgrant/caddy-implicit-grant/internal/printable"
)

// The ways a client authenticates at the token endpoint (OpenID Connect
// Core §9; RFC 6749 §2.3.1).
const (
	TokenAuthNone  = "none"                // a public client: client_id in the body, no secret
	TokenAuthBasic = "client_secret_basic" // HTTP Basic, id and secret form-encoded
	TokenAuthPost  = "client_secret_post"  // id and secret in the body
)

// TokenEndpoint calls the token endpoint (RFC 6749 §3.2) for one client:
// the code exchange of a login, with its PKCE verifier (RFC 7636 §4.5),
// and refreshes (§6). golang.org/x/oauth2 speaks the protocol (the
// request, client authentication, parsing both answer formats, reading at
// most 1 MiB); this type adds the timeout, no redirects, and errors safe
// to log.
type TokenEndpoint struct {
	config *oauth2.Config
	client *http.Client
	// URL is discovered when Config.Endpoint.TokenURL is empty.
	discovered func(context.Context) (string, error)
}

// NewTokenEndpoint calls tokenURL, or, when it is "", the token_endpoint
// discovery gives (d must then be set).
func NewTokenEndpoint(tokenURL, clientID, clientSecret, auth, redirectURI string, d *Discovery, timeout time.Duration) *TokenEndpoint {
	style := oauth2.AuthStyleInParams // none and client_secret_post
	if auth == TokenAuthBasic {
		style = oauth2.AuthStyleInHeader
	}
	t := &TokenEndpoint{
		config: &oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURI,
			Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: style}},
		client: newClient(timeout).http,
	}
	if auth == TokenAuthNone {
		t.config.ClientSecret = ""
	}
	if tokenURL == "" && d != nil {
		t.discovered = d.TokenEndpoint
	}
	return t
}

// Tokens is a successful token response (RFC 6749 §5.1).
type Tokens struct {
	AccessToken  string
	TokenType    string
	RefreshToken string // "" when the server issued none (or, on a refresh, kept the old one)
	IDToken      string
	ExpiresIn    int64 // seconds; 0 when the server did not say
	Scope        string
}

// TokenError is the token endpoint's refusal (RFC 6749 §5.2): Code is its
// error code ("invalid_grant": a code used already, a verifier that does
// not match, a refresh token revoked). Its text is safe to log.
type TokenError struct {
	Status      int
	Code        string
	Description string
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("the token endpoint refused the request (%d %s)", e.Status, e.Code)
}

// maxErrorText bounds what a token endpoint's error may put in a log line.
const maxErrorText = 200

// Exchange trades a login's code and PKCE verifier for tokens.
func (t *TokenEndpoint) Exchange(ctx context.Context, code, verifier string) (Tokens, error) {
	cfg, ctx, err := t.prepare(ctx)
	if err != nil {
		return Tokens{}, err
	}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	return tokensOf(tok, err)
}

// Refresh trades a refresh token for new tokens. Tokens.RefreshToken is
// the token to keep: the new one when the server rotated it.
func (t *TokenEndpoint) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	cfg, ctx, err := t.prepare(ctx)
	if err != nil {
		return Tokens{}, err
	}
	tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	return tokensOf(tok, err)
}

// prepare gives the config with the endpoint's URL and a context that
// carries the bounded client.
func (t *TokenEndpoint) prepare(ctx context.Context) (*oauth2.Config, context.Context, error) {
	cfg := t.config
	if t.discovered != nil {
		endpoint, err := t.discovered(ctx)
		if err != nil {
			return nil, nil, err
		}
		c := *cfg
		c.Endpoint.TokenURL = endpoint
		cfg = &c
	}
	return cfg, context.WithValue(ctx, oauth2.HTTPClient, t.client), nil
}

// tokensOf reads x/oauth2's answer. Its own errors are never passed on:
// a RetrieveError's text holds the server's whole answer.
func tokensOf(tok *oauth2.Token, err error) (Tokens, error) {
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		// 400 and 401 carry the server's decision (§5.2); anything else,
		// and an answer without an error code, is the server failing.
		if (status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusOK) && re.ErrorCode != "" {
			return Tokens{}, &TokenError{Status: status, Code: bounded(re.ErrorCode), Description: bounded(re.ErrorDescription)}
		}
		return Tokens{}, fmt.Errorf("%w: the token endpoint answered %d", ErrUnavailable, status)
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return Tokens{}, fmt.Errorf("%w: the token endpoint did not answer in time", ErrUnavailable)
		}
		if _, isURL := errors.AsType[*url.Error](err); isURL {
			return Tokens{}, fmt.Errorf("%w: the token endpoint cannot be reached: %w", ErrUnavailable, err)
		}
		// Unparseable JSON, a truncated answer, no access_token.
		return Tokens{}, ErrMalformed
	}
	out := Tokens{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, ExpiresIn: tok.ExpiresIn}
	if out.ExpiresIn == 0 && !tok.Expiry.IsZero() { // a form-encoded answer gives only Expiry
		out.ExpiresIn = int64(time.Until(tok.Expiry).Round(time.Second) / time.Second)
	}
	if s, ok := tok.Extra("id_token").(string); ok {
		out.IDToken = s
	}
	if s, ok := tok.Extra("scope").(string); ok {
		out.Scope = s
	}
	return out, nil
}

// ErrMalformed is a token response that is not one (RFC 6749 §5.1): not
// JSON, cut off at the read limit, or without an access token.
var ErrMalformed = errors.New("the token endpoint's answer is not a token response")

func bounded(s string) string {
	s = printable.Strip(s)
	if len(s) > maxErrorText {
		s = s[:maxErrorText] + "…"
	}
	return s
}

// PKCEChallenge is the S256 code_challenge of verifier (RFC 7636 §4.2).
func PKCEChallenge(verifier string) string { return oauth2.S256ChallengeFromVerifier(verifier) }
