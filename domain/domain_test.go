package domain

import (
	"strings"
	"testing"
	"time"
)

func i64(v int64) *int64     { return &v }
func f64(v float64) *float64 { return &v }

func TestParseCRN(t *testing.T) {
	good := "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::"
	c, err := ParseCRN(good)
	if err != nil || c.Region != "us-east" || c.AccountID != "8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b" || c.Instance != "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" {
		t.Fatalf("%+v %v", c, err)
	}
	for name, bad := range map[string]string{
		"empty":           "",
		"too few parts":   "crn:v1:bluemix:public:quantum-computing:us-east:a/x:y",
		"not crn":         strings.Replace(good, "crn:v1", "urn:v1", 1),
		"other service":   strings.Replace(good, "quantum-computing", "cloud-object-storage", 1),
		"no a/ scope":     strings.Replace(good, ":a/", ":s/", 1),
		"empty region":    strings.Replace(good, "us-east", "", 1),
		"resource inside": strings.TrimSuffix(good, "::") + ":job:123",
		"bad account":     strings.Replace(good, "a/8a3c", "a/8a$c", 1),
		"empty instance":  strings.Replace(good, "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f", "", 1),
	} {
		if _, err := ParseCRN(bad); ErrorCode(err) != EINVALID {
			t.Errorf("%s: %q accepted (%v)", name, bad, err)
		}
	}
}

func TestResolveAPIVersion(t *testing.T) {
	for in, want := range map[string]string{
		"": "2025-05-01", "2024-01-01": "2024-01-01", "2024-12-31": "2024-01-01", "2025-01-01": "2025-01-01",
		"2025-04-30": "2025-01-01", "2025-05-01": "2025-05-01", "2026-02-01": "2026-02-01", "2026-02-16": "2026-02-15",
		"2026-04-14": "2026-03-15", "2026-04-15": "2026-04-15", "2099-12-31": "2026-04-15",
	} {
		if got, err := ResolveAPIVersion(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for in, reason := range map[string]string{"2023-12-31": "unsupported_api_version", "2025-02-30": "invalid_header", "20250501": "invalid_header", "latest": "invalid_header"} {
		_, err := ResolveAPIVersion(in)
		if e := AsError(err); e.Code != EINVALID || e.Reason != reason {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestAllowed(t *testing.T) {
	inst := Resource{AccountID: "A", InstanceCRN: "crnA1"}
	acct := Resource{AccountID: "A"}
	cases := []struct {
		name     string
		policies []Policy
		action   string
		res      Resource
		want     bool
	}{
		{"no policy", nil, ActionInstanceRead, inst, false},
		{"reader on the instance reads it", []Policy{{Role: RoleReader, AccountID: "A", InstanceCRN: "crnA1"}}, ActionInstanceRead, inst, true},
		{"reader cannot update", []Policy{{Role: RoleReader, AccountID: "A", InstanceCRN: "crnA1"}}, ActionConfigurationUpdate, inst, false},
		{"instance policy does not cover a sibling", []Policy{{Role: RoleManager, AccountID: "A", InstanceCRN: "crnA2"}}, ActionInstanceRead, inst, false},
		{"instance policy does not cover the account", []Policy{{Role: RoleManager, AccountID: "A", InstanceCRN: "crnA1"}}, ActionAccountConfigurationRd, acct, false},
		{"account policy covers its instances", []Policy{{Role: RoleManager, AccountID: "A"}}, ActionConfigurationUpdate, inst, true},
		{"account policy covers the account", []Policy{{Role: RoleViewer, AccountID: "A"}}, ActionAccountConfigurationRd, acct, true},
		{"another account's policy", []Policy{{Role: RoleAdministrator, AccountID: "B"}}, ActionInstanceRead, inst, false},
		{"viewer cannot read the configuration", []Policy{{Role: RoleViewer, AccountID: "A"}}, ActionConfigurationRead, inst, false},
		{"writer cannot update", []Policy{{Role: RoleWriter, AccountID: "A"}}, ActionConfigurationUpdate, inst, false},
		{"any of several policies", []Policy{{Role: RoleReader, AccountID: "A"}, {Role: RoleAdministrator, AccountID: "A", InstanceCRN: "crnA1"}}, ActionConfigurationUpdate, inst, true},
		{"unknown role grants nothing", []Policy{{Role: "Owner", AccountID: "A"}}, ActionInstanceRead, inst, false},
	}
	for _, c := range cases {
		if got := Allowed(c.policies, c.action, c.res); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCheckNewLimit(t *testing.T) {
	cases := []struct {
		limit    *int64
		consumed float64
		code     string
	}{
		{nil, 1e9, ""},
		{i64(1), 0, ""},
		{i64(30), 30, ""},
		{i64(29), 29.5, ECONFLICT},
		{i64(29), 30, ECONFLICT},
		{i64(0), 0, EINVALID},
		{i64(-5), 0, EINVALID},
		{i64(MaxInstanceLimit), 0, ""},
		{i64(MaxInstanceLimit + 1), 0, EINVALID},
	}
	for _, c := range cases {
		if got := ErrorCode(CheckNewLimit(c.limit, c.consumed)); got != c.code {
			t.Errorf("limit %v consumed %v: %q, want %q", c.limit, c.consumed, got, c.code)
		}
	}
}

func TestInstanceUsageRules(t *testing.T) {
	cases := []struct {
		name              string
		in                Instance
		limit             float64
		hasLimit, reached bool
		limitSeconds      string
	}{
		{"limit wins over allocation", Instance{InstanceLimitSeconds: f64(60), UsageAllocationSeconds: i64(120), ConsumedSeconds: 12}, 60, true, false, "60"},
		{"allocation when no limit", Instance{UsageAllocationSeconds: i64(120), ConsumedSeconds: 130}, 120, true, true, ""},
		{"reached at equality", Instance{InstanceLimitSeconds: f64(60), ConsumedSeconds: 60}, 60, true, true, "60"},
		{"fractional limit rounds up, as a string and as the usage limit", Instance{InstanceLimitSeconds: f64(60.7)}, 61, true, false, "61"},
		{"reached against the whole-second limit", Instance{InstanceLimitSeconds: f64(60.7), ConsumedSeconds: 60.8}, 61, true, false, "61"},
		{"reached at the whole-second limit", Instance{InstanceLimitSeconds: f64(60.2), ConsumedSeconds: 61}, 61, true, true, "61"},
		{"neither", Instance{ConsumedSeconds: 5}, 0, false, false, ""},
	}
	for _, c := range cases {
		limit, ok := c.in.UsageLimit()
		reached, rok := c.in.LimitReached()
		s, _ := c.in.LimitSecondsString()
		if limit != c.limit || ok != c.hasLimit || reached != c.reached || rok != c.hasLimit || s != c.limitSeconds {
			t.Errorf("%s: limit %v/%v reached %v/%v string %q", c.name, limit, ok, reached, rok, s)
		}
	}
}

func TestAccountConfiguration(t *testing.T) {
	acct := Account{ID: "A", Configured: true, Plans: []PlanConfig{
		{PlanID: "p1", UsageAllocationSeconds: i64(150), Backends: []string{"b"}},
		{PlanID: "p2", UsageAllocationSeconds: i64(100), Backends: []string{"b"}},
		{PlanID: "p3", Backends: []string{"b"}},
	}}
	instances := []Instance{
		{PlanID: "p1", UsageAllocationSeconds: i64(100)},
		{PlanID: "p1", UsageAllocationSeconds: i64(40)},
		{PlanID: "p1"},
		{PlanID: "p2", UsageAllocationSeconds: i64(300)},
		{PlanID: "p3", UsageAllocationSeconds: i64(10)},
	}
	got := AccountConfiguration(acct, instances, DefaultTTLs)
	if len(got) != 3 || *got[0].UnallocatedUsageSeconds != 10 || *got[1].UnallocatedUsageSeconds != 0 || got[2].UnallocatedUsageSeconds != nil {
		t.Fatalf("unallocated: %+v", got)
	}

	// Unconfigured: one default plan per plan in use, backends merged, TTLs from the defaults.
	def := AccountConfiguration(Account{ID: "B"}, []Instance{
		{PlanID: "z", Backends: []string{"b2", "b1"}}, {PlanID: "a", Backends: nil}, {PlanID: "z", Backends: []string{"b1", "b3"}},
	}, TTLDefaults{MaxTTL: 100, ActiveTTL: 50, InteractiveTTL: 5})
	if len(def) != 2 || def[0].PlanID != "a" || len(def[0].Backends) != 0 || def[0].Backends == nil ||
		strings.Join(def[1].Backends, ",") != "b1,b2,b3" || *def[1].MaxTTL != 100 || *def[1].ActiveTTL != 50 || *def[1].InteractiveTTL != 5 || def[1].UnallocatedUsageSeconds != nil {
		t.Fatalf("default: %+v", def)
	}
	if none := AccountConfiguration(Account{ID: "C"}, nil, DefaultTTLs); none == nil || len(none) != 0 {
		t.Fatalf("no instances: %#v", none)
	}
}

func TestUsagePeriodNextAndCurrent(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	month := UsagePeriod{Start: day(2026, 11, 1), End: day(2026, 12, 1)}
	days30 := UsagePeriod{Start: day(2026, 11, 5), End: day(2026, 12, 5)} // 30 days, not a calendar month
	for _, c := range []struct {
		name string
		got  UsagePeriod
		want UsagePeriod
	}{
		{"a month's next is the next calendar month", month.Next(), UsagePeriod{day(2026, 12, 1), day(2027, 1, 1)}},
		{"December's next is January", UsagePeriod{day(2026, 12, 1), day(2027, 1, 1)}.Next(), UsagePeriod{day(2027, 1, 1), day(2027, 2, 1)}},
		{"January's next is February (28 days)", UsagePeriod{day(2027, 1, 1), day(2027, 2, 1)}.Next(), UsagePeriod{day(2027, 2, 1), day(2027, 3, 1)}},
		{"another period's next has its length", days30.Next(), UsagePeriod{day(2026, 12, 5), day(2027, 1, 4)}},
		{"current before the end is the period", month.Current(day(2026, 11, 30)), month},
		{"current at the end is the next", month.Current(day(2026, 12, 1)), UsagePeriod{day(2026, 12, 1), day(2027, 1, 1)}},
		{"current months later, across a year", month.Current(day(2027, 3, 15).Add(5 * time.Hour)), UsagePeriod{day(2027, 3, 1), day(2027, 4, 1)}},
		{"current several periods later", days30.Current(day(2027, 2, 10)), UsagePeriod{day(2027, 2, 3), day(2027, 3, 5)}},
	} {
		if !c.got.Start.Equal(c.want.Start) || !c.got.End.Equal(c.want.End) {
			t.Errorf("%s: %v to %v, want %v to %v", c.name, c.got.Start, c.got.End, c.want.Start, c.want.End)
		}
	}
}

func TestRollPeriod(t *testing.T) {
	dec := MonthOf(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	in := Instance{UsagePeriod: &dec, ConsumedSeconds: 30}
	if in.RollPeriod(time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)) || in.ConsumedSeconds != 30 {
		t.Fatalf("rolled within its period: %+v", in)
	}
	// Two months on: January is skipped, February is current, nothing consumed.
	if !in.RollPeriod(time.Date(2027, 2, 3, 0, 0, 0, 0, time.UTC)) || in.ConsumedSeconds != 0 || !in.UsagePeriod.Start.Equal(time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("after two months: %+v %+v", in, in.UsagePeriod)
	}
	none := Instance{ConsumedSeconds: 3}
	if none.RollPeriod(time.Now()) || none.ConsumedSeconds != 3 {
		t.Fatal("an instance without a period rolled")
	}
	// A change made At a time past the period sees the rolled instance (the limit rule
	// against zero consumed).
	full := Instance{UsagePeriod: &dec, ConsumedSeconds: 100}
	limit := int64(50)
	if err := SetLimit(&limit)(full.Clone()); ErrorCode(err) != ECONFLICT {
		t.Fatalf("a limit below the consumed seconds, in the period: %v", err)
	}
	if err := At(dec.End, SetLimit(&limit))(&full); err != nil || full.ConsumedSeconds != 0 {
		t.Fatalf("the same limit after the period ended: %v %+v", err, full)
	}
}

func TestSeedState(t *testing.T) {
	crn := "crn:v1:bluemix:public:quantum-computing:us-east:a/A1:i1::"
	ok := Seed{
		Accounts:   []SeedAccount{{ID: "A1"}},
		Instances:  []SeedInstance{{CRN: crn, PlanID: "p"}},
		Principals: []SeedPrincipal{{ID: "u", Type: PrincipalUser, Account: "A1", APIKeys: []string{"0123456789abcdefghij"}, Policies: []SeedPolicyIn{{Role: RoleReader, Instance: crn}}}},
	}
	st, err := ok.State()
	if err != nil || len(st.Policies) != 1 || st.Policies[0].AccountID != "A1" || st.APIKeyHash[HashAPIKey("0123456789abcdefghij")] != "u" {
		t.Fatalf("%+v %v", st, err)
	}
	for k := range st.APIKeyHash {
		if strings.Contains(k, "0123456789abcdefghij") {
			t.Fatal("API key kept in clear")
		}
	}
	for name, edit := range map[string]func(s *Seed){
		"instance of an unknown account": func(s *Seed) { s.Instances[0].CRN = strings.Replace(crn, "A1", "A2", 1) },
		"short API key":                  func(s *Seed) { s.Principals[0].APIKeys = []string{"short"} },
		"unknown role":                   func(s *Seed) { s.Principals[0].Policies[0].Role = "Owner" },
		"duplicate account":              func(s *Seed) { s.Accounts = append(s.Accounts, SeedAccount{ID: "A1"}) },
		"negative usage":                 func(s *Seed) { s.Instances[0].UsageConsumedSeconds = -1 },
		"bad principal type":             func(s *Seed) { s.Principals[0].Type = "robot" },
		"policy on nothing":              func(s *Seed) { s.Principals[0].Policies[0] = SeedPolicyIn{Role: RoleReader} },
	} {
		s := ok
		s.Accounts = append([]SeedAccount{}, ok.Accounts...)
		s.Instances = append([]SeedInstance{}, ok.Instances...)
		p := ok.Principals[0]
		p.Policies = append([]SeedPolicyIn{}, p.Policies...)
		s.Principals = []SeedPrincipal{p}
		edit(&s)
		if _, err := s.State(); ErrorCode(err) != EINVALID {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
}
