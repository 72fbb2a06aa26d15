// Package devprovider is a development authorization server and a demo
// dashboard, as Caddy modules, so the implicit_grant demo and tests need no
// account anywhere. NOT FOR PRODUCTION: users are whoever types a name,
// tokens live in memory, and nothing is rate-limited.
//
// The provider implements the implicit grant honestly (RFC 6749 §4.2):
// registered clients with an exact redirect_uri match, state echoed,
// approve and deny, show_dialog, configurable expires_in, random opaque
// tokens, and a userinfo endpoint that says whether a token is valid.
package devprovider
