package postgres

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/postgres/pgtest"
	"github.com/qrapi/qrapi/seed"
)

const crnA1 = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::"

// twoReplicas opens two stores on one seeded database and waits until both hold a lease.
func twoReplicas(t *testing.T) (a, b *Store) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	var err error
	if a, err = Open(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = Open(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := a.Load(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, b} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, ok := s.replica.cache.generation(); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a replica got no lease within 10 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return a, b
}

// seededReplica opens one store on a new database and loads the demo seed into it.
func seededReplica(t *testing.T) (*Store, string) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Load(context.Background(), seed.Demo()); err != nil {
		t.Fatal(err)
	}
	return s, dsn
}

// openReplica opens a store on dsn (log: its warnings), closed when the test ends.
func openReplica(t *testing.T, dsn string, log *slog.Logger) *Store {
	t.Helper()
	s, err := OpenWithLogger(context.Background(), dsn, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitListed waits until each of rs holds a lease and its last renewal listed all the
// others.
func waitListed(t *testing.T, rs ...*Store) {
	t.Helper()
	for _, s := range rs {
		for deadline := time.Now().Add(10 * time.Second); ; {
			s.replica.mu.Lock()
			peers := len(s.replica.peers)
			s.replica.mu.Unlock()
			if _, ok := s.replica.cache.generation(); ok && peers == len(rs)-1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a replica got no lease, or does not list the other %d, within 10 s", len(rs)-1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// A leased replica answers repeated reads from its cache, not the database.
func TestCacheServesReads(t *testing.T) {
	_, b := twoReplicas(t)
	ctx := context.Background()
	if _, err := b.Instance(ctx, crnA1); err != nil {
		t.Fatal(err)
	}
	if b.replica.cache.instance(crnA1) == nil {
		t.Fatal("a read under a lease was not cached")
	}
	if _, _, err := b.Identity(ctx, "IBMid-demo-admin"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := b.replica.cache.identity("IBMid-demo-admin"); !ok {
		t.Fatal("an identity read under a lease was not cached")
	}
}

// A write answers only after a replica that is slow to drop what it changed has dropped
// it: a read through that replica right after the write's answer sees the write.
func TestWriteWaitsForSlowReplica(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	b.replica.slowInvalidation.Store(int64(300 * time.Millisecond))
	for i := range 3 {
		if _, err := b.Instance(ctx, crnA1); err != nil { // cached in b
			t.Fatal(err)
		}
		limit := int64(1000 + i)
		start := time.Now()
		if _, err := a.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		// The write's state reached the other replica's cache with its notification.
		if cached := b.replica.cache.instance(crnA1); cached == nil || *cached.InstanceLimitSeconds != float64(limit) {
			t.Fatalf("round %d: the other replica's cache holds %v, want the written %d", i, cached, limit)
		}
		if got := limitOf(t, b); got != float64(limit) {
			t.Fatalf("round %d: the slow replica reads %v after the write answered (it took %v), want %d", i, got, took, limit)
		}
		if took < 300*time.Millisecond {
			t.Fatalf("round %d: the write answered in %v, before the slow replica could have dropped its copy", i, took)
		}
	}
}

// A replica that does not acknowledge within ackTimeout is fenced: the write answers after
// its lease ran out, and it reads the write; then it takes a lease again.
func TestSilentReplicaIsFenced(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	if _, err := b.Instance(ctx, crnA1); err != nil {
		t.Fatal(err)
	}
	b.replica.slowInvalidation.Store(int64(ackTimeout + leaseTTL + time.Second))
	limit := int64(4242)
	if _, err := a.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
		t.Fatal(err)
	}
	if got := limitOf(t, b); got != 4242 {
		t.Fatalf("a fenced replica reads %v, want 4242", got)
	}
	b.replica.slowInvalidation.Store(0)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, ok := b.replica.cache.generation(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fenced replica took no lease again")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The cache keeps the newest version it has seen, whichever way it came (a read, a
// notification), and a read that raced a drop does not fill.
func TestCacheKeepsNewestVersion(t *testing.T) {
	c := &cache{instances: map[string]*versionedInstance{}, identities: map[string]*identity{}}
	c.renewed(time.Now(), true)
	state := func(limit float64) *domain.Instance {
		return &domain.Instance{CRN: crnA1, Backends: []string{}, InstanceLimitSeconds: &limit}
	}
	limitOf := func() float64 {
		t.Helper()
		in := c.instance(crnA1)
		if in == nil {
			t.Fatal("not cached")
		}
		return *in.InstanceLimitSeconds
	}
	gen, ok := c.generation()
	if !ok {
		t.Fatal("no lease after renewal")
	}
	c.fillInstance(gen, state(5), 5)
	c.apply([]versionedInstance{{in: state(4), version: 4}})
	if limitOf() != 5 {
		t.Fatal("an older notification replaced a newer read")
	}
	c.apply([]versionedInstance{{in: state(6), version: 6}})
	c.fillInstance(gen, state(5), 5)
	if limitOf() != 6 {
		t.Fatal("an older read replaced a newer notification")
	}
	c.applyLines([]string{crnA1}, false)
	c.fillInstance(gen, state(7), 7)
	if c.instance(crnA1) != nil {
		t.Fatal("a read that began before a drop filled the cache")
	}
	c.applyLines([]string{crnA1 + "\t8\t" + `{"CRN":"` + crnA1 + `","Backends":[],"InstanceLimitSeconds":8}`}, false)
	if limitOf() != 8 {
		t.Fatal("a notification's state was not kept")
	}
	c.applyLines([]string{lineDropAll}, false)
	if c.instance(crnA1) != nil {
		t.Fatal("a Load's notification did not drop everything")
	}
	c.lose()
	c.apply([]versionedInstance{{in: state(9), version: 9}})
	if c.instance(crnA1) != nil {
		t.Fatal("a cache without a lease answered")
	}
}

// A lease gained by a replica that no list of live replicas held (new, fenced, or away
// longer than the lists' window) serves nothing for leaseGrace: a writer may hold a list read
// before it was live, and would not wait for it to drop what it changed. Renewals within the
// lease keep serving; a lease regained after a brief lapse, while the lists held the
// replica, serves at once.
func TestNewLeaseWaitsOutTheGrace(t *testing.T) {
	c := &cache{instances: map[string]*versionedInstance{}, identities: map[string]*identity{}}
	c.renewed(time.Now(), false)
	if _, ok := c.generation(); ok {
		t.Fatal("a lease just gained serves from the cache")
	}
	if d := time.Until(c.leaseFrom); d < leaseGrace-100*time.Millisecond {
		t.Fatalf("the grace ends in %s, want about %s", d, leaseGrace)
	}
	c.leaseFrom = time.Now() // as if the grace had passed
	if _, ok := c.generation(); !ok {
		t.Fatal("a lease past its grace does not serve")
	}
	c.renewed(time.Now(), false) // a renewal within the lease: no new grace
	if _, ok := c.generation(); !ok {
		t.Fatal("a renewal within the lease started a grace")
	}
	c.lose()
	c.renewed(time.Now(), false) // regained by a replica no list held
	if _, ok := c.generation(); ok {
		t.Fatal("a lease regained by an unlisted replica serves at once")
	}
	c.lose()
	c.renewed(time.Now(), true) // regained after a brief lapse: every list held it
	if _, ok := c.generation(); !ok {
		t.Fatal("a lease regained after a brief lapse waits out a grace")
	}
	if leaseGrace <= peersMaxAge {
		t.Fatalf("leaseGrace %s must exceed peersMaxAge %s", leaseGrace, peersMaxAge)
	}
}

// A replica that joins while another writes, and is slow to handle notifications, never
// answers a read with less than a write that was answered: the writer may wait on a list of
// live replicas made before the newcomer was live, so the newcomer reads the database until
// its grace has passed.
func TestJoiningReplicaSeesEveryAnsweredWrite(t *testing.T) {
	a, dsn := seededReplica(t)
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); ; {
		a.replica.mu.Lock()
		fresh := !a.replica.peersAt.IsZero()
		a.replica.mu.Unlock()
		if fresh {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a's renewals read no list of peers")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	opened := time.Now()
	b.replica.slowInvalidation.Store(int64(2 * time.Second))
	for i := range 40 {
		limit := int64(1000 + i)
		if _, err := b.Instance(ctx, crnA1); err != nil { // fills b's cache if it may
			t.Fatal(err)
		}
		if _, err := a.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
			t.Fatal(err)
		}
		if got := limitOf(t, b); got != float64(limit) {
			t.Fatalf("round %d, %s after b opened: b reads the limit %v, want the answered %d", i, time.Since(opened).Round(time.Millisecond), got, limit)
		}
		time.Sleep(25 * time.Millisecond) // 40 rounds: past b's grace and a's next renewals
	}
}

// warnings counts the warnings a replica logs.
type warnings struct{ n atomic.Int64 }

func (w *warnings) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		w.n.Add(1)
	}
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

// Each write, through any of three replicas, is answered on the other two's acks, which
// reach the writer on its own channel: no replica is ever fenced, and each replica's cache
// holds every write. A replica does not ack (or re-apply) its own writes.
func TestAcksReachTheirWriter(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	var logged warnings
	var rs []*Store
	for range 3 {
		rs = append(rs, openReplica(t, dsn, slog.New(&logged)))
	}
	if err := rs[0].Load(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	waitListed(t, rs...)
	for i := range 30 {
		w := rs[i%3]
		limit := int64(2000 + i)
		if _, err := w.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
			t.Fatal(err)
		}
		for j, s := range rs {
			if c := s.replica.cache.instance(crnA1); c == nil || *c.InstanceLimitSeconds != float64(limit) {
				t.Fatalf("write %d through replica %d: replica %d's cache holds %v after the answer, want %d", i, i%3, j, c, limit)
			}
		}
	}
	if n := logged.n.Load(); n != 0 {
		t.Fatalf("%d warnings: a write waited for an ack in vain and fenced a replica", n)
	}
	for j, s := range rs {
		if n := s.replica.strayAcks.Load(); n != 0 {
			t.Fatalf("replica %d heard %d acks meant for another writer", j, n)
		}
	}
}

// waitAlone waits until s's last renewal found no other live replica, less than 100 ms ago,
// so that a write made now goes by that list.
func waitAlone(t *testing.T, s *Store) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if at, alone := s.replica.alone(); alone && time.Since(at) < 100*time.Millisecond {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica never read an empty, fresh list of peers")
		}
		time.Sleep(time.Millisecond)
	}
}

// A replica alone writes without notifying; if its commit outlasts the list of peers it
// went by, a replica that became live meanwhile, and filled its cache before the commit,
// is told and acks before the write answers.
func TestLoneWriteReachesAReplicaThatJoinedDuringItsCommit(t *testing.T) {
	a, dsn := seededReplica(t)
	ctx := context.Background()
	// Alone, a's write sends no notification: a connection listening hears nothing. (A
	// write whose list went stale before it was made does notify; one of five tries must
	// not have, and on a quiet machine none does.)
	listener, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN "+chanInvalidate); err != nil {
		t.Fatal(err)
	}
	silent := false
	for i := 0; i < 5 && !silent; i++ {
		waitAlone(t, a)
		limit := int64(1111)
		if _, err := a.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		silent = listener.PgConn().WaitForNotification(wctx) != nil
		cancel()
	}
	if !silent {
		t.Fatal("each of five writes made alone was notified")
	}

	lateJoinerSeesSlowLoneWrite(t, a, dsn)
}

// A replica alone whose notification after a slow commit fails fences the other replicas
// and answers once their leases are out: the one that joined during the commit, and
// cached the old state, reads the write after its answer.
func TestLoneWriteFencesWhenItsLateNotificationFails(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	var logged warnings
	a := openReplica(t, dsn, slog.New(&logged))
	ctx := context.Background()
	if err := a.Load(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	limit := int64(1111)
	if _, err := a.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
		t.Fatal(err)
	}
	a.replica.failFollowUp.Store(true)
	lateJoinerSeesSlowLoneWrite(t, a, dsn)
	if logged.n.Load() == 0 {
		t.Fatal("no warning that the notification failed and the replicas were fenced")
	}
}

// lateJoinerSeesSlowLoneWrite: a, alone, writes with its commit held 3 s; b opens
// meanwhile and fills its cache with the old state once its grace has passed, before the
// commit; after a's write answers, b reads it.
func lateJoinerSeesSlowLoneWrite(t *testing.T, a *Store, dsn string) {
	t.Helper()
	ctx := context.Background()
	before, err := a.Instance(ctx, crnA1)
	if err != nil {
		t.Fatal(err)
	}
	a.replica.slowCommit.Store(int64(3 * time.Second))
	waitAlone(t, a)
	limit := int64(2222)
	done := make(chan error, 1)
	go func() {
		_, err := a.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit))
		done <- err
	}()
	b, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for deadline := time.Now().Add(2700 * time.Millisecond); b.replica.cache.instance(crnA1) == nil; {
		if _, err := b.Instance(ctx, crnA1); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("b did not cache the instance before a's slow commit")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c := b.replica.cache.instance(crnA1); *c.InstanceLimitSeconds != *before.InstanceLimitSeconds {
		t.Fatalf("b cached %v before a's commit, want the old %v", *c.InstanceLimitSeconds, *before.InstanceLimitSeconds)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := limitOf(t, b); got != 2222 {
		t.Fatalf("after a's write answered, b reads %v, want 2222", got)
	}
}

// A replica fenced for an ack that never came may still hold its lease, and its cache,
// until leaseTTL after the fencing (its renewals are slow, or it has not renewed since).
// A write through a third replica in that time must wait for it too: a read through the
// fenced replica after the write's answer sees the write.
func TestWriteWaitsForAReplicaFencedWithALeaseLeft(t *testing.T) {
	a, dsn := seededReplica(t)
	ctx := context.Background()
	b, c := openReplica(t, dsn, nil), openReplica(t, dsn, nil)
	waitListed(t, a, b, c)
	if _, err := b.Instance(ctx, crnA1); err != nil { // cached in b
		t.Fatal(err)
	}
	// b's acks are lost: a's write fences b after ackTimeout. Just before that, b stops
	// renewing (as if its renewals were slow): the lease of its last renewal runs on past the
	// fencing, about 0.4 s longer than c needs to hear of it and write.
	b.replica.dropAcks.Store(true)
	first := int64(3001)
	done := make(chan error, 1)
	go func() {
		_, err := a.UpdateInstance(ctx, crnA1, domain.SetLimit(&first))
		done <- err
	}()
	time.Sleep(700 * time.Millisecond)
	renewedAt := func(s *Store) time.Time { s.replica.mu.Lock(); defer s.replica.mu.Unlock(); return s.replica.peersAt }
	for before := renewedAt(b); renewedAt(b) == before; {
		time.Sleep(time.Millisecond)
	}
	b.replica.holdRenewals.Store(true)
	b.replica.slowInvalidation.Store(int64(500 * time.Millisecond)) // and slow to apply what it hears
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for deadline := time.Now().Add(5 * time.Second); ; {
		var fenced bool
		if err := conn.QueryRow(ctx, `SELECT fenced FROM replicas WHERE id = $1`, b.replica.id).Scan(&fenced); err != nil {
			t.Fatal(err)
		}
		if fenced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b was not fenced")
		}
		time.Sleep(time.Millisecond)
	}
	fencedSeen := time.Now()
	for !renewedAt(c).After(fencedSeen) { // c's list now has b fenced
		time.Sleep(time.Millisecond)
	}
	if _, ok := b.replica.cache.generation(); !ok {
		t.Fatal("b's lease ran out before c wrote: the test's timing did not hold")
	}
	second := int64(3002)
	if _, err := c.UpdateInstance(ctx, crnA1, domain.SetLimit(&second)); err != nil {
		t.Fatal(err)
	}
	if got := limitOf(t, b); got != 3002 {
		t.Fatalf("after c's write answered, the fenced b reads %v, want 3002", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A replica that closes (a rolling restart, say) leaves the lists of replicas that the
// others' writes wait on before it stops hearing their notifications: writes through
// another replica, before, during and after its Close, are never made to wait for it in
// vain — no ack timeout, no fencing, no warning — and its row is gone once it closed.
func TestClosingReplicaIsNotWaitedFor(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	var logged warnings
	a := openReplica(t, dsn, slog.New(&logged))
	b, err := OpenWithLogger(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Load(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	waitListed(t, a, b)
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	// Writes through a from before b's Close until past every list a read before b left
	// (peersMaxAge after its Close returned, with a margin); bounded in count too.
	var until time.Time
	writes := 0
	for ; writes < 100000 && (until.IsZero() || time.Now().Before(until)); writes++ {
		select {
		case <-closed:
			if until.IsZero() {
				until = time.Now().Add(peersMaxAge + 500*time.Millisecond)
			}
		default:
		}
		limit := int64(3000 + writes)
		if _, err := a.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
			t.Fatal(err)
		}
		if n := logged.n.Load(); n != 0 {
			t.Fatalf("write %d through a: %d warnings, a write waited in vain for the closing replica and fenced it", writes, n)
		}
	}
	if until.IsZero() {
		t.Fatalf("b's Close did not return within %d writes", writes)
	}
	var rows int
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM replicas WHERE id = $1`, b.replica.id).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("b's row after its Close: %d rows (%v), want none", rows, err)
	}
}

// A silent replica is fenced, and the write then waits only for what is left of its lease,
// counted from its last renewal: a replica that died (here: stopped renewing and acking)
// a whole ack timeout before has none left. It then reads the write from the database.
func TestFencingWaitsOnlyWhatIsLeftOfTheLease(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	var logged warnings
	a := openReplica(t, dsn, slog.New(&logged))
	b := openReplica(t, dsn, nil)
	if err := a.Load(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	waitListed(t, a, b)
	if _, err := b.Instance(ctx, crnA1); err != nil { // cached in b
		t.Fatal(err)
	}
	b.replica.holdRenewals.Store(true)
	b.replica.dropAcks.Store(true)
	limit := int64(4343)
	if _, err := a.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
		t.Fatal(err)
	}
	if logged.n.Load() == 0 {
		t.Fatal("the write did not fence the silent replica: no warning")
	}
	var fenced bool
	if err := a.pool.QueryRow(ctx, `SELECT fenced FROM replicas WHERE id = $1`, b.replica.id).Scan(&fenced); err != nil || !fenced {
		t.Fatalf("the silent replica's row: fenced %v (%v)", fenced, err)
	}
	// b renewed last before the write began, an ack timeout (1 s) before the fencing: at
	// most 50 ms of its lease (and the clocks' margin) were left; the old rule waited 1 s.
	if left := time.Duration(a.replica.leaseWaited.Load()); left > leaseTTL/2 {
		t.Fatalf("the write waited %v of the fenced replica's lease after fencing it, want what was left of it (about none)", left)
	}
	if got := limitOf(t, b); got != float64(limit) {
		t.Fatalf("the fenced replica reads %v after the write answered, want %d", got, limit)
	}
	// The next write, at once, goes by a list that has b fenced, even if a has not renewed
	// since: it does not wait for b's ack again.
	limit++
	if _, err := a.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
		t.Fatal(err)
	}
	if n := logged.n.Load(); n != 1 {
		t.Fatalf("%d warnings: the write after the fencing waited for the fenced replica's ack again", n)
	}
}

// Writers that time out on one silent replica together race to fence it. The one whose
// fencing comes second (its snapshot from before the first one's commit, its update then
// finding the row fenced) still counts the replica's lease from its last renewal, once
// that fencing is visible, rather than a whole lease; a replica whose row is gone counts a
// whole lease.
func TestSecondFencingCountsTheLeaseFromTheLastRenewal(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	a := openReplica(t, dsn, nil)
	b := openReplica(t, dsn, nil)
	waitListed(t, a, b)
	b.replica.holdRenewals.Store(true)
	waitTrue(t, a, "b's last renewal to get older than a lease", `SELECT seen < now() - make_interval(secs => $2) FROM replicas WHERE id = $1`,
		b.replica.id, fencedLease.Seconds())
	// Another writer's fencing holds the row's lock while a's fencing starts.
	other, err := a.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	if _, err := other.Exec(ctx, `UPDATE replicas SET fenced = true, fenced_at = now() WHERE id = $1`, b.replica.id); err != nil {
		t.Fatal(err)
	}
	type fenced struct {
		left time.Duration
		err  error
	}
	got := make(chan fenced, 1)
	go func() { left, err := a.replica.fence(ctx, []string{b.replica.id}); got <- fenced{left, err} }()
	waitTrue(t, a, "a's fencing to wait for the other's lock", `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
		AND wait_event_type = 'Lock' AND query LIKE '%UPDATE replicas SET fenced%')`)
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if f := <-got; f.err != nil || f.left != 0 {
		t.Fatalf("the second fencing of a replica whose lease was out: %v left (%v), want none", f.left, f.err)
	}
	if _, err := a.pool.Exec(ctx, `DELETE FROM replicas WHERE id = $1`, b.replica.id); err != nil {
		t.Fatal(err)
	}
	if left, err := a.replica.fence(ctx, []string{b.replica.id}); err != nil || left != fencedLease {
		t.Fatalf("fencing a replica whose row is gone: %v left (%v), want a whole lease, %v", left, err, fencedLease)
	}
}

// waitTrue waits, up to 10 s, until query (a boolean) returns true on s's database.
func waitTrue(t *testing.T, s *Store, what, query string, args ...any) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		var ok bool
		if err := s.pool.QueryRow(context.Background(), query, args...).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// limitOf reads the demo instance's limit through s (its cache or the database); a read
// that fails, or finds no limit, fails the test.
func limitOf(t *testing.T, s *Store) float64 {
	t.Helper()
	in, err := s.Instance(context.Background(), crnA1)
	if err != nil {
		t.Fatal(err)
	}
	if in.InstanceLimitSeconds == nil {
		t.Fatal("the instance has no limit")
	}
	return *in.InstanceLimitSeconds
}
