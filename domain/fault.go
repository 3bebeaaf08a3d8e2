package domain

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// FaultRule is a fault the control API asked the server to inject: which requests it
// matches, what it does to them, and when.
type FaultRule struct {
	ID string
	// Match: each empty means any.
	Operation string // an operationId of the API
	Instance  string // a CRN, as the Service-CRN header names it
	Principal string // an IAM id
	Fixture   string // a fixture: its instances and principals only
	// Effect: at least one.
	Status            int  // 400–599: answer this error instead; 0: none
	RetryAfterSeconds *int // with Status: the Retry-After header
	DelayMS           int  // wait this long first (at most MaxFaultDelay)
	Reset             bool // close the connection with no answer
	// Schedule.
	Count       int      // fire for the next Count matching requests, then expire; 0: no count
	Probability *float64 // fire for this share of matching requests; nil: every one
	Seed        *int64   // with Probability: the draws repeat exactly from one run to the next
	ExpiresAt   *time.Time
	CreatedAt   time.Time
	// What it did: Seen counts matching requests, Hits those it fired on.
	Seen int64
	Hits int64
}

// MaxFaultDelay is the longest delay a rule may add.
const MaxFaultDelay = 60 * time.Second

// Live reports whether the rule may still fire at now: not expired by time or by count.
func (r *FaultRule) Live(now time.Time) bool {
	if r.ExpiresAt != nil && !now.Before(*r.ExpiresAt) {
		return false
	}
	return r.Count == 0 || r.Hits < int64(r.Count)
}

// FaultRequest is what a rule matches on: the request's operation, instance and
// principal, and the fixtures, if any, that made that instance and that principal.
type FaultRequest struct {
	Operation, Instance, Principal    string
	InstanceFixture, PrincipalFixture string
}

// Matches reports whether the rule applies to the request (live or not).
func (r *FaultRule) Matches(q FaultRequest) bool {
	return (r.Operation == "" || r.Operation == q.Operation) &&
		(r.Instance == "" || r.Instance == q.Instance) &&
		(r.Principal == "" || r.Principal == q.Principal) &&
		(r.Fixture == "" || r.Fixture == q.InstanceFixture || r.Fixture == q.PrincipalFixture)
}

// Take decides, for the rule's next matching request, whether it fires, and counts it: a
// store calls it inside the transaction that holds the rule, so that counts are exact
// across replicas. A seeded rule's n-th matching request fires or not the same way in
// every run; an unseeded one draws from rnd.
func (r *FaultRule) Take(now time.Time, rnd func() float64) bool {
	if !r.Live(now) {
		return false
	}
	r.Seen++
	if r.Probability != nil {
		var draw float64
		if r.Seed != nil {
			draw = SeededDraw(*r.Seed, r.Seen)
		} else {
			draw = rnd()
		}
		if draw >= *r.Probability {
			return false
		}
	}
	r.Hits++
	return true
}

// SeededDraw is the n-th draw in [0, 1) of a seed: splitmix64 of the pair, the same on every
// replica and in every run.
func SeededDraw(seed, n int64) float64 {
	z := uint64(seed) + uint64(n)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / float64(uint64(1)<<53)
}

// Validate checks what the document cannot: a rule does something, and its effects go
// together. Ranges (status 400–599, delay, probability 0–1) are the document's.
func (r *FaultRule) Validate() error {
	field := func(name, format string, args ...any) error {
		return Errorf(EINVALID, format, args...).WithTarget("field", name).WithReason("invalid_field")
	}
	switch {
	case r.RetryAfterSeconds != nil && r.Status == 0:
		return field("retry_after_seconds", "retry_after_seconds goes with an answer: give a status too.")
	case r.Status == 0 && r.DelayMS == 0 && !r.Reset:
		return field("status", "A fault rule needs an effect: status, delay_ms or reset.")
	case r.Status != 0 && (r.Status < 400 || r.Status > 599):
		return field("status", "status must be an error status, 400 to 599, not %d.", r.Status)
	case r.Reset && r.Status != 0:
		return field("reset", "reset closes the connection with no answer: it cannot also answer status %d.", r.Status)
	case r.DelayMS < 0 || time.Duration(r.DelayMS)*time.Millisecond > MaxFaultDelay:
		return field("delay_ms", "delay_ms must be 0 to %d.", MaxFaultDelay.Milliseconds())
	case r.Probability != nil && (math.IsNaN(*r.Probability) || *r.Probability < 0 || *r.Probability > 1):
		return field("probability", "probability must be 0 to 1.")
	case r.Seed != nil && r.Probability == nil:
		return field("seed", "seed repeats the draws of a probability: give a probability too.")
	case r.Count < 0:
		return field("count", "count must be at least 1.")
	}
	return nil
}

// FaultNotFound is the error of a rule id that names no kept rule.
func FaultNotFound(id string) *Error {
	return Errorf(ENOTFOUND, "No fault rule has the id %s.", id).WithReason("fault_rule_not_found")
}

// EncodeFaultRule is how stores keep a rule: JSON of all but its counts, which they keep in
// columns of their own.
func EncodeFaultRule(r *FaultRule) ([]byte, error) {
	c := *r
	c.Seen, c.Hits = 0, 0
	return json.Marshal(&c)
}

// ScanFaultRule reads a kept rule from a store's row of what EncodeFaultRule wrote and the
// rule's seen and hits counts, in that order; an error of the row's Scan (no row, say) is
// returned as it is.
func ScanFaultRule(row interface{ Scan(dest ...any) error }) (*FaultRule, error) {
	var (
		b          []byte
		seen, hits int64
	)
	if err := row.Scan(&b, &seen, &hits); err != nil {
		return nil, err
	}
	var r FaultRule
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("a kept fault rule is not JSON: %w", err)
	}
	r.Seen, r.Hits = seen, hits
	return &r, nil
}

// LiveFaultRules is the rules of all that may fire at now, in their order.
func LiveFaultRules(all []FaultRule, now time.Time) []FaultRule {
	var out []FaultRule
	for i := range all {
		if all[i].Live(now) {
			out = append(out, all[i])
		}
	}
	return out
}
