// Package storetest is the conformance suite of domain.Store: every behaviour the
// interface promises, run against each engine. Implementing domain.Store means passing
// Run; a new engine is a folder and a test that calls Run with its Engine.
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/seed"
)

// Engine is how the suite makes stores of one engine.
type Engine struct {
	// NewDatabase makes an empty database for one test and returns a function that opens
	// a Store on it; the suite closes what it opens. Where Shared or Durable is false, the
	// suite calls open once at a time.
	NewDatabase func(t *testing.T) (open func(t *testing.T) domain.Store)
	// Shared: several Stores may be open on one database at once and behave as one
	// (replicas).
	Shared bool
	// Durable: a Store opened again on the database finds what the last one kept.
	Durable bool
}

// The demo seed's names that the suite uses.
const (
	crnA1     = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::"
	crnB1     = "crn:v1:bluemix:public:quantum-computing:us-east:a/5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f:7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b::"
	crnAMiss  = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:00000000-0000-4000-8000-000000000000::"
	acctDemo  = "8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b"
	acctOther = "5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f"
	keyAdmin  = "qrdemo-admin-key-0123456789abcdefghijklmnop"
)

// Run runs the whole suite against an engine.
func Run(t *testing.T, e Engine) {
	tests := []struct {
		name string
		run  func(t *testing.T, e Engine)
	}{
		{"LoadIfEmptyLoadsOnce", testLoadIfEmpty},
		{"SeedRoundTrip", testSeedRoundTrip},
		{"NotFound", testNotFound},
		{"Changes", testChanges},
		{"FailedChangeKeepsNothing", testFailedChange},
		{"LoadReplacesStateKeepsAuditAndKey", testLoadReplaces},
		{"Audit", testAudit},
		{"AuditBatchKeptOnce", testAuditBatchKeptOnce},
		{"Setting", testSetting},
		{"ConcurrentUpdatesLoseNothing", testConcurrentUpdates},
		{"LimitRuleUnderConcurrency", testLimitRuleConcurrent},
		{"RefusedChangeFailsAlone", testRefusedChangeFailsAlone},
		{"ConcurrentLoadIfEmpty", testConcurrentLoadIfEmpty},
		{"Durable", testDurable},
		{"SharedStoresActAsOne", testShared},
		{"Faults", testFaults},
		{"FaultCountExact", testFaultCountExact},
		{"SharedFaults", testSharedFaults},
		{"Fixtures", testFixtures},
		{"FixtureLimit", testFixtureLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, e) })
	}
}

var ctx = context.Background()

// open opens a store on a new database, closed when the test ends.
func open(t *testing.T, e Engine) (domain.Store, func(t *testing.T) domain.Store) {
	t.Helper()
	opener := e.NewDatabase(t)
	reopen := func(t *testing.T) domain.Store {
		t.Helper()
		s := opener(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	return reopen(t), reopen
}

// seeded opens a store on a new database with the demo seed.
func seeded(t *testing.T, e Engine) (domain.Store, func(t *testing.T) domain.Store) {
	t.Helper()
	s, reopen := open(t, e)
	if err := s.Load(ctx, seed.Demo()); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s, reopen
}

func demoState(t *testing.T) *domain.State {
	t.Helper()
	st, err := seed.Demo().State()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if domain.ErrorCode(err) != code {
		t.Fatalf("%s: error %v, want code %s", what, err, code)
	}
}

func testLoadIfEmpty(t *testing.T, e Engine) {
	s, _ := open(t, e)
	if _, err := s.Account(ctx, acctDemo); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("a new store holds the demo account: %v", err)
	}
	if has, err := s.HasAPIKeys(ctx); err != nil || has {
		t.Fatalf("a new store has API keys: %v %v", has, err)
	}
	loaded, err := s.LoadIfEmpty(ctx, seed.Demo())
	if err != nil || !loaded {
		t.Fatalf("LoadIfEmpty on an empty store: %v %v", loaded, err)
	}
	if has, err := s.HasAPIKeys(ctx); err != nil || !has {
		t.Fatalf("the demo's keys: %v %v", has, err)
	}
	limit := int64(4242)
	if _, err := s.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
		t.Fatal(err)
	}
	loaded, err = s.LoadIfEmpty(ctx, seed.Demo())
	if err != nil || loaded {
		t.Fatalf("LoadIfEmpty on a seeded store loaded again: %v %v", loaded, err)
	}
	in, err := s.Instance(ctx, crnA1)
	if err != nil || in.InstanceLimitSeconds == nil || *in.InstanceLimitSeconds != 4242 {
		t.Fatalf("a second LoadIfEmpty changed the state: %+v %v", in, err)
	}
	bad := &domain.Seed{}
	if _, err := s.LoadIfEmpty(ctx, bad); domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("an invalid seed: %v", err)
	}
}

func testSeedRoundTrip(t *testing.T, e Engine) {
	s, _ := seeded(t, e)
	st := demoState(t)
	byAccount := map[string][]domain.Instance{}
	for _, want := range st.Instances {
		got, err := s.Instance(ctx, want.CRN)
		if err != nil {
			t.Fatalf("Instance %s: %v", want.CRN, err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("Instance %s:\n got %s\nwant %s", want.CRN, show(*got), show(want))
		}
		byAccount[want.AccountID] = append(byAccount[want.AccountID], want)
	}
	for _, a := range st.Accounts {
		got, err := s.Account(ctx, a.ID)
		if err != nil {
			t.Fatalf("Account %s: %v", a.ID, err)
		}
		if !reflect.DeepEqual(*got, a) {
			t.Errorf("Account %s:\n got %s\nwant %s", a.ID, show(*got), show(a))
		}
		want := byAccount[a.ID]
		sort.Slice(want, func(i, j int) bool { return want[i].CRN < want[j].CRN })
		ins, err := s.AccountInstances(ctx, a.ID)
		if err != nil || !reflect.DeepEqual(ins, want) {
			t.Errorf("AccountInstances %s: %v\n got %s\nwant %s", a.ID, err, show(ins), show(want))
		}
	}
	policies := map[string][]domain.Policy{}
	for _, p := range st.Policies {
		policies[p.PrincipalID] = append(policies[p.PrincipalID], p)
	}
	for _, want := range st.Principals {
		p, pols, err := s.Identity(ctx, want.ID)
		if err != nil || !reflect.DeepEqual(*p, want) || !reflect.DeepEqual(pols, policies[want.ID]) {
			t.Errorf("Identity %s: %v\n got %s %s\nwant %s %s", want.ID, err, show(p), show(pols), show(want), show(policies[want.ID]))
		}
	}
	p, err := s.PrincipalByAPIKey(ctx, keyAdmin)
	if err != nil || p.ID != "IBMid-demo-admin" || p.AccountID != acctDemo || p.Type != domain.PrincipalUser {
		t.Fatalf("PrincipalByAPIKey: %+v %v", p, err)
	}
}

func show(v any) string { return fmt.Sprintf("%+v", v) }

func testNotFound(t *testing.T, e Engine) {
	s, _ := seeded(t, e)
	check := func(what string, err error, reason string) {
		t.Helper()
		var de *domain.Error
		if !errors.As(err, &de) || de.Code != domain.ENOTFOUND {
			t.Fatalf("%s: %v, want not found", what, err)
		}
		if reason != "" && de.Reason != reason {
			t.Fatalf("%s: reason %q, want %q", what, de.Reason, reason)
		}
		if de.Target != nil {
			t.Fatalf("%s: a store named a part of the request (%+v): that is the server's to say", what, de.Target)
		}
	}
	_, err := s.Instance(ctx, crnAMiss)
	check("Instance", err, domain.ReasonInstanceNotFound)
	_, err = s.UpdateInstance(ctx, crnAMiss, domain.AddUsage(1))
	check("UpdateInstance", err, domain.ReasonInstanceNotFound)
	_, err = s.Account(ctx, "nobody")
	check("Account", err, domain.ReasonAccountNotFound)
	_, err = s.PrincipalByAPIKey(ctx, "qrdemo-no-such-key-0123456789abcdefghij")
	check("PrincipalByAPIKey", err, "")
	_, _, err = s.Identity(ctx, "IBMid-nobody")
	check("Identity", err, "")
	if ins, err := s.AccountInstances(ctx, "nobody"); err != nil || len(ins) != 0 {
		t.Fatalf("AccountInstances of an unknown account: %v %v", ins, err)
	}
}

func ptr[T any](v T) *T { return &v }

func testChanges(t *testing.T, e Engine) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 123456789, time.FixedZone("x", 3600))
	cases := []struct {
		name   string
		change domain.Change
		code   string // the error's code, "" for success
		check  func(in *domain.Instance) error
	}{
		{"set limit", domain.SetLimit(ptr[int64](77)), "", func(in *domain.Instance) error {
			if in.InstanceLimitSeconds == nil || *in.InstanceLimitSeconds != 77 {
				return errors.New("limit not 77")
			}
			return nil
		}},
		{"remove limit", domain.SetLimit(nil), "", func(in *domain.Instance) error {
			if in.InstanceLimitSeconds != nil {
				return errors.New("limit still set")
			}
			return nil
		}},
		{"limit below consumed", domain.SetLimit(ptr[int64](10)), domain.ECONFLICT, nil},
		{"limit out of range", domain.SetLimit(ptr[int64](0)), domain.EINVALID, nil},
		{"add usage", domain.AddUsage(2.5), "", func(in *domain.Instance) error {
			if in.ConsumedSeconds != 32.5 {
				return fmt.Errorf("consumed %v, want 32.5", in.ConsumedSeconds)
			}
			return nil
		}},
		{"negative usage", domain.AddUsage(-1), domain.EINVALID, nil},
		{"period backwards", domain.SetUsagePeriod(&domain.UsagePeriod{Start: start, End: start.Add(-time.Hour)}, false), domain.EINVALID, nil},
		{"period kept to the microsecond in UTC", domain.SetUsagePeriod(&domain.UsagePeriod{Start: start, End: start.Add(time.Hour)}, true), "", func(in *domain.Instance) error {
			want := domain.UsagePeriod{Start: time.Date(2026, 10, 31, 23, 0, 0, 123456000, time.UTC), End: time.Date(2026, 11, 1, 0, 0, 0, 123456000, time.UTC)}
			if in.UsagePeriod == nil || *in.UsagePeriod != want || in.ConsumedSeconds != 0 {
				return fmt.Errorf("period %+v consumed %v, want %+v and 0", in.UsagePeriod, in.ConsumedSeconds, want)
			}
			return nil
		}},
		{"no period", domain.SetUsagePeriod(nil, false), "", func(in *domain.Instance) error {
			if in.UsagePeriod != nil || in.ConsumedSeconds != 30 {
				return fmt.Errorf("period %+v consumed %v", in.UsagePeriod, in.ConsumedSeconds)
			}
			return nil
		}},
		{"advance period", domain.AdvanceUsagePeriod(), "", func(in *domain.Instance) error {
			if in.UsagePeriod == nil || in.ConsumedSeconds != 0 {
				return fmt.Errorf("period %+v consumed %v", in.UsagePeriod, in.ConsumedSeconds)
			}
			return nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := seeded(t, e)
			before, err := s.Instance(ctx, crnA1)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.UpdateInstance(ctx, crnA1, tc.change)
			if tc.code != "" {
				wantCode(t, tc.name, err, tc.code)
				after, _ := s.Instance(ctx, crnA1)
				if !reflect.DeepEqual(after, before) {
					t.Fatalf("a refused change was kept:\n got %s\nwant %s", show(after), show(before))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.check(got); err != nil {
				t.Fatalf("returned: %v", err)
			}
			read, err := s.Instance(ctx, crnA1)
			if err != nil || !reflect.DeepEqual(read, got) {
				t.Fatalf("read after the update differs from what it returned:\n read %s\n returned %s", show(read), show(got))
			}
		})
	}
}

func testFailedChange(t *testing.T, e Engine) {
	s, _ := seeded(t, e)
	before, _ := s.Instance(ctx, crnA1)
	boom := errors.New("rule says no")
	_, err := s.UpdateInstance(ctx, crnA1, func(in *domain.Instance) error {
		in.ConsumedSeconds = 9999
		in.InstanceLimitSeconds = nil
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateInstance returned %v, want the change's error", err)
	}
	after, _ := s.Instance(ctx, crnA1)
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("a failed change was kept: %s", show(after))
	}
	// What a caller does with its copy is not the store's state.
	after.ConsumedSeconds = 1
	after.Backends[0] = "changed"
	again, _ := s.Instance(ctx, crnA1)
	if !reflect.DeepEqual(again, before) {
		t.Fatalf("changing a returned instance changed the store: %s", show(again))
	}
}

func testLoadReplaces(t *testing.T, e Engine) {
	s, _ := seeded(t, e)
	key, err := setting(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, nextBatch(), [][]byte{[]byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateInstance(ctx, crnA1, domain.AddUsage(5)); err != nil {
		t.Fatal(err)
	}
	if err := s.Load(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	in, _ := s.Instance(ctx, crnA1)
	if in.ConsumedSeconds != 30 {
		t.Fatalf("after Load, consumed %v, want the seed's 30", in.ConsumedSeconds)
	}
	// A smaller seed: what it lacks is gone, principals and policies included.
	small := &domain.Seed{
		Accounts:   []domain.SeedAccount{{ID: acctOther}},
		Instances:  []domain.SeedInstance{{CRN: crnB1, PlanID: "open-instance", UsageConsumedSeconds: 3}},
		Principals: []domain.SeedPrincipal{{ID: "IBMid-solo", Type: domain.PrincipalUser, Name: "Solo", Account: acctOther, APIKeys: []string{"solo-key-0123456789abcdefghijkl"}, Policies: []domain.SeedPolicyIn{{Role: domain.RoleViewer, Account: acctOther}}}},
	}
	if err := s.Load(ctx, small); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Instance(ctx, crnA1); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("an instance the new seed lacks: %v", err)
	}
	if _, _, err := s.Identity(ctx, "IBMid-demo-admin"); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("a principal the new seed lacks: %v", err)
	}
	if _, err := s.PrincipalByAPIKey(ctx, keyAdmin); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("an API key the new seed lacks: %v", err)
	}
	if p, pols, err := s.Identity(ctx, "IBMid-solo"); err != nil || p.Name != "Solo" || len(pols) != 1 || pols[0].Role != domain.RoleViewer {
		t.Fatalf("the new seed's principal: %+v %+v %v", p, pols, err)
	}
	if in, err := s.Instance(ctx, crnB1); err != nil || in.ConsumedSeconds != 3 || len(in.Backends) != 0 || in.Backends == nil {
		t.Fatalf("the new seed's instance: %+v %v", in, err)
	}
	key2, _ := setting(s)
	events := listAudit(t, s)
	if !slices.Equal(key, key2) || len(events) != 1 {
		t.Fatalf("Load dropped the signing key or the audit events (%d events)", len(events))
	}
}

func testAudit(t *testing.T, e Engine) {
	s, _ := open(t, e)
	if page, err := s.AuditEvents(ctx, domain.AuditQuery{Limit: 10}); err != nil || len(page.Events) != 0 || page.Next != 0 {
		t.Fatalf("a new store's events: %+v %v", page, err)
	}
	if _, err := s.AuditEvents(ctx, domain.AuditQuery{}); domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("no limit: %v, want %s", err, domain.EINVALID)
	}
	if err := s.AppendAudit(ctx, nextBatch(), nil); err != nil {
		t.Fatal(err)
	}
	var want []string
	for batch := range 5 {
		var events [][]byte
		for i := range batch + 1 {
			ev := fmt.Sprintf(`{"batch":%d,"i":%d}`, batch, i)
			events = append(events, []byte(ev))
			want = append(want, ev)
		}
		if err := s.AppendAudit(ctx, nextBatch(), events); err != nil {
			t.Fatal(err)
		}
	}
	got := listAudit(t, s)
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
	// Pages of 4 cut batches in the middle; each full page's cursor starts the next one.
	var paged []string
	var after int64
	for range 10 {
		page, err := s.AuditEvents(ctx, domain.AuditQuery{After: after, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, strs(page.Events)...)
		if page.Next == 0 {
			if len(page.Events) == 4 {
				t.Fatal("a full page without a cursor")
			}
			break
		}
		after = page.Next
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("paged by 4:\n got %q\nwant %q", paged, want)
	}
	// The filter is applied before the limit: two pages of batch 4's events.
	inBatch4 := func(ev []byte) bool { return strings.HasPrefix(string(ev), `{"batch":4,`) }
	page, err := s.AuditEvents(ctx, domain.AuditQuery{Limit: 3, Match: inBatch4})
	if err != nil || !slices.Equal(strs(page.Events), want[10:13]) || page.Next == 0 {
		t.Fatalf("batch 4, first 3: %q next %d %v", strs(page.Events), page.Next, err)
	}
	page, err = s.AuditEvents(ctx, domain.AuditQuery{After: page.Next, Limit: 3, Match: inBatch4})
	if err != nil || !slices.Equal(strs(page.Events), want[13:15]) || page.Next != 0 {
		t.Fatalf("batch 4, the rest: %q next %d %v", strs(page.Events), page.Next, err)
	}
	// 15 events in batches of 1..5; keeping 7 keeps the last two batches (9 events). A
	// cursor into what was pruned starts at the oldest kept.
	if err := s.PruneAudit(ctx, 7); err != nil {
		t.Fatal(err)
	}
	got = listAudit(t, s)
	if !slices.Equal(got, want[6:]) {
		t.Fatalf("after pruning to 7:\n got %q\nwant %q", got, want[6:])
	}
	if page, err := s.AuditEvents(ctx, domain.AuditQuery{After: 2, Limit: 1}); err != nil || !slices.Equal(strs(page.Events), want[6:7]) {
		t.Fatalf("a pruned cursor: %q %v", strs(page.Events), err)
	}
	// Many batches: a page reads on past the store's first read.
	for i := range 70 {
		if err := s.AppendAudit(ctx, nextBatch(), [][]byte{fmt.Appendf(nil, `{"many":%d}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := listAudit(t, s); len(got) != 9+70 || got[len(got)-1] != `{"many":69}` {
		t.Fatalf("after 70 more batches: %d events, last %q", len(got), got[len(got)-1])
	}
}

// An audit batch appended again under its id (a retry after an error whose outcome was
// unknown) is kept once; another id keeps the same events again.
func testAuditBatchKeptOnce(t *testing.T, e Engine) {
	s, _ := seeded(t, e)
	events := [][]byte{[]byte(`{"retried":1}`), []byte(`{"retried":2}`)}
	id := nextBatch()
	for range 3 {
		if err := s.AppendAudit(ctx, id, events); err != nil {
			t.Fatal(err)
		}
	}
	if got := listAudit(t, s); !slices.Equal(got, []string{`{"retried":1}`, `{"retried":2}`}) {
		t.Fatalf("one batch appended three times under its id: %q, want its 2 events once", got)
	}
	if err := s.AppendAudit(ctx, nextBatch(), events); err != nil {
		t.Fatal(err)
	}
	// A full page's cursor is its last event's number: the appends that kept nothing took
	// no numbers.
	page, err := s.AuditEvents(ctx, domain.AuditQuery{Limit: 4})
	if err != nil || len(page.Events) != 4 || page.Next != 4 {
		t.Fatalf("the same events under another id: %q (cursor %d) %v, want 4 events numbered 1 to 4", strs(page.Events), page.Next, err)
	}
}

// nextBatch names an audit batch, a new name each call.
func nextBatch() string { return fmt.Sprintf("storetest-%d", batchSeq.Add(1)) }

var batchSeq atomic.Int64

// listAudit reads every kept event in one page.
func listAudit(t *testing.T, s domain.Store) []string {
	t.Helper()
	page, err := s.AuditEvents(ctx, domain.AuditQuery{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return strs(page.Events)
}

func strs(raw [][]byte) []string {
	out := make([]string, len(raw))
	for i, r := range raw {
		out[i] = string(r)
	}
	return out
}

// setting reads the suite's setting, creating it with random bytes if it is missing.
func setting(s domain.Store) ([]byte, error) {
	return s.Setting(ctx, "suite_key", func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	})
}

func testSetting(t *testing.T, e Engine) {
	s, _ := open(t, e)
	k1, err := setting(s)
	if err != nil || len(k1) != 32 {
		t.Fatalf("Setting: %d bytes, %v", len(k1), err)
	}
	called := false
	k2, err := s.Setting(ctx, "suite_key", func() ([]byte, error) { called = true; return []byte("other"), nil })
	if err != nil || !slices.Equal(k1, k2) || called {
		t.Fatalf("a kept setting was made again (called %v) or changed: %v", called, err)
	}
	boom := errors.New("no entropy")
	if _, err := s.Setting(ctx, "other_key", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("create's error: %v", err)
	}
	// Created at once by several Stores (replicas) or goroutines, on a database of their
	// own: one value, for all.
	ss := also(t, e, 4, open)
	got := make([][]byte, len(ss))
	var wg sync.WaitGroup
	for i, st := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = st.Setting(ctx, "raced_key", func() ([]byte, error) { return []byte(fmt.Sprintf("made by %d", i)), nil })
		}()
	}
	wg.Wait()
	for i := range got {
		if len(got[i]) == 0 || !slices.Equal(got[i], got[0]) {
			t.Fatalf("concurrent creates returned different values: %q", got)
		}
	}
}

// stores returns n stores on one database with the demo seed, as also makes them.
func stores(t *testing.T, e Engine, n int) []domain.Store {
	return also(t, e, n, seeded)
}

// also returns n stores on one database that first opens: n of them where the engine is
// shared, else its one store n times.
func also(t *testing.T, e Engine, n int, first func(*testing.T, Engine) (domain.Store, func(*testing.T) domain.Store)) []domain.Store {
	s, reopen := first(t, e)
	out := []domain.Store{s}
	for len(out) < n {
		if e.Shared {
			out = append(out, reopen(t))
		} else {
			out = append(out, s)
		}
	}
	return out
}

func testConcurrentUpdates(t *testing.T, e Engine) {
	ss := stores(t, e, 3)
	const workers, each = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := ss[w%len(ss)]
			for range each {
				if _, err := s.UpdateInstance(ctx, crnA1, domain.AddUsage(0.5)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, s := range ss {
		in, err := s.Instance(ctx, crnA1)
		if err != nil || in.ConsumedSeconds != 30+workers*each*0.5 {
			t.Fatalf("store %d: consumed %v (%v), want %v: an update was lost", i, in.ConsumedSeconds, err, 30+workers*each*0.5)
		}
	}
}

// Usage recorded while limits are set: every limit that was kept was at least the
// consumed seconds it was checked against, and those were the latest committed.
func testLimitRuleConcurrent(t *testing.T, e Engine) {
	ss := stores(t, e, 2)
	var wg sync.WaitGroup
	type outcome struct {
		limit    int64
		consumed float64
		err      error
	}
	results := make(chan outcome, 200)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 60 {
			if _, err := ss[0].UpdateInstance(ctx, crnA1, domain.AddUsage(1)); err != nil {
				results <- outcome{err: err}
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 60 {
			limit := int64(31 + i)
			in, err := ss[1%len(ss)].UpdateInstance(ctx, crnA1, domain.SetLimit(&limit))
			o := outcome{limit: limit, err: err}
			if in != nil {
				o.consumed = in.ConsumedSeconds
			}
			results <- o
		}
	}()
	wg.Wait()
	close(results)
	for o := range results {
		switch {
		case o.limit == 0:
			t.Fatalf("recording usage failed: %v", o.err)
		case o.err == nil && float64(o.limit) < o.consumed:
			t.Fatalf("limit %d kept below %v consumed seconds", o.limit, o.consumed)
		case o.err != nil && domain.ErrorCode(o.err) != domain.ECONFLICT:
			t.Fatalf("limit %d: %v", o.limit, o.err)
		}
	}
	in, _ := ss[0].Instance(ctx, crnA1)
	if in.ConsumedSeconds != 90 {
		t.Fatalf("consumed %v, want 90", in.ConsumedSeconds)
	}
}

// Many changes at once, some refused by their rule: each refused one fails alone with its
// own error, and every other one is kept (an engine that commits changes in groups must not
// fail a group for one change).
func testRefusedChangeFailsAlone(t *testing.T, e Engine) {
	ss := stores(t, e, 2)
	const n = 60
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			change := domain.AddUsage(1)
			if i%2 == 1 {
				change = domain.SetLimit(ptr[int64](1)) // always below the consumed seconds: 409
			}
			_, errs[i] = ss[i%len(ss)].UpdateInstance(ctx, crnA1, change)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 && err != nil {
			t.Errorf("change %d (usage) failed beside a refused one: %v", i, err)
		}
		if i%2 == 1 && domain.ErrorCode(err) != domain.ECONFLICT {
			t.Errorf("change %d (a limit below the usage): %v, want a conflict", i, err)
		}
	}
	in, err := ss[0].Instance(ctx, crnA1)
	if err != nil || in.ConsumedSeconds != 30+n/2 || in.InstanceLimitSeconds != nil {
		t.Fatalf("after the changes: %+v %v, want %d consumed and no limit", in, err, 30+n/2)
	}
}

func testConcurrentLoadIfEmpty(t *testing.T, e Engine) {
	ss := also(t, e, 3, open)
	s := ss[0]
	var wg sync.WaitGroup
	var mu sync.Mutex
	loads := 0
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loaded, err := s.LoadIfEmpty(ctx, seed.Demo())
			if err != nil {
				t.Error(err)
			}
			if loaded {
				mu.Lock()
				loads++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if loads != 1 {
		t.Fatalf("%d of %d concurrent LoadIfEmpty calls loaded, want exactly 1", loads, len(ss))
	}
	if ins, err := s.AccountInstances(ctx, acctDemo); err != nil || len(ins) != 2 {
		t.Fatalf("after the concurrent loads: %d instances, %v", len(ins), err)
	}
}

func testDurable(t *testing.T, e Engine) {
	if !e.Durable {
		t.Skip("this engine keeps nothing once closed (an in-memory database)")
	}
	opener := e.NewDatabase(t)
	s := opener(t)
	if _, err := s.LoadIfEmpty(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	limit := int64(77)
	if _, err := s.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
		t.Fatal(err)
	}
	key, _ := setting(s)
	s.AppendAudit(ctx, nextBatch(), [][]byte{[]byte(`{}`)})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = opener(t)
	defer s.Close()
	in, err := s.Instance(ctx, crnA1)
	if err != nil || in.InstanceLimitSeconds == nil || *in.InstanceLimitSeconds != 77 || in.ConsumedSeconds != 30 {
		t.Fatalf("after reopening: %+v %v", in, err)
	}
	key2, _ := setting(s)
	if !slices.Equal(key, key2) {
		t.Fatal("the signing key changed across a reopen")
	}
	if loaded, _ := s.LoadIfEmpty(ctx, seed.Demo()); loaded {
		t.Fatal("a reopened database was seeded again")
	}
	if ev := listAudit(t, s); len(ev) != 1 {
		t.Fatalf("%d audit events after reopening, want 1", len(ev))
	}
}

func testShared(t *testing.T, e Engine) {
	if !e.Shared {
		t.Skip("this engine serves one process: one Store at a time on a database")
	}
	a, reopen := seeded(t, e)
	b := reopen(t)
	// What one store commits, the other reads at once: no cache may hide it.
	for i := range 20 {
		limit := int64(100 + i)
		if _, err := a.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
			t.Fatal(err)
		}
		in, err := b.Instance(ctx, crnA1)
		if err != nil || *in.InstanceLimitSeconds != float64(limit) {
			t.Fatalf("round %d: the other store reads %v (%v), want %d", i, in.InstanceLimitSeconds, err, limit)
		}
		if _, err := b.UpdateInstance(ctx, crnA1, domain.AddUsage(1)); err != nil {
			t.Fatal(err)
		}
		if in, _ := a.Instance(ctx, crnA1); in.ConsumedSeconds != float64(31+i) {
			t.Fatalf("round %d: consumed %v through the first store", i, in.ConsumedSeconds)
		}
	}
	// Identities read through a store before a Load through the other answer the loaded state.
	if _, _, err := a.Identity(ctx, "IBMid-demo-admin"); err != nil {
		t.Fatal(err)
	}
	small := &domain.Seed{Accounts: []domain.SeedAccount{{ID: acctOther}}}
	if err := b.Load(ctx, small); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Identity(ctx, "IBMid-demo-admin"); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("after a Load through the other store, a removed principal: %v", err)
	}
	if _, err := a.Instance(ctx, crnA1); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("after a Load through the other store, a removed instance: %v", err)
	}
	ka, _ := setting(a)
	kb, _ := setting(b)
	if !slices.Equal(ka, kb) {
		t.Fatal("two stores on one database sign with different keys")
	}
	a.AppendAudit(ctx, nextBatch(), [][]byte{[]byte(`{"from":"a"}`)})
	b.AppendAudit(ctx, nextBatch(), [][]byte{[]byte(`{"from":"b"}`)})
	if ea, eb := listAudit(t, a), listAudit(t, b); !slices.Equal(ea, eb) || len(ea) != 2 {
		t.Fatalf("audit lists differ between stores: %q %q", ea, eb)
	}
}

func ids(rules []domain.FaultRule) []string {
	out := []string{}
	for _, r := range rules {
		out = append(out, r.ID)
	}
	return out
}

func testFaults(t *testing.T, e Engine) {
	s, _ := seeded(t, e)
	now := time.Now()
	if all, err := s.Faults(ctx); err != nil || len(all) != 0 || all == nil {
		t.Fatalf("a new store's fault rules: %v %v", all, err)
	}
	ra := 7
	p := 0.5
	seedV := int64(42)
	exp := now.Add(time.Hour).UTC().Truncate(time.Microsecond)
	rules := []*domain.FaultRule{
		{ID: "f1", Operation: "get_instance", Status: 503, RetryAfterSeconds: &ra, Count: 2, CreatedAt: now.UTC()},
		{ID: "f2", Instance: crnA1, Principal: "IBMid-demo-admin", DelayMS: 100, Probability: &p, Seed: &seedV, ExpiresAt: &exp},
		{ID: "f3", Reset: true},
	}
	for _, r := range rules {
		if err := s.AddFault(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Faults(ctx)
	if err != nil || !slices.Equal(ids(all), []string{"f1", "f2", "f3"}) {
		t.Fatalf("rules: %v %v", ids(all), err)
	}
	if !reflect.DeepEqual(all[1], *rules[1]) || *all[0].RetryAfterSeconds != 7 || !all[0].CreatedAt.Equal(rules[0].CreatedAt) {
		t.Fatalf("a rule kept and read back:\n got %+v\nwant %+v", all[1], *rules[1])
	}
	if err := s.AddFault(ctx, &domain.FaultRule{ID: "f1", Status: 500}); err == nil {
		t.Fatal("a second rule with a kept id was kept")
	}
	// A count fires exactly that often, then the rule is spent and no longer live.
	for i, want := range []bool{true, true, false} {
		fired, err := s.TakeFault(ctx, "f1", now)
		if err != nil || fired != want {
			t.Fatalf("take %d of a count-2 rule: %v %v, want %v", i+1, fired, err, want)
		}
	}
	live, err := s.LiveFaults(ctx, now)
	if err != nil || !slices.Equal(ids(live), []string{"f2", "f3"}) {
		t.Fatalf("live after f1 is spent: %v %v", ids(live), err)
	}
	all, _ = s.Faults(ctx)
	if all[0].Hits != 2 || all[0].Seen != 2 {
		t.Fatalf("f1 counts: seen %d hits %d, want 2 and 2", all[0].Seen, all[0].Hits)
	}
	// A seeded probability fires on the draws of its seed, as domain.SeededDraw says.
	for n := int64(1); n <= 20; n++ {
		fired, err := s.TakeFault(ctx, "f2", now)
		if err != nil || fired != (domain.SeededDraw(42, n) < 0.5) {
			t.Fatalf("seeded draw %d: %v %v", n, fired, err)
		}
	}
	// Expiry by time.
	if live, _ := s.LiveFaults(ctx, exp); !slices.Equal(ids(live), []string{"f3"}) {
		t.Fatalf("live at f2's expiry: %v", ids(live))
	}
	if fired, err := s.TakeFault(ctx, "f2", exp); fired || err != nil {
		t.Fatalf("an expired rule fired: %v %v", fired, err)
	}
	if fired, err := s.TakeFault(ctx, "nope", now); fired || err != nil {
		t.Fatalf("a missing rule: %v %v", fired, err)
	}
	// Delete one, an unknown one, then all; a Load removes them too.
	wantCode(t, "delete unknown", s.DeleteFault(ctx, "nope"), domain.ENOTFOUND)
	if err := s.DeleteFault(ctx, "f3"); err != nil {
		t.Fatal(err)
	}
	if live, _ := s.LiveFaults(ctx, now); !slices.Equal(ids(live), []string{"f2"}) {
		t.Fatalf("live after deleting f3: %v", ids(live))
	}
	if err := s.ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}
	if live, _ := s.LiveFaults(ctx, now); len(live) != 0 {
		t.Fatalf("live after clearing: %v", ids(live))
	}
	s.AddFault(ctx, &domain.FaultRule{ID: "f4", Status: 500})
	if live, _ := s.LiveFaults(ctx, now); !slices.Equal(ids(live), []string{"f4"}) {
		t.Fatalf("live after adding f4: %v", ids(live))
	}
	if err := s.Load(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	if live, _ := s.LiveFaults(ctx, now); len(live) != 0 {
		t.Fatalf("live after a Load: %v", ids(live))
	}
}

// Concurrent takes of a count rule fire exactly count times.
func testFaultCountExact(t *testing.T, e Engine) {
	s, reopen := seeded(t, e)
	stores := []domain.Store{s}
	if e.Shared {
		stores = append(stores, reopen(t), reopen(t))
	}
	if err := s.AddFault(ctx, &domain.FaultRule{ID: "c", Status: 503, Count: 25}); err != nil {
		t.Fatal(err)
	}
	var fired sync.Map
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := stores[w%len(stores)]
			for i := range 10 {
				ok, err := st.TakeFault(ctx, "c", time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					fired.Store(fmt.Sprint(w, i), true)
				}
			}
		}()
	}
	wg.Wait()
	n := 0
	fired.Range(func(any, any) bool { n++; return true })
	if n != 25 {
		t.Fatalf("a count-25 rule fired %d times over 80 concurrent takes", n)
	}
	for i, st := range stores {
		if live, err := st.LiveFaults(ctx, time.Now()); err != nil || len(live) != 0 {
			t.Fatalf("store %d still lists the spent rule live: %v %v", i, ids(live), err)
		}
	}
}

// A rule added, spent or deleted through one store is what the others match at once.
func testSharedFaults(t *testing.T, e Engine) {
	if !e.Shared {
		t.Skip("this engine serves one process: one Store at a time on a database")
	}
	a, reopen := seeded(t, e)
	b := reopen(t)
	now := time.Now()
	for i := range 10 {
		if live, _ := b.LiveFaults(ctx, now); len(live) != 0 { // b caches that there are none
			t.Fatalf("round %d: b lists %v before the add", i, ids(live))
		}
		id := fmt.Sprint("r", i)
		if err := a.AddFault(ctx, &domain.FaultRule{ID: id, Status: 500, Count: 1}); err != nil {
			t.Fatal(err)
		}
		if live, _ := b.LiveFaults(ctx, now); !slices.Equal(ids(live), []string{id}) {
			t.Fatalf("round %d: after an add through a, b lists %v", i, ids(live))
		}
		if fired, err := a.TakeFault(ctx, id, now); !fired || err != nil {
			t.Fatalf("round %d: take: %v %v", i, fired, err)
		}
		if live, _ := b.LiveFaults(ctx, now); len(live) != 0 {
			t.Fatalf("round %d: after a spent the rule, b lists %v", i, ids(live))
		}
	}
	a.AddFault(ctx, &domain.FaultRule{ID: "d", Status: 500})
	b.LiveFaults(ctx, now)
	if err := a.DeleteFault(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if live, _ := b.LiveFaults(ctx, now); len(live) != 0 {
		t.Fatalf("after a delete through a, b lists %v", ids(live))
	}
}
