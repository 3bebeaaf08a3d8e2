package spec

import (
	"regexp"
	"testing"
)

// The fast matcher answers exactly as Go's regexp does, on the patterns it takes and on
// inputs that probe its edges (newlines, invalid UTF-8, the empty string); the others are
// Go's regexp.
func TestCompilePatternMatchesRegexp(t *testing.T) {
	inputs := []string{"", "crn", "crn:", "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c:5d6e::", "crn:\n", "crn:a\nb",
		"\ncrn:", "xcrn:", "CRN:", "crn:\xff\xfe", "crn:\r", "crn:\x00", "http://x", "https://x", "a", "\n", "2025-05-01"}
	for _, expr := range []string{`^crn:.*$`, `^.*$`, `^https?://.*$`, `^a/b_c-d:.*$`, `^[a-zA-Z0-9-]+$`, `^\d{4}-\d{2}-\d{2}$`, `^crn:.*`, `crn:.*$`, `^cr.n:.*$`} {
		fast, err := CompilePattern(expr)
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(expr)
		for _, in := range inputs {
			if got, want := fast.MatchString(in), re.MatchString(in); got != want {
				t.Errorf("%s on %q: %v, regexp says %v", expr, in, got, want)
			}
		}
	}
	if _, ok := mustCompile(t, `^crn:.*$`).(prefixThenLine); !ok {
		t.Error("^crn:.*$ is not matched by the fast matcher")
	}
	if _, ok := mustCompile(t, `^cr.n:.*$`).(*regexp.Regexp); !ok {
		t.Error("a pattern with a metacharacter in its prefix is not Go's regexp")
	}
	if m := mustCompile(t, `^\u0041$`).(*regexp.Regexp); !m.MatchString("A") {
		t.Error(`\u0041 is not rewritten as kin-openapi rewrites it`)
	}
}

func mustCompile(t *testing.T, expr string) any {
	t.Helper()
	m, err := CompilePattern(expr)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
