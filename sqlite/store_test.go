package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/seed"
	"github.com/qrapi/qrapi/sqlite"
)

const crnA1 = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::"

// State written to a file survives closing and reopening: the schema is not re-applied,
// the data and the signing key stay.
func TestReopenKeepsStateAndKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if empty, _ := s.Empty(ctx); !empty {
		t.Fatal("a new database is not empty")
	}
	if err := s.Load(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	limit := int64(77)
	if err := s.SetInstanceLimit(ctx, crnA1, &limit); err != nil {
		t.Fatal(err)
	}
	key, _ := s.SigningKey(ctx)
	s.Close()

	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	in, err := s.Instance(ctx, crnA1)
	if err != nil || in.InstanceLimitSeconds == nil || *in.InstanceLimitSeconds != 77 || in.UsagePeriod == nil || in.ConsumedSeconds != 30 {
		t.Fatalf("after reopen: %+v %v", in, err)
	}
	key2, _ := s.SigningKey(ctx)
	if len(key) != 32 || !bytes.Equal(key, key2) {
		t.Fatal("the signing key changed")
	}
	if empty, _ := s.Empty(ctx); empty {
		t.Fatal("reopened database is empty")
	}
}

func TestStoreRulesAndNotFound(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, sqlite.Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Load(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	low := int64(10)
	if err := s.SetInstanceLimit(ctx, crnA1, &low); domain.ErrorCode(err) != domain.ECONFLICT {
		t.Fatalf("limit below consumed: %v", err)
	}
	if _, err := s.Instance(ctx, "crn:none"); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("missing instance: %v", err)
	}
	if _, err := s.Account(ctx, "nobody"); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("missing account: %v", err)
	}
	if _, err := s.RecordUsage(ctx, crnA1, -1); domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("negative usage: %v", err)
	}
	if _, err := s.PrincipalByAPIKey(ctx, "qrdemo-admin-key-0123456789abcdefghijklmnop"); err != nil {
		t.Fatal(err)
	}
	acct, err := s.Account(ctx, "8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b")
	if err != nil || !acct.Configured || len(acct.Plans) != 3 || acct.Plans[0].PlanID != "flex-plan-id-1" || acct.Plans[0].StartTime == nil {
		t.Fatalf("account: %+v %v", acct, err)
	}

	// Audit events are kept as given, oldest first, in batches; pruning keeps the newest.
	for _, batch := range [][][]byte{{[]byte(`{"n":1}`), []byte(`{"n":2}`)}, {[]byte(`{"n":3}`)}, {[]byte(`{"n":4}`), []byte(`{"n":5}`)}} {
		if err := s.AppendAudit(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.AuditEvents(ctx)
	if err != nil || len(got) != 5 || string(got[0]) != `{"n":1}` || string(got[4]) != `{"n":5}` {
		t.Fatalf("kept: %q %v", got, err)
	}
	if err := s.PruneAudit(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.AuditEvents(ctx); len(got) != 3 || string(got[0]) != `{"n":3}` {
		t.Fatalf("after pruning to the newest 3: %q", got)
	}
	if err := s.PruneAudit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.AuditEvents(ctx); len(got) != 2 || string(got[1]) != `{"n":5}` {
		t.Fatalf("pruning keeps whole batches with the newest event: %q", got)
	}
}

// Concurrent writes leave the cache equal to the database: what a read answers is what
// was committed last.
func TestCacheFollowsConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Load(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Instance(ctx, crnA1); err != nil { // cached from here on
		t.Fatal(err)
	}
	// A reader watches the whole time: consumed seconds only grow, so no read may see
	// fewer than the read before it.
	stop := make(chan struct{})
	watched := make(chan error, 1)
	go func() {
		last := 0.0
		for {
			select {
			case <-stop:
				watched <- nil
				return
			default:
			}
			in, err := s.Instance(ctx, crnA1)
			if err == nil && in.ConsumedSeconds < last {
				watched <- fmt.Errorf("a read saw %v consumed after one saw %v: the cache went back", in.ConsumedSeconds, last)
				return
			}
			if err == nil {
				last = in.ConsumedSeconds
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				limit := int64(1000 + g*100 + i)
				if err := s.SetInstanceLimit(ctx, crnA1, &limit); err != nil {
					t.Error(err)
				}
				after, err := s.RecordUsage(ctx, crnA1, 1)
				if err != nil {
					t.Error(err)
					continue
				}
				// Consumed seconds only grow: a read after this write sees at least as many.
				if read, _ := s.Instance(ctx, crnA1); read.ConsumedSeconds < after.ConsumedSeconds {
					t.Errorf("read %v consumed after a write that left %v: the cache went back", read.ConsumedSeconds, after.ConsumedSeconds)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-watched; err != nil {
		t.Fatal(err)
	}
	cached, _ := s.Instance(ctx, crnA1)
	var fromDB *domain.Instance
	all, err := s.AccountInstances(ctx, "8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b") // always read from SQLite
	if err != nil {
		t.Fatal(err)
	}
	for i := range all {
		if all[i].CRN == crnA1 {
			fromDB = &all[i]
		}
	}
	if fromDB == nil || *cached.InstanceLimitSeconds != *fromDB.InstanceLimitSeconds || cached.ConsumedSeconds != fromDB.ConsumedSeconds || fromDB.ConsumedSeconds != 30+200 {
		t.Fatalf("cache %v/%v, database %v/%v", *cached.InstanceLimitSeconds, cached.ConsumedSeconds, *fromDB.InstanceLimitSeconds, fromDB.ConsumedSeconds)
	}
}
