package authserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
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
	a, id, err := i.introspect(ctx, r.AccessToken)
	if err != nil {
		return Identity{}, err
	}
	if a.ClientID != "" && a.ClientID != i.ClientID {
		return Identity{}, untrusted("the token was issued to another client")
	}
	return id, nil
}

// VerifyBearer implements BearerVerifier: the token is active, and its
// aud or its client_id is one of audiences.
func (i *Introspect) VerifyBearer(ctx context.Context, token string, audiences []string) (Identity, error) {
	a, id, err := i.introspect(ctx, token)
	if err != nil {
		return Identity{}, err
	}
	if !slices.Contains(audiences, a.ClientID) && !slices.ContainsFunc(audiences, a.Aud.Contains) {
		return Identity{}, untrusted("its aud and client_id name none of this site's audiences")
	}
	if id.Subject == "" {
		id.Subject = a.ClientID // a client's own token (client credentials) names no user
	}
	return id, nil
}

// introspection is the part of an RFC 7662 answer the checks read.
type introspection struct {
	Active   *bool        `json:"active"`
	ClientID string       `json:"client_id"`
	Aud      jwt.Audience `json:"aud"`
	Exp      int64        `json:"exp"`
	Sub      string       `json:"sub"`
	Username string       `json:"username"`
}

// introspect asks about token: an active one's answer and identity.
func (i *Introspect) introspect(ctx context.Context, token string) (introspection, Identity, error) {
	var answer introspection
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequest(http.MethodPost, i.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return answer, Identity{}, fmt.Errorf("%w: introspection url: %w", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if i.AuthID != "" {
		req.SetBasicAuth(url.QueryEscape(i.AuthID), url.QueryEscape(i.AuthSecret))
	}
	status, body, err := i.client.do(ctx, req)
	if err != nil {
		return answer, Identity{}, err
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return answer, Identity{}, fmt.Errorf("%w: the introspection endpoint refused this module's credentials (%d): check client_id and client_secret", ErrUnavailable, status)
	case status != http.StatusOK:
		return answer, Identity{}, fmt.Errorf("%w: the introspection endpoint answered %d", ErrUnavailable, status)
	}
	var claims map[string]any
	if json.Unmarshal(body, &answer) != nil || json.Unmarshal(body, &claims) != nil || answer.Active == nil {
		return answer, Identity{}, fmt.Errorf("%w: the introspection endpoint's answer is not an RFC 7662 JSON object", ErrUnavailable)
	}
	if !*answer.Active {
		return answer, Identity{}, untrusted("the introspection endpoint says the token is not active")
	}
	id := Identity{Subject: answer.Sub, Claims: claims}
	if id.Subject == "" {
		id.Subject = answer.Username
	}
	if answer.Exp != 0 {
		id.Expires = time.Unix(answer.Exp, 0)
		if !id.Expires.After(i.now()) {
			return answer, Identity{}, untrusted("the token has expired")
		}
	}
	return answer, id, nil
}
