package seed

import (
	"os"
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

// The banner that `make run` prints names only keys and CRNs that the demo seed has.
func TestDemoBannerMatchesSeed(t *testing.T) {
	banner, err := os.ReadFile("demo.txt")
	if err != nil {
		t.Fatal(err)
	}
	s := Demo()
	keys, crns := map[string]bool{}, map[string]bool{}
	for _, p := range s.Principals {
		for _, k := range p.APIKeys {
			keys[k] = true
		}
	}
	for _, in := range s.Instances {
		crns[in.CRN] = true
	}
	nk, nc := 0, 0
	for _, w := range strings.Fields(string(banner)) {
		w = strings.TrimPrefix(w, "apikey=")
		switch {
		case strings.HasPrefix(w, "qrdemo-"):
			nk++
			if !keys[w] {
				t.Errorf("banner key %s is not in the seed", w)
			}
		case strings.HasPrefix(w, "crn:"):
			nc++
			if !crns[w] {
				t.Errorf("banner CRN %s is not in the seed", w)
			}
		}
	}
	if nk < len(keys) || nc != len(crns) {
		t.Errorf("banner names %d keys and %d CRNs; the seed has %d and %d", nk, nc, len(keys), len(crns))
	}
}
