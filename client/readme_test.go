package client_test

import (
	"github.com/qrapi/qrapi/internal/readmetest"
	"github.com/qrapi/qrapi/qrtest"

	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's program, built and run as written against a reference server.
func TestReadmeProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: this test builds the README's program with go build; run it without -short")
	}
	program, err := readmetest.ReadmeBlock(filepath.Join("..", "docs", "client.md"), "readme-client", "go")
	if err != nil {
		t.Fatal(err)
	}

	// Inside the module, so the program builds against this client.
	dir, err := os.MkdirTemp("..", ".readme-program-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := qrtest.NewServer(t)
	cmd := exec.Command("go", "run", "./"+filepath.Base(dir))
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "QISKIT_IBM_TOKEN="+keyAdmin, "QISKIT_IBM_INSTANCE="+crnA2, "QISKIT_IBM_URL="+rs.URL+"/api", "IBM_IAM_URL="+rs.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run: %v\n%s", err, out)
	}
	if string(out) != "plan-id-3: 12 s used, 48 s left\n" {
		t.Fatalf("output %q", out)
	}
}

// The README's qrtest example, in a module of the user's own set up exactly as the README
// says (its readme-module lines, offline, from the module cache), run by go test: it
// passes, and it fails when the server answers otherwise (the same test with a wrong
// expectation fails).
func TestReadmeQrtest(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: this test builds and runs the README's test with go test; run it without -short")
	}
	readme := filepath.Join("..", "README.md")
	src, err := readmetest.ReadmeBlock(readme, "readme-qrtest", "go")
	if err != nil {
		t.Fatal(err)
	}
	setup, err := readmetest.ReadmeBlock(readme, "readme-module", "sh")
	if err != nil {
		t.Fatal(err)
	}
	checkout, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// The one line a user edits: where their clone is.
	setup = regexp.MustCompile(`(?m)^QRAPI=\S+`).ReplaceAllLiteralString(setup, "QRAPI="+checkout)
	if !strings.Contains(setup, "QRAPI="+checkout) {
		t.Fatalf("the readme-module block sets no QRAPI=: %s", setup)
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	modCache := strings.TrimSpace(string(out))
	run := func(src string) (string, error) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "mycode_test.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", setup)
		cmd.Dir = dir
		// Offline: every module comes from the module cache that building this one filled,
		// served as a proxy from its download directory.
		cmd.Env = append(os.Environ(), "GOPROXY=file://"+filepath.ToSlash(filepath.Join(modCache, "cache", "download")), "GOFLAGS=", "GOWORK=off", "GOSUMDB=off")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	got, err := run(src)
	if err != nil || !strings.Contains(got, "ok  \texample.com/mycode") {
		t.Fatalf("the README's module steps and qrtest example: %v\n%s", err, got)
	}
	wrong := strings.Replace(src, "u.UsageConsumedSeconds != 30", "u.UsageConsumedSeconds != 31", 1)
	if out, err := run(wrong); err == nil || !strings.Contains(out, "--- FAIL: TestUsageThroughARateLimit") {
		t.Fatalf("the example with a wrong expectation passed:\n%s", out)
	}
}

// The README names the Go version go.mod needs.
func TestReadmeGoVersion(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil || m == nil {
		t.Fatal(err, m)
	}
	if !strings.Contains(string(readme), "Go "+string(m[1])) {
		t.Fatalf("the README does not name Go %s, which go.mod needs", m[1])
	}
}

// docs/client.md's Python example is a test of examples/pytest, verbatim, which make
// test-python runs.
func TestDocsPytestBlock(t *testing.T) {
	block, err := readmetest.ReadmeBlock(filepath.Join("..", "docs", "client.md"), "readme-pytest", "python")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("..", "examples", "pytest", "test_*.py"))
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(src), block) {
			return
		}
	}
	t.Fatalf("docs/client.md's Python block is in no test of examples/pytest:\n%s", block)
}
