package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qrapi/qrapi/internal/readmetest"
)

// docs/replicas.md's block, run as written: a throwaway PostgreSQL, three replicas and
// HAProxy, with its directory and ports moved to free ones. Then the README's curl block
// answers through HAProxy as it does from one server.
func TestDocsReplicas(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("haproxy is not installed under CI: .ci/run installs it (%v)", err)
		}
		t.Skipf("docs/replicas.md's block needs haproxy (apt-get install -y haproxy): %v", err)
	}
	pg := ownPostgresDir(t) // skips, or fails under CI, without PostgreSQL; the block starts it
	block, err := readmetest.ReadmeBlock(filepath.Join("..", "..", "docs", "replicas.md"), "readme-replicas", "sh")
	if err != nil {
		t.Fatal(err)
	}
	front, r1, r2, r3 := freePort(t), freePort(t), freePort(t), freePort(t)
	cfg, err := os.ReadFile(filepath.Join("..", "..", "deploy", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.NewReplacer("127.0.0.1:8080", "127.0.0.1:"+front, "127.0.0.1:8081", "127.0.0.1:"+r1,
		"127.0.0.1:8082", "127.0.0.1:"+r2, "127.0.0.1:8083", "127.0.0.1:"+r3)
	haCfg := filepath.Join(pg.dir, "haproxy.cfg")
	if err := os.WriteFile(haCfg, []byte(moved.Replace(string(cfg))), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"deploy/postgres.sh start /tmp/qrpg", "for port in 8081 8082 8083", "haproxy -f deploy/haproxy.cfg"} {
		if !strings.Contains(block, want) {
			t.Fatalf("docs/replicas.md's block has no %q:\n%s", want, block)
		}
	}
	script := strings.NewReplacer("deploy/postgres.sh start /tmp/qrpg", "deploy/postgres.sh start "+pg.dir+" "+pg.port,
		"/tmp/qrpg", pg.dir, "8081 8082 8083", r1+" "+r2+" "+r3, "haproxy -f deploy/haproxy.cfg", "haproxy -f "+haCfg).Replace(block)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = filepath.Join("..", "..")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // the replicas and HAProxy, started in the background
		time.Sleep(500 * time.Millisecond)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		exec.Command(postgresScript, "stop", pg.dir).Run()
	})
	done := make(chan error, 1)
	// A file, not a pipe: the replicas and HAProxy keep it open after the block returns.
	outFile, err := os.Create(filepath.Join(pg.dir, "block.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	cmd.Stdout, cmd.Stderr = outFile, outFile
	out := logFile(outFile.Name())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			logs, _ := os.ReadFile(filepath.Join(pg.dir, "replicas.log"))
			t.Fatalf("docs/replicas.md's block: %v\n%s\nreplicas:\n%s", err, out.String(), logs)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("docs/replicas.md's block did not finish in 2 minutes:\n%s", out.String())
	}
	base := "http://127.0.0.1:" + front
	for i := 0; ; i++ { // HAProxy was started in the background
		if r, err := http.Get(base + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				break
			}
		}
		if i == 100 {
			t.Fatalf("HAProxy does not answer at %s", base)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(out.String(), "is DOWN") {
		t.Errorf("HAProxy logged a replica as DOWN while they started:\n%s", out.String())
	}
	curl, err := readmetest.ReadmeBlock(filepath.Join("..", "..", "README.md"), "readme-curl", "sh")
	if err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command("bash", "-euo", "pipefail", "-c", strings.ReplaceAll(curl, "http://127.0.0.1:8080", base)).CombinedOutput()
	if err != nil || !strings.Contains(string(got), "204\n204\n") || !strings.Contains(string(got), `"unallocated_usage_seconds":10`) {
		t.Fatalf("the README's curl block through HAProxy: %v\n%s", err, got)
	}
	// Every replica served: round robin spread the calls.
	for _, port := range []string{r1, r2, r3} {
		r, err := http.Get("http://127.0.0.1:" + port + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if !strings.Contains(string(b), `qrserver_requests_total{`) {
			t.Errorf("replica on %s served no API call", port)
		}
	}
}

// logFile is a file's text, read when it is printed.
type logFile string

func (f logFile) String() string { b, _ := os.ReadFile(string(f)); return string(b) }

// docs/lookups.md's recipe for Qiskit, run with a hosts file and a port of the test's own
// (the recipe's are /etc/hosts and port 80): every name it maps reaches its service, as
// Qiskit's client calls them, the names resolved as the hosts line says.
func TestDocsQiskitHosts(t *testing.T) {
	block, err := readmetest.ReadmeBlock(filepath.Join("..", "..", "docs", "lookups.md"), "readme-qiskit-hosts", "sh")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	bin := filepath.Join(dir, "bin", "qrserver")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v %s", err, out)
	}
	if err := os.Symlink(filepath.Join(repo, "seed"), filepath.Join(dir, "seed")); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	hosts := filepath.Join(dir, "hosts")
	for _, want := range []string{">> /etc/hosts", "--addr 127.0.0.1:80 "} {
		if !strings.Contains(block, want) {
			t.Fatalf("docs/lookups.md's Qiskit block has no %q:\n%s", want, block)
		}
	}
	script := strings.NewReplacer(">> /etc/hosts", ">> "+hosts, "--addr 127.0.0.1:80 ", "--addr 127.0.0.1:"+port+" ").Replace(block)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	logs, err := os.Create(filepath.Join(dir, "qrserver.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })

	// Resolve names as the hosts line written says, and nothing else.
	addrOf := func(name string) string {
		b, _ := os.ReadFile(hosts)
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			for _, n := range f[min(1, len(f)):] {
				if n == name {
					return f[0]
				}
			}
		}
		return ""
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, p, _ := net.SplitHostPort(addr)
		ip := addrOf(host)
		if ip == "" {
			return nil, fmt.Errorf("%s is not in the hosts file the recipe wrote", host)
		}
		return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(ip, p))
	}}}
	do := func(method, url, body string, hdr ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const key = "qrdemo-admin-key-0123456789abcdefghijklmnop"
	origin := func(host string) string { return "http://" + host + ":" + port }
	for i := 0; ; i++ {
		if st, _ := do("GET", origin("quantum.localhost")+"/healthz", ""); st == 200 {
			break
		}
		if i == 200 {
			l, _ := os.ReadFile(logs.Name())
			t.Fatalf("the recipe's server does not answer at quantum.localhost:%s: %s", port, l)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// What Qiskit's QiskitRuntimeService(url="http://quantum.localhost") calls, in order.
	st, body := do("POST", origin("iam.quantum.localhost")+"/identity/token", "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey="+key,
		"Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal([]byte(body), &tok); st != 200 || tok.AccessToken == "" {
		t.Fatalf("IAM at iam.quantum.localhost: %d %s", st, body)
	}
	bearer := "Bearer " + tok.AccessToken
	st, body = do("POST", origin("api.global-search-tagging.quantum.localhost")+"/v3/resources/search?limit=100",
		`{"query": "service_name:quantum-computing", "fields": ["crn", "service_plan_unique_id", "doc"]}`, "Authorization", bearer, "Content-Type", "application/json")
	if st != 200 || !strings.Contains(body, demoCRN) {
		t.Fatalf("Global Search at api.global-search-tagging.quantum.localhost: %d %s", st, body)
	}
	if st, body := do("GET", origin("globalcatalog.quantum.localhost")+"/api/v1/plan-id-2", "", "Authorization", bearer); st != 200 || !strings.Contains(body, `"kind":"plan"`) {
		t.Errorf("Global Catalog at globalcatalog.quantum.localhost: %d %s", st, body)
	}
	if st, body := do("GET", origin("resource-controller.quantum.localhost")+"/v2/resource_instances?limit=10", "", "Authorization", bearer); st != 200 || !strings.Contains(body, demoCRN) {
		t.Errorf("Resource Controller at resource-controller.quantum.localhost: %d %s", st, body)
	}
	if st, body := do("GET", origin("quantum.localhost")+"/api/v1/instances/usage", "", "Authorization", bearer, "Service-CRN", demoCRN); st != 200 || !strings.Contains(body, `"usage_consumed_seconds"`) {
		t.Errorf("the API at quantum.localhost: %d %s", st, body)
	}
}
