//go:build race

package integration

// raceEnabled builds the Caddy under test with the race detector too.
const raceEnabled = true
