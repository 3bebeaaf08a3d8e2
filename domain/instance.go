package domain

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"time"
)

// UsagePeriod is the window in which an instance's usage is counted.
type UsagePeriod struct {
	Start time.Time
	End   time.Time
}

// Instance is one Qiskit Runtime service instance, named by its CRN.
type Instance struct {
	CRN                    string
	AccountID              string
	PlanID                 string
	Backends               []string
	UsageAllocationSeconds *int64   // nil: no allocation applies
	InstanceLimitSeconds   *float64 // nil: no limit set; whole seconds when set through the API
	QctrlEnabled           *bool    // deprecated; nil when never set
	UsagePeriod            *UsagePeriod
	ConsumedSeconds        float64 // in the current usage period
	FixtureID              string  // the fixture that made it, if one did
	Name                   string  // its IBM Cloud name, as Resource Controller and Global Search show it
	Tags                   []string
}

// Clone returns a copy that shares nothing with i.
func (i *Instance) Clone() *Instance {
	c := *i
	c.Backends = slices.Clone(i.Backends)
	c.Tags = slices.Clone(i.Tags)
	if i.UsageAllocationSeconds != nil {
		v := *i.UsageAllocationSeconds
		c.UsageAllocationSeconds = &v
	}
	if i.InstanceLimitSeconds != nil {
		v := *i.InstanceLimitSeconds
		c.InstanceLimitSeconds = &v
	}
	if i.QctrlEnabled != nil {
		v := *i.QctrlEnabled
		c.QctrlEnabled = &v
	}
	if i.UsagePeriod != nil {
		v := *i.UsagePeriod
		c.UsagePeriod = &v
	}
	return &c
}

// LimitSecondsString is the instance limit as the API's instance_limit_seconds string:
// whole seconds, rounded up, so a fractional limit never reads as more time than it is.
func (i *Instance) LimitSecondsString() (string, bool) {
	if i.InstanceLimitSeconds == nil {
		return "", false
	}
	return strconv.FormatInt(int64(math.Ceil(*i.InstanceLimitSeconds)), 10), true
}

// UsageLimit is the limit that applies to the instance's usage, in whole seconds: its
// instance limit if set, rounded up as instance_limit_seconds shows it (so get_instance and
// get_usage agree, and limit − consumed is a whole number for whole usage, as IBM's
// Qiskit client computes it), else its allocation. ok is false when neither applies.
func (i *Instance) UsageLimit() (limit float64, ok bool) {
	if i.InstanceLimitSeconds != nil {
		return math.Ceil(*i.InstanceLimitSeconds), true
	}
	if i.UsageAllocationSeconds != nil {
		return float64(*i.UsageAllocationSeconds), true
	}
	return 0, false
}

// LimitReached reports whether the consumed seconds reached the usage limit as UsageLimit
// gives it; ok is false when no limit applies (the API then omits usage_limit_reached).
func (i *Instance) LimitReached() (reached, ok bool) {
	limit, ok := i.UsageLimit()
	if !ok {
		return false, false
	}
	return i.ConsumedSeconds >= limit, true
}

// MaxInstanceLimit is the largest limit the API accepts (int32).
const MaxInstanceLimit = math.MaxInt32

// CheckNewLimit applies the rule of replace_instance_configuration: a limit is a whole
// number of seconds from 1 to MaxInstanceLimit (nil removes it), and never below the
// seconds already consumed in the current usage period.
func CheckNewLimit(limit *int64, consumed float64) error {
	if limit == nil {
		return nil
	}
	if *limit < 1 || *limit > MaxInstanceLimit {
		return Errorf(EINVALID, "instance_limit must be null or an integer from 1 to %d, got %d", MaxInstanceLimit, *limit).
			WithTarget("field", "instance_limit").WithReason("invalid_field")
	}
	if float64(*limit) < consumed {
		return Errorf(ECONFLICT, "instance_limit %d is below the %s seconds already consumed in the current usage period", *limit, strconv.FormatFloat(consumed, 'f', -1, 64)).
			WithTarget("field", "instance_limit").WithReason("usage_exceeds_limit")
	}
	return nil
}

// CheckUsage refuses a recorded usage that is negative or not a finite number.
func CheckUsage(seconds float64) error {
	if math.IsNaN(seconds) || math.IsInf(seconds, 0) || seconds < 0 {
		return Errorf(EINVALID, "usage seconds must be a finite number of at least 0").WithTarget("field", "seconds").WithReason("invalid_field")
	}
	return nil
}

// PlanConfig is the configuration of one plan of an account.
type PlanConfig struct {
	PlanID                 string
	UsageAllocationSeconds *int64
	UsageLimitSeconds      *int64
	Backends               []string
	MaxTTL                 *int64
	ActiveTTL              *int64
	InteractiveTTL         *int64
	StartTime              *time.Time
	EndTime                *time.Time
	// The plan's Global Catalog entry: its id (PlanID if empty), display name (PlanID if
	// empty) and pricing type (PricingTypes; paygo if empty).
	CatalogID   string
	DisplayName string
	PricingType string
}

// PricingTypes are the pricing types of a plan's catalog entry.
var PricingTypes = []string{"free", "paygo", "subscription"}

// SetDefaultName names an instance that has no name (DefaultInstanceName).
func (i *Instance) SetDefaultName() {
	if i.Name != "" {
		return
	}
	if c, err := ParseCRN(i.CRN); err == nil {
		i.Name = DefaultInstanceName(c)
	}
}

// DefaultInstanceName is the name of an instance that has none: from its CRN's instance
// id, as instance-0c1d2e3f.
func DefaultInstanceName(c CRN) string {
	return "instance-" + c.Instance[:min(8, len(c.Instance))]
}

// AccountPlan is a plan configuration as get_account answers it.
type AccountPlan struct {
	PlanConfig
	UnallocatedUsageSeconds *int64 // nil when the plan has no allocation
}

// Account is an IBM Cloud account known to the service.
type Account struct {
	ID        string
	FixtureID string       // the fixture that made it, if one did
	Plans     []PlanConfig // the stored configuration
	// Configured is false when no configuration is stored: get_account then answers the
	// default configuration.
	Configured bool
}

// TTLDefaults are the session TTLs of a default plan configuration.
type TTLDefaults struct {
	MaxTTL, ActiveTTL, InteractiveTTL int64
}

// DefaultTTLs are the TTLs that get_account gives plans of an unconfigured account.
var DefaultTTLs = TTLDefaults{MaxTTL: 28800, ActiveTTL: 28800, InteractiveTTL: 60}

// AccountConfiguration computes what get_account answers for an account and its
// instances: the stored plans with their unallocated usage, or, for an account with no
// stored configuration, one default plan per plan its instances use.
func AccountConfiguration(acct Account, instances []Instance, ttl TTLDefaults) []AccountPlan {
	if !acct.Configured {
		return defaultPlans(instances, ttl)
	}
	out := make([]AccountPlan, 0, len(acct.Plans))
	for _, p := range acct.Plans {
		ap := AccountPlan{PlanConfig: p}
		if p.UsageAllocationSeconds != nil {
			free := *p.UsageAllocationSeconds
			for _, in := range instances {
				if in.PlanID == p.PlanID && in.UsageAllocationSeconds != nil {
					free -= *in.UsageAllocationSeconds
				}
			}
			free = max(free, 0)
			ap.UnallocatedUsageSeconds = &free
		}
		out = append(out, ap)
	}
	return out
}

func defaultPlans(instances []Instance, ttl TTLDefaults) []AccountPlan {
	backends := map[string][]string{}
	for _, in := range instances {
		backends[in.PlanID] = append(backends[in.PlanID], in.Backends...)
	}
	ids := make([]string, 0, len(backends))
	for id := range backends {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]AccountPlan, 0, len(ids))
	for _, id := range ids {
		b := slices.Clone(backends[id])
		sort.Strings(b)
		b = slices.Compact(b)
		if b == nil {
			b = []string{}
		}
		maxTTL, active, interactive := ttl.MaxTTL, ttl.ActiveTTL, ttl.InteractiveTTL
		out = append(out, AccountPlan{PlanConfig: PlanConfig{
			PlanID: id, Backends: b, MaxTTL: &maxTTL, ActiveTTL: &active, InteractiveTTL: &interactive,
		}})
	}
	return out
}

// Next is the period that starts when p ends: the next calendar month if p is one (from
// the first of a month to the first of the next, at 00:00 UTC), else of p's length.
func (p UsagePeriod) Next() UsagePeriod {
	if p.monthly() {
		return MonthOf(p.End)
	}
	return UsagePeriod{Start: p.End, End: p.End.Add(p.End.Sub(p.Start))}
}

// Current is the period that contains now: p until it ends, then the one that many
// periods (calendar months, for a month) later.
func (p UsagePeriod) Current(now time.Time) UsagePeriod {
	switch {
	case now.Before(p.End):
		return p
	case p.monthly():
		return MonthOf(now)
	}
	d := p.End.Sub(p.Start)
	start := p.End.Add(now.Sub(p.End) / d * d)
	return UsagePeriod{Start: start, End: start.Add(d)}
}

// monthly reports whether p is one calendar month, from its first day at 00:00 UTC.
func (p UsagePeriod) monthly() bool {
	return p.Start.Equal(MonthOf(p.Start).Start) && p.End.Equal(MonthOf(p.Start).End)
}

// MonthOf is the calendar month (UTC) that contains t.
func MonthOf(t time.Time) UsagePeriod {
	t = t.UTC()
	start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return UsagePeriod{Start: start, End: start.AddDate(0, 1, 0)}
}

// PeriodEnded reports whether the instance has a usage period that has ended at now.
func (in *Instance) PeriodEnded(now time.Time) bool {
	return in.UsagePeriod != nil && !now.Before(in.UsagePeriod.End)
}

// RollPeriod moves an instance whose usage period has ended at now into the period that
// contains now, with no seconds consumed, as AdvanceUsagePeriod leaves it, and reports
// whether it did. An instance with no period, or in its period, stays as it is.
func (in *Instance) RollPeriod(now time.Time) bool {
	if !in.PeriodEnded(now) {
		return false
	}
	current := in.UsagePeriod.Current(now)
	in.UsagePeriod, in.ConsumedSeconds = &current, 0
	return true
}
