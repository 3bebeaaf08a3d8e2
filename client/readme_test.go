package client_test

import (
	"github.com/qrapi/qrapi/internal/readmetest"
	"github.com/qrapi/qrapi/qrtest"

	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The README's program, built and run as written against a reference server.
func TestReadmeProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	program, err := readmetest.ReadmeBlock(filepath.Join("..", "README.md"), "readme-client", "go")
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

// The README's qrtest example, run as written by go test: it passes, and it fails when the
// server answers otherwise (the same test with a wrong expectation fails).
func TestReadmeQrtest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a test binary")
	}
	src, err := readmetest.ReadmeBlock(filepath.Join("..", "README.md"), "readme-qrtest", "go")
	if err != nil {
		t.Fatal(err)
	}
	run := func(src string) (string, error) {
		dir, err := os.MkdirTemp("..", ".readme-qrtest-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		if err := os.WriteFile(filepath.Join(dir, "mycode_test.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("go", "test", "-count=1", "-v", "./"+filepath.Base(dir))
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(src)
	if err != nil || !strings.Contains(out, "--- PASS: TestUsageThroughARateLimit") {
		t.Fatalf("go test of the README's qrtest example: %v\n%s", err, out)
	}
	wrong := strings.Replace(src, "u.UsageConsumedSeconds != 30", "u.UsageConsumedSeconds != 31", 1)
	if out, err := run(wrong); err == nil || !strings.Contains(out, "--- FAIL: TestUsageThroughARateLimit") {
		t.Fatalf("the example with a wrong expectation passed:\n%s", out)
	}
}
