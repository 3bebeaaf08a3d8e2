package postgres

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/postgres/pgtest"
	"github.com/qrapi/qrapi/seed"
)

// directReady waits until a lists b and has a connection to b's peer port.
func directReady(t *testing.T, a, b *Store) {
	t.Helper()
	waitListed(t, a, b)
	for deadline := time.Now().Add(10 * time.Second); ; {
		peers, _ := a.replica.renewalPeers()
		if len(peers) == 1 && peers[0].id == b.replica.id && peers[0].addr == b.replica.direct.addr && a.replica.direct.ready(peers) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection to the other replica's peer port within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitUncached waits, up to 10 s after what happened, until s's cache no longer holds the
// demo instance.
func waitUncached(t *testing.T, s *Store, after string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.replica.cache.instance(crnA1) != nil; {
		if time.Now().After(deadline) {
			t.Fatalf("the cache still holds the instance 10 s after %s", after)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// setLimit writes the demo instance's limit through s.
func setLimit(t *testing.T, s *Store, limit int64) {
	t.Helper()
	if _, err := s.UpdateInstance(context.Background(), crnA1, domain.SetLimit(&limit)); err != nil {
		t.Fatal(err)
	}
}

// An instance write reaches the other replica's cache straight from its replica, not
// through the database, before it answers; the other replica's row shows where it takes
// such messages.
func TestWritesGoStraightToTheOtherReplica(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	directReady(t, a, b)
	var addr string
	if err := a.pool.QueryRow(ctx, `SELECT peer_addr FROM replicas WHERE id = $1`, b.replica.id).Scan(&addr); err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(addr); addr != b.replica.direct.addr || host != "127.0.0.1" {
		t.Fatalf("the replica's row gives peer_addr %q, want its loopback port %q", addr, b.replica.direct.addr)
	}
	for i := range 20 {
		if _, err := b.Instance(ctx, crnA1); err != nil { // cached in b
			t.Fatal(err)
		}
		sent, taken, notified := a.replica.direct.sent.Load(), b.replica.direct.taken.Load(), b.replica.notifiedWrites.Load()
		limit := int64(2000 + i)
		setLimit(t, a, limit)
		if cached := b.replica.cache.instance(crnA1); cached == nil || *cached.InstanceLimitSeconds != float64(limit) {
			t.Fatalf("round %d: the other replica's cache holds %v after the write answered, want the written %d", i, cached, limit)
		}
		if a.replica.direct.sent.Load() != sent+1 || b.replica.direct.taken.Load() != taken+1 {
			t.Fatalf("round %d: the write was not sent straight to the other replica (sent %d→%d, taken %d→%d)",
				i, sent, a.replica.direct.sent.Load(), taken, b.replica.direct.taken.Load())
		}
		if n := b.replica.notifiedWrites.Load(); n != notified {
			t.Fatalf("round %d: the write was notified through the database too (%d→%d)", i, notified, n)
		}
	}
}

// A replica that takes no direct messages is notified through the database, and a write
// through another replica answers only once it has the write.
func TestReplicaWithoutPeerPortIsNotified(t *testing.T) {
	a, dsn := seededReplica(t)
	b, err := OpenWithOptions(context.Background(), dsn, Options{PeerAddr: NoPeerAddr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	waitListed(t, a, b)
	for i := range 5 {
		if _, err := b.Instance(context.Background(), crnA1); err != nil {
			t.Fatal(err)
		}
		notified := b.replica.notifiedWrites.Load()
		limit := int64(3000 + i)
		setLimit(t, a, limit)
		if got := limitOf(t, b); got != float64(limit) {
			t.Fatalf("round %d: the replica without a peer port reads %v after the write answered, want %d", i, got, limit)
		}
		if b.replica.notifiedWrites.Load() == notified {
			t.Fatalf("round %d: the replica without a peer port was not notified", i)
		}
	}
	if n := a.replica.direct.sent.Load(); n != 0 {
		t.Fatalf("%d messages were sent to a replica that takes none", n)
	}
}

// A message that cannot go out after the commit is notified through the database instead:
// the write answers with the other replica holding it, and fences no one.
func TestWriteWhoseMessageFailsIsNotified(t *testing.T) {
	a, b := twoReplicas(t)
	directReady(t, a, b)
	if _, err := b.Instance(context.Background(), crnA1); err != nil {
		t.Fatal(err)
	}
	a.replica.direct.mu.Lock()
	pc := a.replica.direct.conns[b.replica.id]
	a.replica.direct.mu.Unlock()
	pc.c.(*net.TCPConn).CloseWrite() // the connection is still listed, but a frame cannot go out
	notified := b.replica.notifiedWrites.Load()
	setLimit(t, a, 4100)
	if got := limitOf(t, b); got != 4100 {
		t.Fatalf("the other replica reads %v after the write answered, want 4100", got)
	}
	if b.replica.notifiedWrites.Load() == notified {
		t.Fatal("the write whose message failed was not notified through the database")
	}
	var fenced bool
	if err := a.pool.QueryRow(context.Background(), `SELECT fenced FROM replicas WHERE id = $1`, b.replica.id).Scan(&fenced); err != nil {
		t.Fatal(err)
	}
	if fenced {
		t.Fatal("the other replica was fenced")
	}
}

// When a writer's connection closes, the replica it wrote to drops its whole cache: the
// writer may have committed a change it had not sent yet.
func TestClosedWriterConnectionDropsTheCache(t *testing.T) {
	a, b := twoReplicas(t)
	directReady(t, a, b)
	setLimit(t, a, 4200) // a's connection to b is now one b has served
	if _, err := b.Instance(context.Background(), crnA1); err != nil {
		t.Fatal(err)
	}
	if b.replica.cache.instance(crnA1) == nil {
		t.Fatal("the read was not cached")
	}
	a.replica.direct.mu.Lock()
	a.replica.direct.conns[b.replica.id].c.Close()
	a.replica.direct.mu.Unlock()
	waitUncached(t, b, "its writer's connection closed")
}

// The peer port serves only a process that proves it holds the replicas' secret, and
// answers as the replica its row names: a writer without the secret is refused, and a
// replica that cannot prove it is not taken for one.
func TestPeerPortRequiresTheSecret(t *testing.T) {
	a, b := twoReplicas(t)
	waitListed(t, a, b)
	target := peer{id: b.replica.id, addr: b.replica.direct.addr}
	stranger := &directNet{r: a.replica, secret: []byte("not the secret")}
	if _, err := stranger.connect(target); err == nil {
		t.Fatal("a writer without the secret connected")
	}
	if _, err := stranger.connect(peer{id: "someone-else", addr: b.replica.direct.addr}); err == nil {
		t.Fatal("a connection to the wrong replica's port was taken for that replica's")
	}
	// By hand: the right first line, then a wrong proof, then a frame that would set the
	// cache: the port closes the connection, and the cache is as it was.
	setLimit(t, a, 4300)
	if got := limitOf(t, b); got != 4300 { // cached in b
		t.Fatalf("the other replica reads %v, want 4300", got)
	}
	taken := b.replica.direct.taken.Load()
	c, err := net.Dial("tcp", b.replica.direct.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	fmt.Fprintf(bw, "%s %s %s\n%s\n", peerProtocol, a.replica.id, nonce(), "00")
	writeFrame(bw, fmt.Sprintf("%s 1\n%s\t999999999\t{\"CRN\":%q,\"Backends\":[],\"InstanceLimitSeconds\":1}", a.replica.id, crnA1, crnA1))
	if _, err := readLine(br); err != nil { // the replica's proof
		t.Fatal(err)
	}
	if _, err := readFrame(br); err == nil {
		t.Fatal("the port acked a frame from a writer that did not prove the secret")
	}
	if got := limitOf(t, b); got != 4300 {
		t.Fatalf("the other replica reads %v after a frame from a writer that did not prove the secret, want 4300", got)
	}
	if n := b.replica.direct.taken.Load(); n != taken {
		t.Fatalf("the port took %d messages from a writer that did not prove the secret", n-taken)
	}
}

// A message sent straight from a replica may arrive late: after a later write's, or after
// a reset dropped everything. It only replaces an older state; one that finds nothing
// only stops the reads in flight from filling. And a reset's rows take versions above any
// a write took before it, so a late message never wins over them.
func TestLateDirectMessageIsNotKept(t *testing.T) {
	c := &cache{instances: map[string]*versionedInstance{}, identities: map[string]*identity{}}
	c.renewed(time.Now(), true)
	state := func(limit float64) *domain.Instance {
		return &domain.Instance{CRN: crnA1, Backends: []string{}, InstanceLimitSeconds: &limit}
	}
	gen, _ := c.generation()
	c.applyInPlace(versionedInstance{in: state(5), version: 5})
	if c.instance(crnA1) != nil {
		t.Fatal("a direct message put in an entry the cache did not hold")
	}
	c.fillInstance(gen, state(4), 4)
	if c.instance(crnA1) != nil {
		t.Fatal("a read that began before a direct message filled the cache")
	}
	gen, _ = c.generation()
	c.fillInstance(gen, state(9), 9)
	c.applyInPlace(versionedInstance{in: state(7), version: 7})
	if got := *c.instance(crnA1).InstanceLimitSeconds; got != 9 {
		t.Fatalf("a late direct message replaced a newer state: limit %v, want 9", got)
	}
	c.applyInPlace(versionedInstance{in: state(10), version: 10})
	if got := *c.instance(crnA1).InstanceLimitSeconds; got != 10 {
		t.Fatalf("a direct message did not replace an older state: limit %v, want 10", got)
	}

	dsn := pgtest.NewDatabase(t)
	s := openReplica(t, dsn, nil)
	ctx := context.Background()
	version := func() int64 {
		var v int64
		if err := s.pool.QueryRow(ctx, `SELECT version FROM instances WHERE crn = $1`, crnA1).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if err := s.Load(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		setLimit(t, s, int64(100+i))
	}
	written := version()
	if err := s.Load(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	if reset := version(); reset <= written {
		t.Fatalf("after a reset the instance's version is %d, not above the %d a write took before it", reset, written)
	}
}

// A change notified after its commit (a write made alone whose commit outlasted its list,
// or one whose direct message did not go out) may arrive after a later change's, so it is
// kept only in place, as a direct message is; a notification sent in the write's
// transaction arrives in commit order and is kept whole. Both are acked.
func TestLateNotificationIsKeptOnlyInPlace(t *testing.T) {
	r := &replica{id: "me", acks: map[uint64]chan string{}, ackOut: make(chan string, 8),
		cache: &cache{instances: map[string]*versionedInstance{}, identities: map[string]*identity{}}}
	r.cache.renewed(time.Now(), true)
	line := crnA1 + "\t9\t" + `{"CRN":"` + crnA1 + `","Backends":[],"InstanceLimitSeconds":9}`
	r.notified(&pgconn.Notification{Channel: chanInvalidate, Payload: "writer 1 " + lateMark + "\n" + line})
	if r.cache.instance(crnA1) != nil {
		t.Fatal("a change notified after its commit put in an entry the cache did not hold")
	}
	if ack := <-r.ackOut; ack != "writer 1 me" {
		t.Fatalf("the late change was acked %q, want %q", ack, "writer 1 me")
	}
	r.notified(&pgconn.Notification{Channel: chanInvalidate, Payload: "writer 2\n" + line})
	if in := r.cache.instance(crnA1); in == nil || *in.InstanceLimitSeconds != 9 {
		t.Fatalf("a change notified in its transaction was not kept: %v", in)
	}
	if ack := <-r.ackOut; ack != "writer 2 me" {
		t.Fatalf("the change was acked %q, want %q", ack, "writer 2 me")
	}
}

// A peer address the other replicas could not connect to as given (no host, or every
// address of the host) is refused when the store opens, with what to give instead.
func TestPeerAddressMustNameTheHost(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	for _, addr := range []string{"0.0.0.0:7400", "[::]:0", ":7400", "no-port"} {
		s, err := OpenWithOptions(context.Background(), dsn, Options{PeerAddr: addr})
		if err == nil {
			s.Close()
			t.Fatalf("a store opened with peer address %q", addr)
		}
		if !strings.Contains(err.Error(), addr) {
			t.Fatalf("peer address %q: the error does not name it: %v", addr, err)
		}
	}
}

// A writer that stops renewing without closing its connection (its machine vanished,
// say: no FIN) is dropped by the replica it wrote to once that replica's renewals no
// longer list it, and with it that replica's cache: the writer may have committed a
// change it never sent.
func TestVanishedWriterDropsTheCache(t *testing.T) {
	a, b := twoReplicas(t)
	directReady(t, a, b)
	setLimit(t, a, 4400) // b now serves a connection from a
	if got := limitOf(t, b); got != 4400 {
		t.Fatalf("the other replica reads %v, want 4400", got)
	}
	if b.replica.cache.instance(crnA1) == nil {
		t.Fatal("the read was not cached")
	}
	a.replica.holdRenewals.Store(true) // a's row ages; its connection to b stays open
	waitUncached(t, b, "its writer stopped renewing")
	b.replica.direct.mu.Lock()
	n := len(b.replica.direct.served)
	b.replica.direct.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d connections from the vanished writer are still served", n)
	}
}
