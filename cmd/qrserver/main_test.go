package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrapi/qrapi/internal/enginetest"
)

// The test binary doubles as qrserver, so the durability test can kill -9 a real process.
func TestMain(m *testing.M) {
	if os.Getenv("QRSERVER_TEST_CHILD") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	demoKey = "qrdemo-admin-key-0123456789abcdefghijklmnop"
	demoCRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::"
)

var servingLine = regexp.MustCompile(`api=(http://127\.0\.0\.1:\d+)/api`)

// child is a qrserver process started by a test.
type child struct {
	cmd  *exec.Cmd
	base string       // http://127.0.0.1:port
	logs *syncBuilder // its stderr
}

// syncBuilder is a strings.Builder safe for a reader and a writer goroutine.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) WriteLine(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(line + "\n")
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startChild starts qrserver as a child process on a free loopback port and returns its
// base URL once it answers.
func startChild(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	c := startQrserver(t, args...)
	return c.cmd, c.base
}

// startQrserver starts qrserver as a child process on a free loopback port, stopped when
// the test ends, and returns once it serves.
func startQrserver(t *testing.T, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "QRSERVER_TEST_CHILD=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := &child{cmd: cmd, logs: &syncBuilder{}}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		defer io.Copy(io.Discard, stderr) // a line past 1 MiB stops the scanner, not the child
		for sc.Scan() {
			c.logs.WriteLine(sc.Text())
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case c.base = <-found:
		return c
	case <-time.After(30 * time.Second):
		t.Fatalf("qrserver did not start within 30s: %s", c.logs.String())
	}
	return nil
}

func token(t *testing.T, base string) string {
	t.Helper()
	return tokenFor(t, base, demoKey)
}

func call(t *testing.T, method, url, tok, body string) (int, string) {
	t.Helper()
	return mustReq(t, method, url, tok, demoCRN, body)
}

// A PUT that answered 204 survives kill -9 and a restart on the same database, and so do
// the tokens issued before (the signing key is kept). On the run's engine (make test runs
// it on SQLite and on PostgreSQL).
func TestPutSurvivesKill9(t *testing.T) {
	db := enginetest.DB(t)
	seedFile := filepath.Join("..", "..", "seed", "demo.yaml")
	cmd, base := startChild(t, "--db", db, "--seed", seedFile)
	tok := token(t, base)
	if st, b := call(t, "PUT", base+"/api/v1/instances/configuration", tok, `{"instance_limit": 4242}`); st != 204 {
		t.Fatalf("PUT: %d %s", st, b)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown, no flush
		t.Fatal(err)
	}
	cmd.Wait()

	_, base = startChild(t, "--db", db, "--seed", seedFile)
	st, b := call(t, "GET", base+"/api/v1/instances/configuration", tok, "")
	if st != 200 || b != `{"instance_limit":4242}`+"\n" {
		t.Fatalf("after kill -9 and restart: %d %s", st, b)
	}
}

// run shuts down on cancel, and the flags fall back to the environment.
func TestRunFlagsEnvAndShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	var stderr strings.Builder
	env := map[string]string{"QRSERVER_ADDR": "127.0.0.1:0", "QRSERVER_DB": ":memory:", "QRSERVER_SEED": filepath.Join("..", "..", "seed", "demo.yaml"), "QRSERVER_LOG_FORMAT": "json"}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard, &syncWriter{w: &stderr}, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v", err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
		t.Fatalf("no JSON log of the shutdown: %s", stderr.String())
	}

	for _, args := range [][]string{{"--log-format", "xml"}, {"extra"}, {"--default-active-ttl", "99999"}, {"--token-leeway", "-1s"}, {"--trusted-proxies", "10.0.0.0/33"}, {"--trusted-proxies", "nonsense"}, {"--public-url", "qr.example.com"}, {"--public-url", "https://qr.example.com/api"}, {"--apikey-failure-burst", "-1"}, {"--apikey-failure-every", "0s"}} {
		err := run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard, nil)
		if err == nil || exitCode(err) != 2 {
			t.Errorf("%v: %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
	var help, helpErr strings.Builder
	if err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &help, &helpErr, nil); exitCode(err) != 0 || !strings.Contains(help.String(), "QRSERVER_ADDR") || helpErr.Len() != 0 {
		t.Errorf("--help: exit %d (%v), want 0 with the usage on stdout: %q, stderr %q", exitCode(err), err, help.String(), helpErr.String())
	}
	// As a process: --help prints the usage on stdout and exits 0, with no "flag: help requested".
	cmd := exec.Command(os.Args[0], "--help")
	cmd.Env = append(os.Environ(), "QRSERVER_TEST_CHILD=1")
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil || cmd.ProcessState.ExitCode() != 0 || !strings.Contains(string(out), "Usage: qrserver") || strings.Contains(string(out), "help requested") || errOut.Len() != 0 {
		t.Errorf("qrserver --help: exit %d (%v): %s; stderr %s", cmd.ProcessState.ExitCode(), err, out, errOut.String())
	}
}

// --help lists every flag once, as --name, under its group, essential ones first, with an
// example.
func TestHelpGroupsEveryFlag(t *testing.T) {
	var help strings.Builder
	if err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &help, io.Discard, nil); exitCode(err) != 0 {
		t.Fatal(err)
	}
	out := help.String()
	for _, want := range []string{"Examples:\n  qrserver --seed seed/demo.yaml", "\nServing:\n  --addr string\n", "\nState:\n  --db string\n", "\nAccess (IAM):\n", "\nReplicas and proxies:\n", "\nTuning:\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "--addr") > strings.Index(out, "--gc-percent") {
		t.Error("a tuning flag comes before --addr")
	}
	if strings.Contains(out, "\nOther:\n") {
		t.Errorf("a flag is in no group:\n%s", out)
	}
	listed := map[string]int{}
	for _, g := range flagGroups {
		for _, name := range g.flags {
			listed[name]++
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "  -") && !strings.HasPrefix(line, "  --") {
			t.Errorf("a flag shown with one dash: %q", line)
		}
	}
	n := strings.Count(out, "\n  --")
	if n != len(listed) {
		t.Errorf("--help shows %d flags, the groups list %d", n, len(listed))
	}
	for name, times := range listed {
		if times != 1 || !strings.Contains(out, "\n  --"+name) {
			t.Errorf("--%s is in %d groups", name, times)
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// SIGINT/SIGTERM (here: the context) lets a request in flight finish before run returns.
func TestShutdownLetsInFlightRequestsFinish(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	env := map[string]string{"QRSERVER_ADDR": "127.0.0.1:0", "QRSERVER_DB": ":memory:", "QRSERVER_SEED": filepath.Join("..", "..", "seed", "demo.yaml")}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard, io.Discard, ready) }()
	base := "http://" + <-ready
	tok := token(t, base)

	// A PUT whose body arrives slowly: the server is told to stop while it is being read.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("PUT", base+"/api/v1/instances/configuration", pr)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Service-CRN", demoCRN)
	req.Header.Set("Content-Type", "application/json")
	answer := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answer <- -1
			return
		}
		resp.Body.Close()
		answer <- resp.StatusCode
	}()
	pw.Write([]byte(`{"instance_limit":`))
	time.Sleep(100 * time.Millisecond) // the request is in flight
	cancel()
	time.Sleep(100 * time.Millisecond) // shutdown has begun and waits
	select {
	case err := <-done:
		t.Fatalf("run returned while a request was in flight: %v", err)
	default:
	}
	pw.Write([]byte(` 5000}`))
	pw.Close()
	if st := <-answer; st != 204 {
		t.Fatalf("in-flight PUT answered %d, want 204", st)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A server no one can call says so, and how to fix it; a seeded one does not.
func TestNoKeysWarning(t *testing.T) {
	bare := startQrserver(t, "--db", ":memory:")
	if logs := bare.logs.String(); !strings.Contains(logs, "no API keys: no caller can authenticate") || !strings.Contains(logs, "--seed seed/demo.yaml") {
		t.Fatalf("no warning for a server without keys: %s", logs)
	}
	seeded := startQrserver(t, "--db", ":memory:", "--seed", filepath.Join("..", "..", "seed", "demo.yaml"))
	if logs := seeded.logs.String(); strings.Contains(logs, "no API keys") {
		t.Fatalf("a seeded server warns of no keys: %s", logs)
	}
}

// The console is on by default, with its policy, and named in the log; --console=false
// turns it off.
func TestConsoleFlag(t *testing.T) {
	on := startQrserver(t, "--db", ":memory:", "--seed", filepath.Join("..", "..", "seed", "demo.yaml"))
	resp, err := http.Get(on.base + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("/console/: %d %v", resp.StatusCode, resp.Header)
	}
	if !strings.Contains(on.logs.String(), "console="+on.base+"/console/") {
		t.Errorf("the log does not name the console's URL: %s", on.logs.String())
	}
	off := startQrserver(t, "--db", ":memory:", "--console=false")
	resp, err = http.Get(off.base + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(off.logs.String(), "console=off") {
		t.Fatalf("--console=false: /console/ answers %d; log %s", resp.StatusCode, off.logs.String())
	}
}
