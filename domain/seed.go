package domain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Seed is a whole state to load into an empty store: accounts with their plans, instances
// with their usage, and principals with their API keys and policies. It is what the
// --seed YAML file and a fixture's document hold; YAML is read through the json tags
// (package seed), where omitzero keeps an empty list apart from an absent one.
type Seed struct {
	// Region is where the instances whose CRN a fixture generates are (us-east if empty).
	Region     string          `json:"region,omitempty"`
	Accounts   []SeedAccount   `json:"accounts,omitzero"`
	Instances  []SeedInstance  `json:"instances,omitzero"`
	Principals []SeedPrincipal `json:"principals,omitzero"`
}

// SeedAccount is an account; without plans it has no stored configuration.
type SeedAccount struct {
	ID    string      `json:"id,omitzero"`
	Plans *[]SeedPlan `json:"plans,omitempty"`
}

// SeedPlan is one plan configuration, with the Accounts page's fields.
type SeedPlan struct {
	PlanID                 string     `json:"plan_id,omitzero"`
	UsageAllocationSeconds *int64     `json:"usage_allocation_seconds,omitempty"`
	UsageLimitSeconds      *int64     `json:"usage_limit_seconds,omitempty"`
	Backends               []string   `json:"backends,omitzero"`
	MaxTTL                 *int64     `json:"max_ttl,omitempty"`
	ActiveTTL              *int64     `json:"active_ttl,omitempty"`
	InteractiveTTL         *int64     `json:"interactive_ttl,omitempty"`
	StartTime              *time.Time `json:"start_time,omitempty"`
	EndTime                *time.Time `json:"end_time,omitempty"`
	// The plan's Global Catalog entry (PlanConfig).
	CatalogID   string `json:"catalog_id,omitzero"`
	DisplayName string `json:"display_name,omitzero"`
	PricingType string `json:"pricing_type,omitzero"`
}

// SeedInstance is one instance with its limit and usage.
type SeedInstance struct {
	CRN string `json:"crn,omitzero"`
	// Account is the account of an instance whose CRN a fixture generates (the first
	// account if empty); a CRN given names its account itself.
	Account                string           `json:"account,omitempty"`
	PlanID                 string           `json:"plan_id,omitzero"`
	Backends               []string         `json:"backends,omitzero"`
	UsageAllocationSeconds *int64           `json:"usage_allocation_seconds,omitempty"`
	InstanceLimit          *float64         `json:"instance_limit,omitempty"`
	QctrlEnabled           *bool            `json:"qctrl_enabled,omitempty"`
	UsagePeriod            *SeedUsagePeriod `json:"usage_period,omitempty"`
	UsageConsumedSeconds   float64          `json:"usage_consumed_seconds,omitzero"`
	// Name is its IBM Cloud name (DefaultInstanceName if empty); Tags its tags.
	Name string   `json:"name,omitzero"`
	Tags []string `json:"tags,omitzero"`
}

// SeedUsagePeriod is an instance's current usage period: from StartTime to EndTime, or,
// written as the string "current_month", the calendar month (UTC) the state is made in.
type SeedUsagePeriod struct {
	StartTime time.Time `json:"start_time"`
	EndTime   time.Time `json:"end_time"`
	Relative  string    `json:"-"` // "current_month", or "": the times above
}

// CurrentMonth is the relative usage period of the month the state is made in.
const CurrentMonth = "current_month"

// UnmarshalJSON reads {"start_time", "end_time"} or "current_month".
func (p *SeedUsagePeriod) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		if name != CurrentMonth {
			return fmt.Errorf("usage_period %q: give start_time and end_time, or %q", name, CurrentMonth)
		}
		*p = SeedUsagePeriod{Relative: name}
		return nil
	}
	type fields SeedUsagePeriod
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*fields)(p))
}

// MarshalJSON writes what UnmarshalJSON reads.
func (p SeedUsagePeriod) MarshalJSON() ([]byte, error) {
	if p.Relative != "" {
		return json.Marshal(p.Relative)
	}
	type fields SeedUsagePeriod
	return json.Marshal(fields(p))
}

// at is the period as it is at now.
func (p SeedUsagePeriod) at(now time.Time) UsagePeriod {
	if p.Relative == CurrentMonth {
		return MonthOf(now)
	}
	return UsagePeriod{Start: KeptTime(p.StartTime), End: KeptTime(p.EndTime)}
}

// SeedPrincipal is a user or service ID with its API keys and policies.
type SeedPrincipal struct {
	ID       string         `json:"id,omitzero"`
	Type     PrincipalType  `json:"type,omitzero"`
	Name     string         `json:"name,omitzero"`
	Account  string         `json:"account,omitzero"`
	APIKeys  []string       `json:"api_keys,omitzero"`
	Policies []SeedPolicyIn `json:"policies,omitzero"`
}

// SeedPolicyIn grants a role on an account, or on one instance if Instance is set.
type SeedPolicyIn struct {
	Role     Role   `json:"role"`
	Account  string `json:"account,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// State is a seed checked and turned into domain values, ready for a store to keep.
type State struct {
	Accounts   []Account
	Instances  []Instance
	Principals []Principal
	APIKeyHash map[string]string // HashAPIKey(key) -> principal id
	Policies   []Policy
}

// HashAPIKey is how API keys are kept: never in clear.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// MinAPIKeyLength refuses keys that are too short to be secret.
const MinAPIKeyLength = 20

// At is a copy of the seed with its relative usage periods made absolute at now: what a
// server with a clock of its own loads.
func (s *Seed) At(now time.Time) *Seed {
	c := *s
	c.Instances = slices.Clone(s.Instances)
	for i, in := range c.Instances {
		if in.UsagePeriod != nil && in.UsagePeriod.Relative != "" {
			p := in.UsagePeriod.at(now)
			c.Instances[i].UsagePeriod = &SeedUsagePeriod{StartTime: p.Start, EndTime: p.End}
		}
	}
	return &c
}

// State checks the seed and returns it as domain values, with relative usage periods as
// they are now (At fixes another now). Errors name the entry at fault.
func (s *Seed) State() (*State, error) {
	now := time.Now()
	bad := func(field, format string, args ...any) (*State, error) {
		return nil, Errorf(EINVALID, "seed: "+format, args...).WithTarget("field", field).WithReason("invalid_field")
	}
	st := &State{APIKeyHash: map[string]string{}}
	accounts := map[string]bool{}
	for ai, a := range s.Accounts {
		if !ValidAccountID(a.ID) {
			return bad(fmt.Sprintf("accounts[%d].id", ai), "account id %q is not 1 to 64 letters, digits, - or _", a.ID)
		}
		if accounts[a.ID] {
			return bad(fmt.Sprintf("accounts[%d].id", ai), "account %s is listed twice", a.ID)
		}
		accounts[a.ID] = true
		acct := Account{ID: a.ID, Configured: a.Plans != nil}
		if a.Plans != nil {
			seen := map[string]bool{}
			for pi, p := range *a.Plans {
				if p.PlanID == "" || seen[p.PlanID] {
					return bad(fmt.Sprintf("accounts[%d].plans[%d].plan_id", ai, pi), "account %s: plan_id %q is empty or listed twice", a.ID, p.PlanID)
				}
				seen[p.PlanID] = true
				for _, v := range []*int64{p.UsageAllocationSeconds, p.UsageLimitSeconds, p.MaxTTL, p.ActiveTTL, p.InteractiveTTL} {
					if v != nil && (*v < 0 || *v > MaxInstanceLimit) {
						return bad(fmt.Sprintf("accounts[%d].plans[%d]", ai, pi), "account %s plan %s: seconds must be from 0 to %d", a.ID, p.PlanID, MaxInstanceLimit)
					}
				}
				if p.PricingType != "" && !slices.Contains(PricingTypes, p.PricingType) {
					return bad(fmt.Sprintf("accounts[%d].plans[%d].pricing_type", ai, pi), "account %s plan %s: pricing_type must be one of %v", a.ID, p.PlanID, PricingTypes)
				}
				backends := p.Backends
				if backends == nil {
					backends = []string{}
				}
				acct.Plans = append(acct.Plans, PlanConfig{
					PlanID: p.PlanID, UsageAllocationSeconds: p.UsageAllocationSeconds, UsageLimitSeconds: p.UsageLimitSeconds,
					Backends: backends, MaxTTL: p.MaxTTL, ActiveTTL: p.ActiveTTL, InteractiveTTL: p.InteractiveTTL,
					StartTime: keptTimePtr(p.StartTime), EndTime: keptTimePtr(p.EndTime),
					CatalogID: p.CatalogID, DisplayName: p.DisplayName, PricingType: p.PricingType,
				})
			}
		}
		st.Accounts = append(st.Accounts, acct)
	}
	crns := map[string]bool{}
	for ii, in := range s.Instances {
		field := func(name string) string { return fmt.Sprintf("instances[%d].%s", ii, name) }
		c, err := ParseCRN(in.CRN)
		if err != nil {
			return bad(field("crn"), "instance %q: %v", in.CRN, AsError(err).Message)
		}
		if !accounts[c.AccountID] {
			return bad(field("crn"), "instance %s: account %s is not in the seed", in.CRN, c.AccountID)
		}
		if crns[in.CRN] {
			return bad(field("crn"), "instance %s is listed twice", in.CRN)
		}
		crns[in.CRN] = true
		if in.PlanID == "" {
			return bad(field("plan_id"), "instance %s has no plan_id", in.CRN)
		}
		if err := CheckUsage(in.UsageConsumedSeconds); err != nil {
			return bad(field("usage_consumed_seconds"), "instance %s: %v", in.CRN, AsError(err).Message)
		}
		if in.InstanceLimit != nil && !(*in.InstanceLimit > 0) {
			return bad(field("instance_limit"), "instance %s: instance_limit must be above 0", in.CRN)
		}
		inst := Instance{
			CRN: in.CRN, AccountID: c.AccountID, PlanID: in.PlanID, Backends: in.Backends,
			UsageAllocationSeconds: in.UsageAllocationSeconds, InstanceLimitSeconds: in.InstanceLimit,
			QctrlEnabled: in.QctrlEnabled, ConsumedSeconds: in.UsageConsumedSeconds,
			Name: in.Name, Tags: slices.Clone(in.Tags),
		}
		if inst.Name == "" {
			inst.Name = DefaultInstanceName(c)
		}
		if inst.Backends == nil {
			inst.Backends = []string{}
		}
		if in.UsagePeriod != nil {
			p := in.UsagePeriod.at(now)
			if !p.End.After(p.Start) {
				return bad(field("usage_period"), "instance %s: usage_period ends before it starts", in.CRN)
			}
			inst.UsagePeriod = &p
		}
		st.Instances = append(st.Instances, inst)
	}
	ids := map[string]bool{}
	for pi, p := range s.Principals {
		field := func(name string) string { return fmt.Sprintf("principals[%d].%s", pi, name) }
		if p.ID == "" || ids[p.ID] {
			return bad(field("id"), "principal id %q is empty or listed twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type != PrincipalUser && p.Type != PrincipalServiceID {
			return bad(field("type"), "principal %s: type must be user or serviceid", p.ID)
		}
		if !accounts[p.Account] {
			return bad(field("account"), "principal %s: account %q is not in the seed", p.ID, p.Account)
		}
		st.Principals = append(st.Principals, Principal{ID: p.ID, Type: p.Type, Name: p.Name, AccountID: p.Account})
		for i, k := range p.APIKeys {
			if len(k) < MinAPIKeyLength {
				return bad(field(fmt.Sprintf("api_keys[%d]", i)), "principal %s: API key %d is shorter than %d characters", p.ID, i+1, MinAPIKeyLength)
			}
			h := HashAPIKey(k)
			if _, dup := st.APIKeyHash[h]; dup {
				return bad(field(fmt.Sprintf("api_keys[%d]", i)), "principal %s: API key %d is used twice", p.ID, i+1)
			}
			st.APIKeyHash[h] = p.ID
		}
		for i, pol := range p.Policies {
			if !ValidRole(pol.Role) {
				return bad(field(fmt.Sprintf("policies[%d].role", i)), "principal %s policy %d: unknown role %q", p.ID, i+1, pol.Role)
			}
			pp := Policy{PrincipalID: p.ID, Role: pol.Role, AccountID: pol.Account}
			if pol.Instance != "" {
				c, err := ParseCRN(pol.Instance)
				if err != nil {
					return bad(field(fmt.Sprintf("policies[%d].instance", i)), "principal %s policy %d: %v", p.ID, i+1, AsError(err).Message)
				}
				if pol.Account != "" && pol.Account != c.AccountID {
					return bad(field(fmt.Sprintf("policies[%d].instance", i)), "principal %s policy %d: instance is not in account %s", p.ID, i+1, pol.Account)
				}
				pp.AccountID, pp.InstanceCRN = c.AccountID, pol.Instance
			}
			if pp.AccountID == "" {
				return bad(field(fmt.Sprintf("policies[%d]", i)), "principal %s policy %d: names neither an account nor an instance", p.ID, i+1)
			}
			st.Policies = append(st.Policies, pp)
		}
	}
	if len(st.Accounts) == 0 {
		return bad("accounts", "no accounts")
	}
	return st, nil
}

func keptTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	k := KeptTime(*t)
	return &k
}
