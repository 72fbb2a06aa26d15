package authserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Userinfo calls a userinfo-style endpoint with the token: an answer of
// 200 with a JSON object proves the token is live at the server. It does
// not prove the token was issued to this client; allow rules are then what
// keeps strangers out.
type Userinfo struct {
	URL    string
	client client
}

// NewUserinfo calls endpoint.
func NewUserinfo(endpoint string, timeout time.Duration) *Userinfo {
	return &Userinfo{URL: endpoint, client: newClient(timeout)}
}

// Verify implements Verifier.
func (u *Userinfo) Verify(ctx context.Context, r Response) (Identity, error) {
	req, err := http.NewRequest(http.MethodGet, u.URL, nil)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: userinfo url: %w", ErrUnavailable, err)
	}
	req.Header.Set("Authorization", "Bearer "+r.AccessToken)
	req.Header.Set("Accept", "application/json")
	status, body, err := u.client.do(ctx, req)
	if err != nil {
		return Identity{}, err
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return Identity{}, untrusted("the userinfo endpoint refused the token (%d)", status)
	case status != http.StatusOK:
		return Identity{}, fmt.Errorf("%w: the userinfo endpoint answered %d", ErrUnavailable, status)
	}
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil || claims == nil {
		return Identity{}, untrusted("the userinfo endpoint's answer is not a JSON object")
	}
	id := Identity{Claims: claims}
	// Spotify's /v1/me has "id" where OpenID's userinfo has "sub".
	for _, name := range []string{"sub", "id"} {
		switch v := claims[name].(type) {
		case string:
			id.Subject = v
		case float64:
			id.Subject = strconv.FormatFloat(v, 'f', -1, 64)
		}
		if id.Subject != "" {
			break
		}
	}
	if id.Subject == "" {
		return Identity{}, untrusted("the userinfo endpoint's answer has neither sub nor id")
	}
	return id, nil
}
