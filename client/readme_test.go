package client_test

import (
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
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- readme-client")
	if !ok {
		t.Fatal("README has no readme-client block")
	}
	_, after, _ = strings.Cut(after, "```go\n")
	program, _, _ := strings.Cut(after, "```")

	// Inside the module, so the program builds against this client.
	dir, err := os.MkdirTemp("..", ".readme-program-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := startReferenceServer(0)
	defer rs.close()
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
