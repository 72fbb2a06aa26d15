package authserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Document is the part of an OpenID Provider's metadata (OpenID Connect
// Discovery 1.0 §3) the module uses.
type Document struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	UserinfoEndpoint      string   `json:"userinfo_endpoint"`
	IntrospectionEndpoint string   `json:"introspection_endpoint"`
	IDTokenSigningAlgs    []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpoint         string   `json:"token_endpoint"`
	RevocationEndpoint    string   `json:"revocation_endpoint"`  // RFC 7009
	EndSessionEndpoint    string   `json:"end_session_endpoint"` // OpenID Connect RP-Initiated Logout 1.0
	// RFC 9207: the server puts iss in every authorization response, so
	// one without it is refused.
	IssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
}

// How long discovery is trusted, and how soon a failed one is tried again.
const (
	discoveryMaxAge = time.Hour
	discoveryRetry  = 5 * time.Second
)

// Discovery fetches and caches an issuer's metadata. Nothing is fetched
// until it is first needed, so Caddy starts while the server is down.
type Discovery struct {
	Issuer string
	client client
	now    func() time.Time

	mu      sync.Mutex
	doc     *Document
	fetched time.Time
	err     error
}

// NewDiscovery returns the metadata source for issuer.
func NewDiscovery(issuer string, timeout time.Duration) *Discovery {
	return &Discovery{Issuer: issuer, client: newClient(timeout), now: time.Now}
}

// Get returns the issuer's metadata, fetching it when it is older than an
// hour (and then keeping the old document if the fetch fails).
func (d *Discovery) Get(ctx context.Context) (*Document, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	age := d.now().Sub(d.fetched)
	if d.doc != nil && age < discoveryMaxAge || d.err != nil && age < discoveryRetry {
		if d.doc != nil {
			return d.doc, nil
		}
		return nil, d.err
	}
	doc, err := d.download(ctx)
	d.fetched = d.now()
	if err != nil {
		d.err = err
		if d.doc != nil {
			return d.doc, nil
		}
		return nil, err
	}
	d.doc, d.err = doc, nil
	return doc, nil
}

func (d *Discovery) download(ctx context.Context) (*Document, error) {
	url := strings.TrimSuffix(d.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery: %w", ErrUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	status, body, err := d.client.do(ctx, req)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered %d", ErrUnavailable, url, status)
	}
	var doc Document
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s is not a JSON document: %w", ErrUnavailable, url, err)
	}
	// OpenID Connect Discovery §4.3: the document must name the issuer it
	// was fetched for, or it may be another server's.
	if doc.Issuer != d.Issuer {
		return nil, fmt.Errorf("%w: %s names issuer %q, not %q", ErrUnavailable, url, doc.Issuer, d.Issuer)
	}
	for name, u := range map[string]string{"authorization_endpoint": doc.AuthorizationEndpoint, "jwks_uri": doc.JWKSURI} {
		if !SecureURL(u) {
			return nil, fmt.Errorf("%w: %s: %s %q is not an https URL", ErrUnavailable, url, name, u)
		}
	}
	// Tokens are sent to these: never over plain http.
	for name, u := range map[string]string{"token_endpoint": doc.TokenEndpoint, "userinfo_endpoint": doc.UserinfoEndpoint,
		"revocation_endpoint": doc.RevocationEndpoint, "end_session_endpoint": doc.EndSessionEndpoint} {
		if u != "" && !SecureURL(u) {
			return nil, fmt.Errorf("%w: %s: %s %q is not an https URL", ErrUnavailable, url, name, u)
		}
	}
	return &doc, nil
}

// JWKSURL is the discovered jwks_uri, for a KeySet.
func (d *Discovery) JWKSURL(ctx context.Context) (string, error) {
	doc, err := d.Get(ctx)
	if err != nil {
		return "", err
	}
	return doc.JWKSURI, nil
}

// TokenEndpoint is the discovered token_endpoint, for a TokenEndpoint.
func (d *Discovery) TokenEndpoint(ctx context.Context) (string, error) {
	doc, err := d.Get(ctx)
	if err != nil {
		return "", err
	}
	if doc.TokenEndpoint == "" {
		return "", fmt.Errorf("%w: the discovery document has no token_endpoint (set token_url)", ErrUnavailable)
	}
	return doc.TokenEndpoint, nil
}
