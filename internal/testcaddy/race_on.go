//go:build race

package testcaddy

// raceEnabled builds the Caddy under test with the race detector too.
const raceEnabled = true
