package seed

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qrapi/qrapi/domain"
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

// A usage period may be the current month, made absolute when the state is made: the demo's
// is, so it never shows a month that has ended. Any other word is refused, naming it.
func TestCurrentMonthPeriod(t *testing.T) {
	const doc = `accounts: [{id: a1}]
instances:
  - crn: "crn:v1:bluemix:public:quantum-computing:us-east:a/a1:i1::"
    plan_id: p
    backends: []
    usage_period: current_month
    usage_consumed_seconds: 0
`
	s, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2027, 1, 15, 10, 0, 0, 0, time.UTC)
	st, err := s.At(now).State()
	if err != nil {
		t.Fatal(err)
	}
	if p := st.Instances[0].UsagePeriod; p == nil || !p.Start.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || !p.End.Equal(time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("current_month at %v: %+v", now, p)
	}
	if s.Instances[0].UsagePeriod.Relative != domain.CurrentMonth {
		t.Fatal("At changed the seed it was called on")
	}
	b, err := json.Marshal(s)
	if err != nil || !strings.Contains(string(b), `"usage_period":"current_month"`) {
		t.Fatalf("JSON of the seed: %v %s", err, b)
	}
	if _, err := Parse([]byte(strings.Replace(doc, "current_month", "last_month", 1))); err == nil || !strings.Contains(err.Error(), "last_month") {
		t.Fatalf("last_month: %v", err)
	}
	if _, err := Parse([]byte(strings.Replace(doc, "usage_period: current_month", "usage_period: {start_time: 2026-01-01T00:00:00Z, end_time: 2026-02-01T00:00:00Z, extra: 1}", 1))); err == nil || !strings.Contains(err.Error(), "extra") {
		t.Fatalf("an unknown field in a period: %v", err)
	}
	for _, in := range Demo().Instances {
		if p := in.UsagePeriod; p != nil && p.Relative != domain.CurrentMonth {
			t.Errorf("the demo instance %s has a fixed period, which will end", in.CRN)
		}
	}
}
