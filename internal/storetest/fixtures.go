package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/qrapi/qrapi/domain"
)

// fixture completes a small document: one account, one instance with 12 s consumed, one
// principal with a generated key.
func fixture(t *testing.T) (*domain.Fixture, string) {
	t.Helper()
	f, keys, err := domain.NewFixture(&domain.Seed{
		Accounts:   []domain.SeedAccount{{}},
		Instances:  []domain.SeedInstance{{PlanID: "p", UsageConsumedSeconds: 12, UsagePeriod: &domain.SeedUsagePeriod{Relative: domain.CurrentMonth}}},
		Principals: []domain.SeedPrincipal{{}},
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return f, keys[f.Seed.Principals[0].ID][0]
}

// A fixture's state is there once AddFixture returns, through every store on the database
// and after a reopen; its key finds its principal; Reset puts back what a change moved;
// Delete takes everything it made, and its scoped fault rules; a taken name is a 409
// naming the field, and nothing of that fixture is kept.
func testFixtures(t *testing.T, e Engine) {
	s, reopen := seeded(t, e)
	f, key := fixture(t)
	now := time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)
	if err := s.AddFixture(ctx, f, now); err != nil {
		t.Fatal(err)
	}
	other := s
	if e.Shared {
		other = reopen(t) // another replica
	}
	crn := f.Seed.Instances[0].CRN
	in, err := other.Instance(ctx, crn)
	if err != nil || in.FixtureID != f.ID || in.ConsumedSeconds != 12 || !in.UsagePeriod.Start.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("the fixture's instance: %+v %v", in, err)
	}
	p, err := other.PrincipalByAPIKey(ctx, key)
	if err != nil || p.ID != f.Seed.Principals[0].ID || p.FixtureID != f.ID {
		t.Fatalf("the fixture's key: %+v %v", p, err)
	}
	if got, err := other.Fixture(ctx, f.ID); err != nil || got.Seed.Instances[0].CRN != crn || len(got.KeyHashes[p.ID]) != 1 || !got.CreatedAt.Equal(f.CreatedAt) {
		t.Fatalf("the fixture read back: %+v %v", got, err)
	}
	again, _ := fixture(t)
	again.Seed.Principals[0].ID = p.ID
	if err := s.AddFixture(ctx, again, now); domain.ErrorCode(err) != domain.ECONFLICT || domain.AsError(err).Target.Name != "principals[0].id" {
		t.Fatalf("a fixture with a taken principal id: %v", err)
	}
	if _, err := other.Instance(ctx, again.Seed.Instances[0].CRN); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("a refused fixture's instance was kept: %v", err)
	}

	if _, err := s.UpdateInstance(ctx, crn, domain.AddUsage(100)); err != nil {
		t.Fatal(err)
	}
	if err := other.ResetFixture(ctx, f.ID, now); err != nil {
		t.Fatal(err)
	}
	if in, _ := s.Instance(ctx, crn); in == nil || in.ConsumedSeconds != 12 {
		t.Fatalf("after a reset: %+v", in)
	}
	if e.Durable {
		s.Close()
		s = reopen(t)
		if !e.Shared {
			other = s
		}
		if fs, err := s.Fixtures(ctx); err != nil || len(fs) != 1 || fs[0].ID != f.ID {
			t.Fatalf("fixtures after a reopen: %+v %v", fs, err)
		}
	}
	rule := &domain.FaultRule{ID: "scoped", Fixture: f.ID, Status: 503, CreatedAt: now}
	if err := s.AddFault(ctx, rule); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteFixture(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Instance(ctx, crn); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("a deleted fixture's instance: %v", err)
	}
	if _, err := s.PrincipalByAPIKey(ctx, key); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("a deleted fixture's key: %v", err)
	}
	if rules, _ := s.Faults(ctx); len(rules) != 0 {
		t.Fatalf("a deleted fixture's rule: %+v", rules)
	}
	if err := s.DeleteFixture(ctx, f.ID); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("deleting again: %v", err)
	}
	if err := s.AddFault(ctx, rule); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("a rule scoped to a deleted fixture: %v", err)
	}
	if _, err := s.Instance(ctx, crnA1); err != nil {
		t.Fatalf("the seed's instance after a fixture's delete: %v", err)
	}
}

// Fixtures made at once through several stores are all kept, each whole; past
// domain.MaxFixtures the next is refused with the limit's 409.
func testFixtureLimit(t *testing.T, e Engine) {
	s, reopen := seeded(t, e)
	stores := []domain.Store{s}
	if e.Shared {
		stores = append(stores, reopen(t))
	}
	var wg sync.WaitGroup
	errs := make(chan error, domain.MaxFixtures)
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < domain.MaxFixtures; i += workers {
				f, _, err := domain.NewFixture(&domain.Seed{Accounts: []domain.SeedAccount{{}}, Principals: []domain.SeedPrincipal{}}, time.Now())
				if err == nil {
					err = stores[i%len(stores)].AddFixture(ctx, f, time.Now())
				}
				if err != nil {
					errs <- fmt.Errorf("fixture %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f, _ := fixture(t)
	err := s.AddFixture(ctx, f, time.Now())
	if domain.ErrorCode(err) != domain.ECONFLICT || domain.AsError(err).Reason != "fixture_limit" {
		t.Fatalf("fixture %d: %v", domain.MaxFixtures+1, err)
	}
	if fs, err := s.Fixtures(ctx); err != nil || len(fs) != domain.MaxFixtures {
		t.Fatalf("%d fixtures kept (%v), want %d", len(fs), err, domain.MaxFixtures)
	}
}
