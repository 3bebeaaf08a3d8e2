package main

import (
	"github.com/qrapi/qrapi/internal/readmetest"

	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's copy-paste curl lines, run as written against a server started with the
// demo seed (only the address is changed, to a free loopback port).
func TestReadmeCurlLines(t *testing.T) {
	script := readmeScript(t, "README.md", "readme-curl", nil)
	out, err := exec.Command("bash", "-euo", "pipefail", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("README script: %v\n%s", err, out)
	}
	// It answers the same the second time: its first line resets the demo.
	if again, err := exec.Command("bash", "-euo", "pipefail", "-c", script).CombinedOutput(); err != nil || string(again) != string(out) {
		t.Errorf("README script, run again: %v\n%s\nthe first run:\n%s", err, again, out)
	}
	for _, want := range []string{
		`"plan_id":"plan-id-3"`,          // get_instance
		`{"instance_limit":60}`,          // get_instance_configuration
		"204\n204\n",                     // replace_instance_configuration, set and remove
		`"usage_consumed_seconds":12`,    // get_usage
		`"unallocated_usage_seconds":10`, // get_account
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("README script output lacks %s:\n%s", want, out)
		}
	}

	// A wrong key stops the script at the token, with IAM's message, instead of leaving
	// IAM's error in $TOKEN for the next call to answer a bare 401.
	const demoKey = "apikey=qrdemo-admin-key-0123456789abcdefghijklmnop"
	if !strings.Contains(script, demoKey) {
		t.Fatal("the README's token line does not use the demo admin key")
	}
	wrong := strings.Replace(script, demoKey, "apikey=qrdemo-mistyped-key", 1)
	out, err = exec.Command("bash", "-euo", "pipefail", "-c", wrong).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no token: ") || !strings.Contains(string(out), "Provided API key could not be found") ||
		strings.Contains(string(out), "plan_id") {
		t.Errorf("README script with a wrong key: %v, want it to stop at the token with IAM's message:\n%s", err, out)
	}
}

// make run's banner names the address the server listens on (ADDR), not always 8080, and
// the README says how to pick it.
func TestMakeRunBannerNamesItsAddress(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed to run the README's make lines: %v", err)
	}
	cmd := exec.Command("make", "-s", "-C", filepath.Join("..", ".."), "banner", "ADDR=127.0.0.1:9999")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make banner: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "http://127.0.0.1:9999/api") || strings.Contains(string(out), ":8080") {
		t.Fatalf("the banner for ADDR=127.0.0.1:9999 says: %s", out)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "make run ADDR=") {
		t.Fatal("the README does not say how to pick make run's address (ADDR)")
	}
}

// The README's fault-injection lines, run as written against a server started as make run
// starts it (the demo seed, the control API's demo token), on a free loopback port.
func TestReadmeFaultLines(t *testing.T) {
	script := readmeScript(t, "docs/control.md", "readme-faults", map[string]string{"QRSERVER_ADMIN_TOKEN": "demo-admin-token"})
	out, err := exec.Command("bash", "-euo", "pipefail", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("README script: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^HTTP/1.1 429 Too Many Requests`),
		regexp.MustCompile(`(?mi)^Retry-After: 2`),
		regexp.MustCompile(`"code":"injected_fault"`),
		regexp.MustCompile(`(?m)^200 after (1\.[5-9]|[2-9])`), // the delay held the call
		regexp.MustCompile(`(?m)^204$`),                       // the delete by id, and of all
		regexp.MustCompile(`\{"faults":\[\{"count":2,[^}]*"hits":1,[^}]*"operation":"get_usage",[^}]*"seen":1,"status":429\}`), // the listing's counts
		regexp.MustCompile(`"operation":"get_instance","probability":0.1,"reset":true,"seed":42`),
	} {
		if !want.MatchString(got) {
			t.Errorf("README fault lines' output lacks %s:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "204\n"); n != 2 {
		t.Errorf("%d deletes answered 204, want 2:\n%s", n, got)
	}
}

// readmeScript returns the block of doc (README.md, docs/…) after <!-- marker --> with its BASE pointed at a
// server started as make run starts it (the demo seed, and env), on a free loopback port,
// stopped when the test ends.
func readmeScript(t *testing.T, doc, marker string, env map[string]string) string {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed to run the README's lines: %v", err)
	}
	script, err := readmetest.ReadmeBlock(filepath.Join("..", "..", filepath.FromSlash(doc)), marker, "sh")
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"QRSERVER_ADDR": "127.0.0.1:0", "QRSERVER_DB": ":memory:", "QRSERVER_SEED": filepath.Join("..", "..", "seed", "demo.yaml"),
		"QRSERVER_ADMIN_TOKEN": "demo-admin-token"} // make run's
	maps.Copy(all, env)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return all[k] }, io.Discard, io.Discard, ready) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case addr := <-ready:
		return strings.ReplaceAll(script, "http://127.0.0.1:8080", "http://"+addr)
	case err := <-done:
		done <- nil // for the cleanup, which waits for it
		t.Fatalf("the server did not start: %v", err)
		return ""
	}
}

// The README's fixture example makes a fixture on the server and answers it, with a key.
func TestReadmeFixtureLine(t *testing.T) {
	script := readmeScript(t, "docs/control.md", "readme-fixture", nil)
	out, err := exec.Command("bash", "-euo", "pipefail", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("README script: %v\n%s", err, out)
	}
	var f fixtureAnswer
	if err := json.Unmarshal(out, &f); err != nil || !strings.HasPrefix(f.ID, "fx-") || len(f.Instances) != 1 || len(f.Principals) != 1 || len(f.Principals[0].APIKeys) != 1 {
		t.Fatalf("the README's fixture: %v %s", err, out)
	}
}

// docs/control.md's usage line records usage: 200, and the instance's usage then shows it.
func TestDocsUsageLine(t *testing.T) {
	script := readmeScript(t, "docs/control.md", "readme-usage", nil)
	base := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(script)
	crn := regexp.MustCompile(`crn:v1:[^"]+::`).FindString(script)
	out, err := exec.Command("bash", "-euo", "pipefail", "-c", script).CombinedOutput()
	if err != nil || string(out) != "200\n" {
		t.Fatalf("docs/control.md's usage line: %v %q", err, out)
	}
	if code, body := mustReq(t, "GET", base+"/api/v1/instances/usage", token(t, base), crn, ""); code != 200 || !strings.Contains(body, `"usage_consumed_seconds":42`) {
		t.Fatalf("usage after the line (12 + 30 s): %d %s", code, body)
	}
}

// The README's first command, `make run`, as written (with a free address and a throwaway
// database): it prints the demo's banner for its address and serves the demo.
func TestMakeRun(t *testing.T) {
	block, err := readmetest.ReadmeBlock(filepath.Join("..", "..", "README.md"), "readme-setup", "sh")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(block, "\n")
	command, _, _ := strings.Cut(line, "#")
	if strings.TrimSpace(command) != "make run" {
		t.Fatalf("the README's first command is %q", command)
	}
	addr := "127.0.0.1:" + freePort(t)
	cmd := exec.Command("make", "-s", "run", "ADDR="+addr, "DB="+filepath.Join(t.TempDir(), "qrserver.db"))
	cmd.Dir = filepath.Join("..", "..")
	out, err := os.Create(filepath.Join(t.TempDir(), "make-run.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // make, go run and the server
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); cmd.Wait() })
	base := "http://" + addr
	for i := 0; ; i++ {
		if r, err := http.Get(base + "/readyz"); err == nil {
			r.Body.Close()
			break
		}
		if i == 1200 { // 2 minutes: a cold build takes about 80 s
			log, _ := os.ReadFile(out.Name())
			t.Fatalf("make run does not serve at %s:\n%s", base, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(out.Name())
	if !strings.Contains(string(log), base+"/api") || !strings.Contains(string(log), base+"/console/") || !strings.Contains(string(log), "qrdemo-admin-key-") {
		t.Errorf("make run's banner lacks its URL or the demo's keys:\n%s", log)
	}
	if code, body := call(t, "GET", base+"/api/v1/instances/usage", token(t, base), ""); code != 200 {
		t.Errorf("the demo through make run: %d %s", code, body)
	}
}
