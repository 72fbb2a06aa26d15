// Package devprovider is a development authorization server and a demo
// dashboard, as Caddy modules, so the implicit_grant demo and tests need no
// account anywhere. NOT FOR PRODUCTION: users are whoever types a name,
// keys and tokens live in memory, and nothing is rate-limited.
//
// The provider implements the implicit grant honestly (RFC 6749 §4.2):
// registered clients with an exact redirect_uri match, state echoed,
// approve and deny, show_dialog, configurable expires_in. With OpenID
// Connect's "id_token token" it issues a signed ID token with the nonce
// and at_hash; access tokens are opaque or JWTs (RFC 9068). It publishes
// discovery (/.well-known/openid-configuration), its keys (/jwks, rotated
// by POST /keys/rotate), userinfo (/userinfo) and RFC 7662 introspection
// (/introspect, with client authentication), RFC 7009 revocation
// (/revoke), and logging out (/logout: OpenID Connect RP-Initiated Logout's
// end_session_endpoint, and "Sign out everywhere" on its home page), which
// POSTs back-channel logout tokens to the clients registered for them.
package devprovider
