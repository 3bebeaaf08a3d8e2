package readmetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// copyable are the blocks a user would copy: each must be run by a test.
var copyable = map[string]bool{"sh": true, "bash": true, "go": true, "python": true, "js": true}

// Every block of the README and docs/ a user would copy (shell, Go, Python) follows a
// marker <!-- NAME: run by … --> whose NAME a test of the repository reads; every other
// block names its language (text, yaml, json), so none is left out by having none.
func TestEveryCopyableBlockIsRun(t *testing.T) {
	root := filepath.Join("..", "..")
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	if len(docs) < 5 {
		t.Fatalf("found only %v", docs)
	}
	tests := testSources(t, root)
	marker := regexp.MustCompile(`^<!-- ([a-z0-9-]+): .+ -->$`)
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		in := false
		for i, line := range lines {
			if !strings.HasPrefix(line, "```") {
				continue
			}
			if in {
				in = false
				continue
			}
			in = true
			lang := strings.TrimPrefix(line, "```")
			where := filepath.Base(filepath.Dir(doc)) + "/" + filepath.Base(doc) + ":" + strconv.Itoa(i+1)
			if lang == "" {
				t.Errorf("%s: a block with no language: name it (sh, go, text, …)", where)
				continue
			}
			if !copyable[lang] {
				continue
			}
			prev := i - 1
			for prev >= 0 && strings.TrimSpace(lines[prev]) == "" {
				prev--
			}
			m := []string(nil)
			if prev >= 0 {
				m = marker.FindStringSubmatch(lines[prev])
			}
			if m == nil {
				t.Errorf("%s: a ```%s block with no <!-- NAME: run by … --> marker before it", where, lang)
				continue
			}
			if !strings.Contains(tests, `"`+m[1]+`"`) && !strings.Contains(tests, "<!-- "+m[1]) {
				t.Errorf("%s: no test reads the block %q", where, m[1])
			}
		}
	}
}

// testSources is the text of every test of the repository: Go tests and the examples'.
func testSources(t *testing.T, root string) string {
	var sb strings.Builder
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, ".test.mjs") {
			b, err := os.ReadFile(path)
			sb.Write(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// Every binary the README and docs/ tell a user to build lands where git ignores it.
func TestBuiltBinariesAreIgnored(t *testing.T) {
	root := filepath.Join("..", "..")
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	build := regexp.MustCompile(`go build -o (\S+)`)
	seen := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range build.FindAllStringSubmatch(string(b), -1) {
			seen++
			out := strings.TrimSuffix(m[1], "`")
			cmd := exec.Command("git", "check-ignore", "-q", "--no-index", out)
			cmd.Dir = root
			if err := cmd.Run(); err != nil {
				t.Errorf("%s builds %s, which .gitignore does not cover (%v)", filepath.Base(doc), out, err)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no go build -o in the README or docs/: the test reads nothing")
	}
}

// Every relative link of the README and docs/ reaches a file of the repository, and its
// #anchor a heading of that file, as GitHub names headings.
func TestDocsLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading := regexp.MustCompile(`(?m)^#+ (.+)$`)
	anchors := func(file string) map[string]bool {
		b, _ := os.ReadFile(file)
		m := map[string]bool{}
		for _, h := range heading.FindAllStringSubmatch(string(b), -1) {
			a := strings.Map(func(r rune) rune {
				switch {
				case r == ' ':
					return '-'
				case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
					return r
				case r >= 'A' && r <= 'Z':
					return r + 'a' - 'A'
				}
				return -1
			}, h[1])
			m[a] = true
		}
		return m
	}
	checked := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			file := doc
			if path != "" {
				file = filepath.Join(filepath.Dir(doc), filepath.FromSlash(path))
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s links to %s, which is not there", filepath.Base(doc), target)
					continue
				}
			}
			if anchor != "" && !anchors(file)[anchor] {
				t.Errorf("%s links to %s: %s has no heading #%s", filepath.Base(doc), target, filepath.Base(file), anchor)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Fatalf("only %d links checked", checked)
	}
}

// docs/behaviour.md's table of the demo's keys names keys and principals the demo seed has.
func TestDemoKeysTable(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "behaviour.md"))
	if err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join("..", "..", "seed", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(qrdemo-[a-z]+-key-[0-9a-z]+)` \\| ([^|(]+)")
	rows := row.FindAllStringSubmatch(string(doc), -1)
	if len(rows) != 5 {
		t.Fatalf("%d demo keys in docs/behaviour.md, want 5", len(rows))
	}
	for _, r := range rows {
		if !strings.Contains(string(seed), r[1]) || !strings.Contains(string(seed), "name: "+strings.TrimSpace(r[2])) {
			t.Errorf("docs/behaviour.md names %s for %s, which seed/demo.yaml does not have", r[2], r[1])
		}
	}
}
