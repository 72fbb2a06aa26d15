package implicitgrant

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testcaddy"
)

// TestLogFloodIsBounded: thousands of refused relay posts carrying huge
// values a stranger chose write a bounded number of short lines.
func TestLogFloodIsBounded(t *testing.T) {
	s := newTestSite(t, siteOptions{})
	logs := &testcaddy.Buffer{}
	s.h.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.DebugLevel))

	bigOrigin := "https://" + strings.Repeat("o", 15<<10) + ".example"
	bigName := strings.Repeat("n", 30<<10) // twice still under the body limit
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := newBrowser(t)
			for i := 0; i < 500; i++ {
				b.RelayPost(s.origin+"/oauth/callback", "access_token=a&token_type=Bearer&state=s", bigOrigin)
				b.RelayPost(s.origin+"/oauth/callback", bigName+"=1&"+bigName+"=2", s.origin)
				b.Navigate(s.origin + "/oauth/callback?error=access_denied&state=" + strings.Repeat("s", 4000))
			}
		}()
	}
	wg.Wait()
	out := logs.String()
	if n := len(out); n > 64<<10 {
		t.Errorf("6000 refused requests wrote %d bytes of logs; want at most 64 KiB", n)
	}
	if strings.Contains(out, strings.Repeat("o", 100)) || strings.Contains(out, strings.Repeat("n", 100)) || strings.Contains(out, strings.Repeat("s", 100)) {
		t.Error("a log line carries a stranger's long value")
	}
	lines := strings.Count(out, "\n")
	// Three kinds of refusal, and the limit on failed relay posts per
	// address, which the flood soon reaches: four messages.
	if lines > 4*logBurst+10 {
		t.Errorf("%d log lines for four kinds of refusal; the limit is %d per kind per window", lines, logBurst)
	}
	if lines < 3 {
		t.Errorf("only %d log lines: the refusals were not logged at all", lines)
	}
	t.Logf("6000 refusals: %d lines, %d bytes", lines, len(out))
}

// TestLoggedValueIsCut: loggable keeps short values and cuts long ones.
func TestLoggedValueIsCut(t *testing.T) {
	if loggable("https://app.example") != "https://app.example" {
		t.Error("a short value was changed")
	}
	if got := loggable(strings.Repeat("x", 1000)); len(got) > maxLoggedValue+4 {
		t.Errorf("a long value kept %d bytes", len(got))
	}
	_ = http.StatusOK
}
