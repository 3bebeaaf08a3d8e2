package seed

import (
	"strings"
	"testing"
)

func TestDemoSeedParses(t *testing.T) {
	s, err := Parse(demoYAML)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Accounts) != 2 || len(s.Instances) != 4 || len(s.Principals) != 5 {
		t.Fatalf("demo seed: %d accounts, %d instances, %d principals", len(s.Accounts), len(s.Instances), len(s.Principals))
	}
}

func TestUnknownFieldsAndBadSeedsAreRefused(t *testing.T) {
	for name, y := range map[string]string{
		"typo":        "accounts:\n  - id: a1\n    plan: []\n",
		"no accounts": "instances: []\n",
		"bad yaml":    "accounts: [",
	} {
		if _, err := Parse([]byte(y)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name == "typo" && !strings.Contains(err.Error(), "plan") {
			t.Errorf("typo: the error does not name the field: %v", err)
		}
	}
}
