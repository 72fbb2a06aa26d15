// Package authserver is the client side of the authorization server: all
// the module says to it and checks of it. Discovery (discovery.go), the
// signing keys (keyset.go), the authorization request (authorize.go), and
// the proof that an access token was issued by the server (to this client,
// where the method can tell) and for whom: an OpenID Connect ID token
// bound to the access token (openid.go), a JWT access token, RFC 9068
// (jwt.go), token introspection, RFC 7662 (introspect.go), or a userinfo
// endpoint (userinfo.go). The token endpoint (token.go) exchanges codes and
// refreshes tokens; revoke.go revokes them (RFC 7009); logout.go verifies
// back-channel logout tokens; bearer.go checks the tokens scripts present
// for themselves (RFC 9068, or introspection).
//
// It talks to the authorization server only with timeouts and bounded
// reads. It never logs, and its errors never contain a token.
package authserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/printable"
)

// Response is what the authorization server sent the browser, or the
// token endpoint sent this module.
type Response struct {
	AccessToken string
	IDToken     string   // with OpenID Connect
	Nonces      []string // with OpenID Connect: the nonces this login may carry (any one matches)
	// FromTokenEndpoint: the tokens came from the token endpoint, for this
	// client's code and verifier (the code flow), not through the browser.
	FromTokenEndpoint bool
}

// Identity is who a verified token was issued for.
type Identity struct {
	// Subject is the user's stable identifier at the server ("sub", or
	// "id" where a userinfo endpoint has no "sub").
	Subject string
	// Claims are the server's statements about the user and the token, as
	// JSON decoded them (strings, numbers, lists, objects).
	Claims map[string]any
	// Expires is when the server says the token ends; zero if it did not.
	Expires time.Time
}

// Verifier checks one authorization response.
type Verifier interface {
	Verify(ctx context.Context, r Response) (Identity, error)
}

// Untrusted is returned for a token the server did not issue, issued to
// another client, expired, or otherwise not to be trusted. Reason says
// why, in words safe to log: never the token.
type Untrusted struct{ Reason string }

func (e *Untrusted) Error() string { return "token not trusted: " + e.Reason }

// maxReason bounds a reason: it may quote what a stranger's token says,
// and it is logged.
const maxReason = 200

func untrusted(format string, args ...any) error {
	reason := printable.Strip(fmt.Sprintf(format, args...))
	if len(reason) > maxReason {
		reason = reason[:maxReason] + "…"
	}
	return &Untrusted{Reason: reason}
}

// ErrUnavailable wraps failures to reach the authorization server (or a
// malformed answer from it): the token may be fine, but it cannot be
// checked now.
var ErrUnavailable = errors.New("authorization server unavailable")

// DefaultTimeout bounds every call to the authorization server.
const DefaultTimeout = 5 * time.Second

// Leeway is the clock skew allowed between this host and the server.
const Leeway = time.Minute

// maxDocument bounds what is read of a discovery document, a JWKS, an
// introspection or a userinfo answer.
const maxDocument = 1 << 20

// client calls the authorization server.
type client struct {
	http    *http.Client
	timeout time.Duration
}

func newClient(timeout time.Duration) client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return client{http: &http.Client{
		Timeout: timeout,
		// A redirect from the server is not followed: its answer must come
		// from the URL that was configured or discovered.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, timeout: timeout}
}

// do sends req and reads at most maxDocument bytes of the answer.
func (c client) do(ctx context.Context, req *http.Request) (int, []byte, error) {
	status, _, body, err := c.doWithHeader(ctx, req)
	return status, body, err
}

// doWithHeader is do, with the answer's header.
func (c client) doWithHeader(ctx context.Context, req *http.Request) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.http.Do(req.WithContext(ctx))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: reading %s: %w", ErrUnavailable, req.URL.Redacted(), err)
	}
	if len(body) > maxDocument {
		return 0, nil, nil, fmt.Errorf("%w: %s answered more than %d bytes", ErrUnavailable, req.URL.Redacted(), maxDocument)
	}
	return resp.StatusCode, resp.Header, body, nil
}
