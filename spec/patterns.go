package spec

import (
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// CompilePattern compiles the documents' "pattern"s for kin-openapi's validation (New
// validates a document with it, which is when kin-openapi compiles and caches them). Go's
// regexp walks `.*` a rune at a time, and the Service-CRN header's `^crn:.*$` took a fifth of
// request validation under load; a pattern that is `^`, a plain literal, then `.*$` is
// matched by what it means instead — the literal as a prefix, then no newline (`.` does not
// match one, and `$` is the end of the text). Every other pattern is Go's regexp, compiled
// as kin-openapi compiles it.
func CompilePattern(expr string) (openapi3.RegexMatcher, error) {
	if lit, ok := strings.CutPrefix(expr, "^"); ok {
		if lit, ok = strings.CutSuffix(lit, ".*$"); ok && plainLiteral(lit) {
			return prefixThenLine(lit), nil
		}
	}
	return regexp.Compile(unicodeEscapes.ReplaceAllString(expr, `\x{${code}}`))
}

// unicodeEscapes rewrites ECMA-262's \uXXXX into Go's \x{XXXX}, as kin-openapi does.
var unicodeEscapes = regexp.MustCompile(`\\u(?P<code>[0-9A-F]{4})`)

// plainLiteral reports whether s has no character a regexp reads as anything but itself.
func plainLiteral(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ':' || r == '/' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// prefixThenLine matches `^prefix.*$`.
type prefixThenLine string

func (p prefixThenLine) MatchString(s string) bool {
	rest, ok := strings.CutPrefix(s, string(p))
	return ok && !strings.Contains(rest, "\n")
}
