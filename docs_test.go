package implicitgrant

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	_ "github.com/implicitgrant/caddy-implicit-grant/devprovider" // the demo's modules
)

var (
	caddyfileBlock = regexp.MustCompile("(?s)```caddyfile\n(.*?)```")
	envName        = regexp.MustCompile(`\{env\.([A-Za-z0-9_]+)\}`)
)

// TestDocsCaddyfilesAdapt: every Caddyfile block in the README and in
// docs/ adapts, so what a reader copies works. A block that starts with
// the directive itself is a handler block, tried inside a site.
func TestDocsCaddyfilesAdapt(t *testing.T) {
	docs, _ := filepath.Glob("docs/*.md")
	providers, _ := filepath.Glob("docs/providers/*.md")
	docs = append(append(docs, providers...), "README.md", "CONTRIBUTING.md")
	adapter := caddyconfig.GetAdapter("caddyfile")
	blocks := 0
	for _, doc := range docs {
		raw, err := os.ReadFile(doc)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range caddyfileBlock.FindAllSubmatch(raw, -1) {
			block := string(m[1])
			for _, name := range envName.FindAllStringSubmatch(block, -1) {
				if os.Getenv(name[1]) == "" {
					t.Setenv(name[1], "docs-test-value-of-more-than-thirty-two-bytes")
				}
			}
			switch first := strings.Fields(stripComments(block) + " {")[0]; {
			case first == "implicit_grant" || first == "reverse_proxy":
				block = "https://dash.example.com {\n" + block + "\n}\n"
			case first != "{" && !strings.HasPrefix(first, "(") && !strings.ContainsAny(first, ".:"): // subdirectives alone
				block = "https://dash.example.com {\nimplicit_grant {\n" + block + "\n}\n}\n"
			}
			blocks++
			cfgJSON, _, err := adapter.Adapt([]byte(block), nil)
			if err != nil {
				t.Errorf("%s, Caddyfile block %d does not adapt: %v\n%s", doc, i+1, err, m[1])
				continue
			}
			if strings.HasPrefix(doc, "docs/providers/") {
				// What caddy validate does: load and provision every module.
				var cfg caddy.Config
				if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
					t.Fatal(err)
				}
				if err := caddy.Validate(&cfg); err != nil {
					t.Errorf("%s, Caddyfile block %d does not pass caddy validate: %v", doc, i+1, err)
				}
			}
		}
	}
	if blocks == 0 {
		t.Fatal("found no Caddyfile blocks: the docs moved?")
	}
}

func stripComments(block string) string {
	var out []string
	for _, l := range strings.Split(block, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestExampleIsFormatted: Caddyfile.example is as caddy fmt writes it, so
// the demo starts without Caddy's "input is not formatted" warning.
func TestExampleIsFormatted(t *testing.T) {
	raw, err := os.ReadFile("Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	if formatted := caddyfile.Format(raw); !bytes.Equal(formatted, raw) {
		t.Errorf("Caddyfile.example is not caddy fmt clean; run: go run ./cmd/caddy fmt --overwrite Caddyfile.example")
	}
}
