// Command caddy is Caddy with implicit_grant and the development provider
// built in: what `xcaddy build --with` produces, for running the demo and
// the tests from this repository.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/implicitgrant/caddy-implicit-grant"
	_ "github.com/implicitgrant/caddy-implicit-grant/devprovider"
)

func main() {
	caddycmd.Main()
}
