// Events: what the module tells Caddy's events app (caddyevents), for
// handlers an operator subscribes: a login, a failed login, a refused
// user, a logout. Never a token, a session id or a state.

package implicitgrant

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
)

// The events, as subscriptions name them.
const (
	eventLogin       = "implicit_grant.login"        // user, store, trust
	eventLoginFailed = "implicit_grant.login_failed" // outcome
	eventLogout      = "implicit_grant.logout"       // user (when the session was found)
	eventForbidden   = "implicit_grant.forbidden"    // user, rule
	eventBearer      = "implicit_grant.bearer"       // outcome; user when accepted
)

// events is where the module emits: nil when no events app is configured
// (then nobody listens, and emitting costs nothing).
type events struct {
	app *caddyevents.App
	ctx caddy.Context
}

func newEvents(ctx caddy.Context) events {
	app, err := ctx.AppIfConfigured("events")
	if err != nil {
		return events{}
	}
	return events{app: app.(*caddyevents.App), ctx: ctx}
}

func (e events) emit(name string, data map[string]any) {
	if e.app != nil {
		e.app.Emit(e.ctx, name, data)
	}
}
