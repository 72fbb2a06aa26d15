package authserver

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Revocation calls the revocation endpoint (RFC 7009) for one client,
// authenticating as at the token endpoint: HTTP Basic, the secret in the
// body, or (a public client) client_id alone.
type Revocation struct {
	url                    string
	discovered             func(context.Context) (string, error)
	clientID, secret, auth string
	client                 client
}

// NewRevocation calls revocationURL, or, when it is "", the
// revocation_endpoint discovery gives (d must then be set).
func NewRevocation(revocationURL, clientID, clientSecret, auth string, d *Discovery, timeout time.Duration) *Revocation {
	r := &Revocation{url: revocationURL, clientID: clientID, secret: clientSecret, auth: auth, client: newClient(timeout)}
	if revocationURL == "" && d != nil {
		r.discovered = func(ctx context.Context) (string, error) {
			doc, err := d.Get(ctx)
			if err != nil {
				return "", err
			}
			return doc.RevocationEndpoint, nil
		}
	}
	return r
}

// ErrNoRevocation: neither revocation_url nor discovery names an endpoint.
var ErrNoRevocation = fmt.Errorf("%w: no revocation endpoint (revocation_url, or discovery's revocation_endpoint)", ErrUnavailable)

// Revoke asks the server to revoke token, of the kind hint says
// ("refresh_token", "access_token"). One attempt, within the timeout: 2xx
// is success (200 also for a token the server no longer knows, §2.2);
// anything else is an error safe to log.
func (r *Revocation) Revoke(ctx context.Context, token, hint string) error {
	endpoint := r.url
	if r.discovered != nil {
		var err error
		if endpoint, err = r.discovered(ctx); err != nil {
			return err
		}
	}
	if endpoint == "" {
		return ErrNoRevocation
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	if r.auth != TokenAuthBasic {
		form.Set("client_id", r.clientID)
		if r.auth == TokenAuthPost {
			form.Set("client_secret", r.secret)
		}
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("%w: revocation url: %w", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r.auth == TokenAuthBasic {
		// RFC 6749 §2.3.1: both form-encoded before Basic.
		req.SetBasicAuth(url.QueryEscape(r.clientID), url.QueryEscape(r.secret))
	}
	status, _, err := r.client.do(ctx, req)
	if err != nil {
		return err
	}
	if status/100 != 2 { // 200 says RFC 7009 §2.2; a 204 is no less a success
		return fmt.Errorf("%w: the revocation endpoint answered %d", ErrUnavailable, status)
	}
	return nil
}
