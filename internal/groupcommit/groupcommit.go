// Package groupcommit is the queue in front of an engine's writes to instances: callers
// queue a change, one goroutine hands every change queued at that moment to the engine,
// which commits them in one transaction (one fsync), and each caller is answered only
// after the commit that holds its change — and after whatever the engine must wait for
// before the change may be seen as done (PostgreSQL: the other replicas' caches). The
// engines share it so that they cannot drift on when a write is answered.
package groupcommit

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/qrapi/qrapi/domain"
)

// MaxGroup bounds the changes committed together.
const MaxGroup = 256

// ErrClosed answers a change queued to a closed queue.
var ErrClosed = errors.New("the store is closed")

// Request is one queued change.
type Request struct {
	CRN    string
	Change domain.Change
	ctx    context.Context
	done   chan Result
}

// Result is a change's outcome: the instance it left, or why it was refused.
type Result struct {
	Instance *domain.Instance
	Err      error
}

// CommitFunc commits a group's changes in one transaction, in order, each on a copy so
// that a refused change fails alone (its Result's Err), and fills results. An error it
// returns fails the whole group. wait, if not nil, must return before the callers are
// answered; its error fails the group too.
type CommitFunc func(group []*Request, results []Result) (wait func() error, err error)

// CRNs are the instances a group changes, each once, sorted: the order in which every
// engine reads, locks and writes them.
func CRNs(group []*Request) []string {
	crns := make([]string, 0, len(group))
	for _, r := range group {
		crns = append(crns, r.CRN)
	}
	slices.Sort(crns)
	return slices.Compact(crns)
}

// Apply runs a group's changes, in order, each on a copy of its instance as the changes
// before it left it: a refused change fails alone (its Result's Err) and leaves the
// instance as it was; a CRN that current lacks is InstanceNotFound. current holds the
// instances as stored and is left holding what the group makes of them; Apply returns the
// CRNs it changed, sorted, for the engine to write.
func Apply(group []*Request, results []Result, current map[string]*domain.Instance) []string {
	var changed []string
	for i, r := range group {
		in := current[r.CRN]
		if in == nil {
			results[i].Err = domain.InstanceNotFound(r.CRN)
			continue
		}
		next := in.Clone()
		if err := r.Change(next); err != nil {
			results[i].Err = err
			continue
		}
		current[r.CRN] = next
		changed = append(changed, r.CRN)
		results[i].Instance = next.Clone()
	}
	slices.Sort(changed)
	return slices.Compact(changed)
}

// Queue runs the group commits of one store.
type Queue struct {
	reqs    chan *Request
	stop    context.CancelFunc
	done    chan struct{}
	waiting sync.WaitGroup // groups committed, being waited for
}

// Start starts a queue that commits with commit.
func Start(commit CommitFunc) *Queue {
	ctx, stop := context.WithCancel(context.Background())
	q := &Queue{reqs: make(chan *Request, MaxGroup), stop: stop, done: make(chan struct{})}
	go q.loop(ctx, commit)
	return q
}

// Do queues a change to an instance and returns its outcome once it is committed.
func (q *Queue) Do(ctx context.Context, crn string, change domain.Change) (*domain.Instance, error) {
	r := &Request{CRN: crn, Change: change, ctx: ctx, done: make(chan Result, 1)}
	select {
	case q.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-q.done:
		return nil, ErrClosed
	}
	select {
	case res := <-r.done:
		return res.Instance, res.Err
	case <-q.done:
		// Closed: the change was answered by the final drain, or is in a committed group
		// being answered, or came after the drain and will never be taken.
		q.waiting.Wait()
		select {
		case res := <-r.done:
			return res.Instance, res.Err
		default:
			return nil, ErrClosed
		}
	}
}

// Close stops taking changes, answers the queued ones with ErrClosed, and waits until every
// committed group has been answered.
func (q *Queue) Close() {
	q.stop()
	<-q.done
	q.waiting.Wait()
}

func (q *Queue) loop(ctx context.Context, commit CommitFunc) {
	defer func() {
		close(q.done)
		for { // answer what was queued while the queue closed
			select {
			case r := <-q.reqs:
				r.done <- Result{Err: ErrClosed}
			default:
				return
			}
		}
	}()
	for {
		var group []*Request
		select {
		case <-ctx.Done():
			return
		case r := <-q.reqs:
			group = append(group, r)
		}
	take:
		for len(group) < MaxGroup {
			select {
			case r := <-q.reqs:
				group = append(group, r)
			default:
				break take
			}
		}
		q.commit(group, commit)
	}
}

func (q *Queue) commit(group []*Request, commit CommitFunc) {
	live := group[:0:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- Result{Err: err} // its caller is gone: nothing to do
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	results := make([]Result, len(live))
	wait, err := commit(live, results)
	answer := func(err error) {
		for i, r := range live {
			if err != nil {
				r.done <- Result{Err: err}
			} else {
				r.done <- results[i]
			}
		}
	}
	if err != nil || wait == nil {
		answer(err)
		return
	}
	// The next group may commit while this one waits; its callers are answered when it is done.
	q.waiting.Add(1)
	go func() {
		defer q.waiting.Done()
		answer(wait())
	}()
}
