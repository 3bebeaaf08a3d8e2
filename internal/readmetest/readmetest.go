// Package readmetest reads the README's examples, which tests run as written.
package readmetest

import (
	"fmt"
	"os"
	"strings"
)

// ReadmeBlock returns the fenced block (```lang) that follows the HTML comment
// <!-- marker … --> in the README at path: the README's examples are run by tests.
func ReadmeBlock(path, marker, lang string) (string, error) {
	readme, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	_, after, ok := strings.Cut(string(readme), "<!-- "+marker)
	if !ok {
		return "", fmt.Errorf("%s has no <!-- %s --> block", path, marker)
	}
	_, after, ok = strings.Cut(after, "```"+lang+"\n")
	if !ok {
		return "", fmt.Errorf("%s: no ```%s block after <!-- %s -->", path, lang, marker)
	}
	block, _, _ := strings.Cut(after, "```")
	return block, nil
}
