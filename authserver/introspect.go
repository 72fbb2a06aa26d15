package authserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Introspect asks the server's introspection endpoint (RFC 7662) about the
// token: it must be active, and when the answer names a client_id it must
// be this one. Its exp caps the session.
type Introspect struct {
	URL        string
	ClientID   string // this client, as the answer's client_id must name it
	AuthID     string // the caller's credentials at the endpoint, if it wants any
	AuthSecret string
	client     client
	now        func() time.Time
}

// NewIntrospect asks endpoint, authenticating with authID and authSecret
// (HTTP Basic, RFC 6749 §2.3.1) when authID is set.
func NewIntrospect(endpoint, clientID, authID, authSecret string, timeout time.Duration) *Introspect {
	return &Introspect{URL: endpoint, ClientID: clientID, AuthID: authID, AuthSecret: authSecret, client: newClient(timeout), now: time.Now}
}

// Verify implements Verifier.
func (i *Introspect) Verify(ctx context.Context, r Response) (Identity, error) {
	form := url.Values{"token": {r.AccessToken}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequest(http.MethodPost, i.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: introspection url: %w", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if i.AuthID != "" {
		req.SetBasicAuth(url.QueryEscape(i.AuthID), url.QueryEscape(i.AuthSecret))
	}
	status, body, err := i.client.do(ctx, req)
	if err != nil {
		return Identity{}, err
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return Identity{}, fmt.Errorf("%w: the introspection endpoint refused this module's credentials (%d): check client_id and client_secret", ErrUnavailable, status)
	case status != http.StatusOK:
		return Identity{}, fmt.Errorf("%w: the introspection endpoint answered %d", ErrUnavailable, status)
	}
	var answer struct {
		Active   *bool  `json:"active"`
		ClientID string `json:"client_id"`
		Exp      int64  `json:"exp"`
		Sub      string `json:"sub"`
		Username string `json:"username"`
	}
	var claims map[string]any
	if json.Unmarshal(body, &answer) != nil || json.Unmarshal(body, &claims) != nil || answer.Active == nil {
		return Identity{}, fmt.Errorf("%w: the introspection endpoint's answer is not an RFC 7662 JSON object", ErrUnavailable)
	}
	if !*answer.Active {
		return Identity{}, untrusted("the introspection endpoint says the token is not active")
	}
	if answer.ClientID != "" && answer.ClientID != i.ClientID {
		return Identity{}, untrusted("the token was issued to another client")
	}
	id := Identity{Subject: answer.Sub, Claims: claims}
	if id.Subject == "" {
		id.Subject = answer.Username
	}
	if answer.Exp != 0 {
		id.Expires = time.Unix(answer.Exp, 0)
		if !id.Expires.After(i.now()) {
			return Identity{}, untrusted("the token has expired")
		}
	}
	return id, nil
}
