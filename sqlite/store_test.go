package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/storetest"
	"github.com/qrapi/qrapi/seed"
	"github.com/qrapi/qrapi/sqlite"
)

const crnA1 = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::"

func openT(t *testing.T, path string) domain.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The conformance suite on a database file.
func TestConformanceFile(t *testing.T) {
	storetest.Run(t, storetest.Engine{
		Durable: true,
		NewDatabase: func(t *testing.T) func(*testing.T) domain.Store {
			path := filepath.Join(t.TempDir(), "q.db")
			return func(t *testing.T) domain.Store { return openT(t, path) }
		},
	})
}

// The conformance suite on :memory:.
func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, storetest.Engine{
		NewDatabase: func(t *testing.T) func(*testing.T) domain.Store {
			return func(t *testing.T) domain.Store { return openT(t, sqlite.Memory) }
		},
	})
}

// A second process (here: a second Open) on a database file in use is refused at once
// with a message that says what to do, and may open it once the first closes it.
func TestSecondOpenIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(ctx, path); !errors.Is(err, sqlite.ErrLocked) {
		t.Fatalf("a second Open on a file in use: %v, want ErrLocked", err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open after the first closed: %v", err)
	}
	s.Close()
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
				if _, err := s.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
					t.Error(err)
				}
				after, err := s.UpdateInstance(ctx, crnA1, domain.AddUsage(1))
				if err != nil {
					t.Error(err)
					continue
				}
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
