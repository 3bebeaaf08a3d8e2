package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrapi/qrapi/internal/readmetest"
	"github.com/qrapi/qrapi/qrtest"
)

// The README's qrctl lines, run as written (in-process) against a reference server; only
// the address in the exports is changed, to the test server's.
func TestReadmeCommands(t *testing.T) {
	block, err := readmetest.ReadmeBlock(filepath.Join("..", "..", "docs", "qrctl.md"), "readme-qrctl", "sh")
	if err != nil {
		t.Fatal(err)
	}

	rs := qrtest.NewServer(t)
	env := map[string]string{"QRCTL_CONFIG": filepath.Join(t.TempDir(), "config.yaml")}
	ran := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		line = strings.ReplaceAll(line, "http://127.0.0.1:8080", rs.URL)
		if rest, ok := strings.CutPrefix(line, "export "); ok {
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = strings.Trim(v, "'")
			}
			continue
		}
		args := strings.Fields(strings.TrimPrefix(line, "qrctl "))
		code, out, errOut := qrctl(env, args...)
		if code != 0 || out == "" {
			t.Errorf("%s: exit %d\n%s%s", line, code, out, errOut)
		}
		ran[args[0]] = true
	}
	for _, cmd := range []string{"whoami", "instance", "usage", "account", "config", "version", "completion"} {
		if !ran[cmd] {
			t.Errorf("the README shows no qrctl %s", cmd)
		}
	}
	// The sample output shown is what `qrctl usage` prints for the demo.
	readme, err := os.ReadFile(filepath.Join("..", "..", "docs", "qrctl.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sample, _ := strings.Cut(string(readme), "`qrctl usage` prints, for the demo (in December 2026):\n\n```text\n")
	sample, _, _ = strings.Cut(sample, "```")
	// The demo's usage period is the current month: the server's clock says which.
	fresh := qrtest.NewServer(t, qrtest.WithClock(func() time.Time { return time.Date(2026, 12, 15, 12, 0, 0, 0, time.UTC) }))
	env = map[string]string{"QRCTL_CONFIG": filepath.Join(t.TempDir(), "c.yaml"), "QISKIT_IBM_URL": fresh.URL + "/api", "IBM_IAM_URL": fresh.URL, "QISKIT_IBM_TOKEN": qrtest.KeyAdmin, "QISKIT_IBM_INSTANCE": qrtest.InstanceA}
	if _, out, _ := qrctl(env, "usage"); out != sample {
		t.Errorf("README sample differs:\n--- qrctl usage\n%s--- README\n%s", out, sample)
	}
}
