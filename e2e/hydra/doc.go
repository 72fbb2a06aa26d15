// Package hydra pins Ory Hydra v2.3.0, the third-party authorization server
// the end-to-end suite runs against. It is its own module so Hydra's large
// dependency tree stays out of the project's go.mod. Build it with:
//
//	go build -tags sqlite,sqlite_omit_load_extension -o hydra github.com/ory/hydra/v2
package hydra
