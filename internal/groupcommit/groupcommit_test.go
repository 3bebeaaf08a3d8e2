package groupcommit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrapi/qrapi/domain"
)

var noop = domain.Change(func(*domain.Instance) error { return nil })

// Changes queued while a commit runs are committed together in the next one, and each
// caller gets its own result.
func TestChangesQueuedTogetherShareACommit(t *testing.T) {
	var commits atomic.Int32
	release := make(chan struct{})
	q := Start(func(group []*Request, results []Result) (func() error, error) {
		if commits.Add(1) == 1 {
			<-release // the first commit holds the writer while the others queue
		}
		for i, r := range group {
			results[i].Instance = &domain.Instance{CRN: r.CRN}
		}
		return nil, nil
	})
	defer q.Close()
	first := make(chan error, 1)
	go func() { _, err := q.Do(context.Background(), "first", noop); first <- err }()
	for commits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			crn := string(rune('a' + i))
			in, err := q.Do(context.Background(), crn, noop)
			if err != nil || in.CRN != crn {
				t.Errorf("change %s: %v %v", crn, in, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // the 20 are queued behind the first commit
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := commits.Load(); n != 2 {
		t.Fatalf("%d commits for 21 changes, 20 of them queued together: want 2", n)
	}
}

// A caller is answered only once the group's wait returned, with the wait's error if any;
// an error of the commit fails every change of its group.
func TestAnswersWaitForTheGroup(t *testing.T) {
	boom := errors.New("replica did not acknowledge")
	var waited atomic.Bool
	q := Start(func(group []*Request, results []Result) (func() error, error) {
		switch group[0].CRN {
		case "fail":
			return nil, boom
		case "slow":
			return func() error { time.Sleep(100 * time.Millisecond); waited.Store(true); return nil }, nil
		default:
			return func() error { return boom }, nil
		}
	})
	defer q.Close()
	if _, err := q.Do(context.Background(), "slow", noop); err != nil || !waited.Load() {
		t.Fatalf("answered before the wait returned (%v, waited %v)", err, waited.Load())
	}
	if _, err := q.Do(context.Background(), "fail", noop); !errors.Is(err, boom) {
		t.Fatalf("a failed commit: %v", err)
	}
	if _, err := q.Do(context.Background(), "waitfails", noop); !errors.Is(err, boom) {
		t.Fatalf("a failed wait: %v", err)
	}
}

// A caller that is gone is not committed; a closed queue answers ErrClosed.
func TestCancelledAndClosed(t *testing.T) {
	var committed atomic.Int32
	q := Start(func(group []*Request, results []Result) (func() error, error) {
		committed.Add(int32(len(group)))
		return nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Do(ctx, "gone", noop); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled caller: %v", err)
	}
	q.Close()
	if _, err := q.Do(context.Background(), "late", noop); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if committed.Load() != 0 {
		t.Fatalf("%d changes committed, want none", committed.Load())
	}
}
