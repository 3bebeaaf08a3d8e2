// Package seed reads the YAML seed files that fill an empty reference server, and embeds
// the demo seed that `make run` and the tests use.
package seed

import (
	_ "embed"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/qrapi/qrapi/domain"
)

//go:embed demo.yaml
var demoYAML []byte

// Demo returns the demo seed.
func Demo() *domain.Seed {
	s, err := Parse(demoYAML)
	if err != nil {
		panic(err) // the embedded file is checked by the tests
	}
	return s
}

// Parse reads a seed from YAML or JSON (JSON is YAML), refusing unknown fields so that a
// typo is not silently dropped, and checks it.
func Parse(b []byte) (*domain.Seed, error) {
	var s domain.Seed
	if err := yaml.UnmarshalStrict(b, &s); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if _, err := s.State(); err != nil {
		return nil, err
	}
	return &s, nil
}

// ParseDocument reads a seed document that a fixture completes (domain.NewFixture): its
// ids, CRNs and keys may be missing, so its rules are checked once it is complete.
func ParseDocument(b []byte) (*domain.Seed, error) {
	var s domain.Seed
	if err := yaml.UnmarshalStrict(b, &s); err != nil {
		return nil, domain.Errorf(domain.EINVALID, "The document is not a seed: %v", err).WithTarget("field", "body").WithReason("invalid_body")
	}
	return &s, nil
}

// ReadFile reads a seed file.
func ReadFile(path string) (*domain.Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
