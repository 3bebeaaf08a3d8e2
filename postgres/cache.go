package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qrapi/qrapi/domain"
)

// The cache protocol. A replica caches instances and identities, and may answer from its
// cache only while it holds a lease: leaseTTL from the start of its last renewal of its
// row in replicas. Every write notifies (channel invalidations, in its transaction) what it
// changed — an instance's new state and version, or what to drop — and each replica
// applies that before it acknowledges (on the writer's own channel of acks); an instance
// write sends the same straight to each replica once committed, and is acked on the same
// connection (direct.go). Instance entries carry the row's
// version, and an entry is only ever replaced by a newer one, so a notification and a read
// that race cannot put back an older state. The writer
// answers only when every other replica whose row is recent has acknowledged, or, for one
// that has not within ackTimeout, after fencing it (its renewals fail from then on) and
// waiting out what is left of its lease, counted from its last renewal (fence). A replica
// that closes leaves every list first (leave). So a request that starts after a write's
// answer, on any replica, reads either the database or a cache that no longer holds what
// the write changed. A write made while the replica's last renewal, begun less than
// peersMaxAge ago, found no other live replica notifies nothing unless its commit outlasts
// that (afterAlone).
const (
	leaseTTL   = time.Second
	renewEvery = 250 * time.Millisecond
	// peersMaxAge is how long after a renewal began a writer may wait on the list of live
	// replicas it read, rather than read the list again; leaseGrace is how long after its
	// renewal returned a replica that (re)gained its lease still answers from the database.
	// A list that lacks a replica was read before that replica's renewal committed, so it is
	// used up before the replica's grace ends: leaseGrace > peersMaxAge, with a margin.
	peersMaxAge    = 2 * renewEvery
	leaseGrace     = peersMaxAge + renewEvery
	ackTimeout     = time.Second
	chanInvalidate = "qrapi_invalidate"
	chanAckPrefix  = "qrapi_ack_" // + the writer's id: each replica hears only its own acks
)

// cache is one replica's cache with its lease.
type cache struct {
	mu         sync.RWMutex
	gen        uint64    // counts invalidations: a read that raced one does not fill
	leaseFrom  time.Time // monotonic; a new lease serves from here on (leaseGrace after it began)
	leaseUntil time.Time // monotonic; the zero time: no lease, no cache
	instances  map[string]*versionedInstance
	identities map[string]*identity
	faults     []domain.FaultRule // the kept fault rules, if faultsOK
	faultsOK   bool
	faultsGen  uint64 // counts drops of the fault rules (gen counts every invalidation)
	retired    bool   // the replica is leaving: no lease, ever again
}

// versionedInstance is an instance's state with its row's version (from one sequence, so
// growing in commit order: migration 0009): a cache entry, or what a write committed.
type versionedInstance struct {
	in      *domain.Instance
	version int64
}

type identity struct {
	principal domain.Principal
	policies  []domain.Policy
}

// maxEntries bounds each map.
const maxEntries = 4096

// leased reports whether the cache may be used now. Call with mu held.
func (c *cache) leased() bool {
	now := time.Now()
	return now.Before(c.leaseUntil) && !now.Before(c.leaseFrom)
}

// dropAll empties the cache and makes every read in flight not fill it. Call with mu held.
func (c *cache) dropAll() {
	c.gen++
	clear(c.instances)
	clear(c.identities)
	c.faults, c.faultsOK = nil, false
	c.faultsGen++
}

// faultRules returns the cached fault rules and whether the cache holds them and may be
// used; else the generation to fill under.
func (c *cache) faultRules() ([]domain.FaultRule, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.leased() || !c.faultsOK {
		return nil, c.faultsGen, false
	}
	return c.faults, c.faultsGen, true
}

// fillFaults keeps the rules a read found, unless a drop or a lease change came since the
// read began.
func (c *cache) fillFaults(gen uint64, rules []domain.FaultRule) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.faultsGen == gen && c.leased() {
		c.faults, c.faultsOK = rules, true
	}
}

// dropFaults drops the cached fault rules.
func (c *cache) dropFaults() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults, c.faultsOK = nil, false
	c.faultsGen++
}

// generation returns the generation to fill under, and whether the cache may be used.
func (c *cache) generation() (uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen, c.leased()
}

func (c *cache) instance(crn string) *domain.Instance {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.leased() {
		return nil
	}
	if e := c.instances[crn]; e != nil {
		return e.in.Clone()
	}
	return nil
}

// setInstance keeps in unless the cache holds a newer version. Call with mu held.
func (c *cache) setInstance(in *domain.Instance, version int64) {
	if e := c.instances[in.CRN]; e != nil && e.version >= version {
		return
	}
	if len(c.instances) >= maxEntries {
		clear(c.instances)
	}
	c.instances[in.CRN] = &versionedInstance{in: in.Clone(), version: version}
}

// fillInstance keeps what a read found, unless a drop or a lease change came since the read
// began, or the cache holds a newer version.
func (c *cache) fillInstance(gen uint64, in *domain.Instance, version int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen && c.leased() {
		c.setInstance(in, version)
	}
}

// apply keeps the states a write committed (newer versions win).
func (c *cache) apply(updates []versionedInstance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leased() {
		return
	}
	for _, u := range updates {
		c.setInstance(u.in, u.version)
	}
}

func (c *cache) identity(id string) (*domain.Principal, []domain.Policy, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.leased() {
		return nil, nil, false
	}
	e := c.identities[id]
	if e == nil {
		return nil, nil, false
	}
	p := e.principal
	return &p, slices.Clone(e.policies), true
}

// fillIdentity keeps what a read found, unless a drop or a lease change came since the
// read began.
func (c *cache) fillIdentity(gen uint64, id *identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || !c.leased() {
		return
	}
	if len(c.identities) >= maxEntries {
		clear(c.identities)
	}
	c.identities[id.principal.ID] = id
}

// invalidate drops an instance, or everything for "" (a Load).
func (c *cache) invalidate(crn string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if crn == "" {
		c.dropAll()
		return
	}
	c.gen++
	delete(c.instances, crn)
}

// renewed extends the lease after a renewal that started at start. A replica that had
// lost its lease starts again from an empty cache (it may have missed invalidations). If it
// was not listed (listed: its row was live, unfenced, when the renewal ran), it also waits
// leaseGrace after this renewal returned: a writer may be waiting on a list of live replicas
// read before this one was live, and would not wait for it to drop what the write changed.
// A replica whose lease lapsed only briefly was in every such list, and serves at once.
func (c *cache) renewed(start time.Time, listed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.retired {
		return
	}
	now := time.Now()
	if !now.Before(c.leaseUntil) {
		c.dropAll()
		c.leaseFrom = now
		if !listed {
			c.leaseFrom = now.Add(leaseGrace)
		}
	}
	c.leaseUntil = start.Add(leaseTTL)
}

// lose ends the lease at once.
func (c *cache) lose() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leaseUntil = time.Time{}
	c.dropAll()
}

// retire ends the lease for good: a renewal that was under way does not bring it back.
func (c *cache) retire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retired = true
	c.leaseUntil = time.Time{}
	c.dropAll()
}

// replica runs the lease and the invalidations of one Store.
type replica struct {
	id     string
	dsn    string
	pool   *pgxpool.Pool
	cache  *cache
	log    *slog.Logger
	seq    uint64
	mu     sync.Mutex
	acks   map[uint64]chan string // a write's sequence number -> the replicas that ack it
	ackOut chan string            // acks to send, in order
	stop   context.CancelFunc
	done   chan struct{}
	// peers are the replicas a write waits for as the last renewal read them (peersAt: when
	// it began), which a writer goes by while they are fresh.
	peers   []peer
	peersAt time.Time
	// unfenced: a renewal found this replica fenced and unfenced it; until a renewal
	// succeeds (whatever reconnects come between), the next does not count as listed.
	unfenced bool
	// slowInvalidation, in tests, delays handling an invalidation: a replica slow to
	// drop what a write changed.
	slowInvalidation atomic.Int64 // a time.Duration
	// slowCommit, in tests, delays the commit of a write made alone.
	slowCommit atomic.Int64 // a time.Duration
	// In tests: dropAcks drops the acks this replica would send (as if they were lost), and
	// holdRenewals stops its renewals (as if they were slow) while notifications still arrive.
	dropAcks, holdRenewals atomic.Bool
	// failFollowUp, in tests, fails the notification a write made alone sends after a
	// slow commit.
	failFollowUp atomic.Bool
	// strayAcks counts acks heard that were meant for another writer (none: each writer
	// has its own channel).
	strayAcks atomic.Int64
	// leaving: the store is closing (leave); no more renewals.
	leaving atomic.Bool
	// leaseWaited, for tests, is what was left of the leases of the replicas the last
	// fencing fenced (a time.Duration): what the write then waited.
	leaseWaited atomic.Int64
	// direct sends and takes the messages of instance writes (direct.go).
	direct *directNet
	// notifiedWrites counts, for tests, the writes of other replicas heard by notification.
	notifiedWrites atomic.Int64
}

func newReplicaID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// run keeps the listening connection, the lease and the acks going until ctx ends.
func (r *replica) run(ctx context.Context) {
	defer close(r.done)
	go r.sendAcks(ctx)
	for ctx.Err() == nil {
		err := r.listen(ctx)
		r.cache.lose()
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("postgres: cache listener lost; answering from the database until it is back", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(renewEvery):
		}
	}
}

// listen holds one connection: LISTEN, then renew the lease every renewEvery and handle
// notifications (in the connection's OnNotification, during any read) in between.
func (r *replica) listen(ctx context.Context) error {
	cfg, err := pgx.ParseConfig(r.dsn)
	if err != nil {
		return err
	}
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) { r.notified(n) }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+chanInvalidate+"; LISTEN "+chanAckPrefix+r.id); err != nil {
		return err
	}
	for {
		start := time.Now()
		if r.holdRenewals.Load() || r.leaving.Load() {
			if err := r.waitNotifications(ctx, conn, start.Add(renewEvery)); err != nil {
				return err
			}
			continue
		}
		var (
			ok        *bool
			listed    bool
			ids       []string
			fencedFor []float64
			addrs     []string
		)
		// The renewal; whether this replica's row was live before it (so that every writer's
		// list of live replicas held it); and the replicas a write waits for: one round trip,
		// every statement of it on the snapshot from before the renewal.
		err := conn.QueryRow(ctx, `WITH renewed AS (INSERT INTO replicas (id, seen, peer_addr) VALUES ($1, now(), nullif($4::text, ''))
				ON CONFLICT (id) DO UPDATE SET seen = now(), fenced = false, peer_addr = nullif($4::text, '') WHERE NOT replicas.fenced RETURNING true),
			peers (id, fenced_for, addr) AS (`+peersQuery+`)
			SELECT (SELECT true FROM renewed),
				coalesce((SELECT NOT fenced AND seen > now() - make_interval(secs => $2) FROM replicas WHERE id = $1), false),
				`+peersArrays,
			r.id, livePeersWindow.Seconds(), fencedLease.Seconds(), r.direct.addr).Scan(&ok, &listed, &ids, &fencedFor, &addrs)
		if err == nil && ok == nil {
			err = pgx.ErrNoRows
		}
		switch {
		case errors.Is(err, pgx.ErrNoRows) && r.leaving.Load():
			continue // fenced by leave while this renewal was under way: stay out
		case errors.Is(err, pgx.ErrNoRows):
			// Fenced by a writer that waited for our ack in vain: start again from nothing,
			// after the grace, since lists read while we were fenced left us out.
			r.cache.lose()
			if _, err := conn.Exec(ctx, `UPDATE replicas SET fenced = false, seen = now() WHERE id = $1`, r.id); err != nil {
				return err
			}
			r.unfenced = true
			continue
		case err != nil:
			return err
		}
		// Notifications that arrived before the renewal's answer were handled during it.
		r.cache.renewed(start, listed && !r.unfenced)
		r.unfenced = false
		peers := peersRead(ids, fencedFor, addrs, time.Now())
		r.direct.dropGone(peers, start)
		r.mu.Lock()
		r.peers, r.peersAt = peers, start
		r.mu.Unlock()
		if err := r.waitNotifications(ctx, conn, start.Add(renewEvery)); err != nil {
			return err
		}
	}
}

// waitNotifications handles notifications on the listening connection until next.
func (r *replica) waitNotifications(ctx context.Context, conn *pgx.Conn, next time.Time) error {
	for time.Now().Before(next) {
		wctx, cancel := context.WithDeadline(ctx, next)
		err := conn.PgConn().WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		var nerr interface{ Timeout() bool }
		if err != nil && !(errors.As(err, &nerr) && nerr.Timeout()) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	return nil
}

// notified handles one notification, on the listening connection's goroutine.
func (r *replica) notified(n *pgconn.Notification) {
	switch n.Channel {
	case chanInvalidate:
		// A change notified after its commit is out of commit order, and kept only in
		// place, as a direct message is.
		from, seq, late, body := parseChange(n.Payload)
		if from == r.id {
			return // the writer applied its change to its own cache when it committed
		}
		r.notifiedWrites.Add(1)
		r.take(body, late)
		select {
		case r.ackOut <- from + " " + seq + " " + r.id:
		default:
			// The ack queue is full: no ack, and the writer fences this replica.
			r.cache.lose()
		}
	case chanAckPrefix + r.id:
		for _, line := range strings.Split(n.Payload, "\n") {
			r.acked(line)
		}
	}
}

// acked handles one ack, "to seq from".
func (r *replica) acked(line string) {
	parts := strings.SplitN(line, " ", 3)
	if len(parts) != 3 || parts[0] != r.id {
		r.strayAcks.Add(1)
		return
	}
	seq, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return
	}
	r.mu.Lock()
	ch := r.acks[seq]
	r.mu.Unlock()
	if ch != nil {
		select {
		case ch <- parts[2]:
		default:
		}
	}
}

// sendAcks sends acknowledgements over the pool, after their invalidations were applied.
func (r *replica) sendAcks(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ack := <-r.ackOut:
			if r.dropAcks.Load() {
				continue
			}
			// Whatever else is queued goes in the same statement: one notification per
			// writer, one ack a line.
			payloads := map[string]string{}
			for size := 0; ; {
				to, _, _ := strings.Cut(ack, " ")
				if p, ok := payloads[to]; ok {
					payloads[to] = p + "\n" + ack
				} else {
					payloads[to] = ack
				}
				if size += len(ack) + 1; size >= 7000 || len(r.ackOut) == 0 {
					break
				}
				ack = <-r.ackOut // only this goroutine receives: there is one
			}
			var chans, texts []string
			for to, p := range payloads {
				chans, texts = append(chans, chanAckPrefix+to), append(texts, p)
			}
			if _, err := r.pool.Exec(ctx, `SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS a (c, p)`, chans, texts); err != nil && ctx.Err() == nil {
				r.log.Warn("postgres: cache ack not sent", "error", err)
			}
		}
	}
}

// parseChange reads a write's change as it is notified or sent straight: a first line
// "from seq", or "from seq late" for a change that may arrive out of commit order
// (invalidation), then its body, one line per change (applyLines).
func parseChange(payload string) (from, seq string, late bool, body string) {
	head, body, _ := strings.Cut(payload, "\n")
	from, seq, _ = strings.Cut(head, " ")
	seq, late = strings.CutSuffix(seq, " "+lateMark)
	return from, seq, late, body
}

// take applies the body of a change another replica wrote (inPlace: applyInPlace), after
// the delay of the test hook slowInvalidation.
func (r *replica) take(body string, inPlace bool) {
	if d := time.Duration(r.slowInvalidation.Load()); d > 0 {
		time.Sleep(d)
	}
	r.cache.applyLines(strings.Split(body, "\n"), inPlace)
}

// lineDropAll is the change line of a Load: drop everything.
const lineDropAll = "*"

// maxPayload keeps a notification under PostgreSQL's 8000-byte limit.
const maxPayload = 7800

// updateLines are the change lines of a write: each instance's new state, or, past the
// payload limit, only what to drop.
func updateLines(updates []versionedInstance) []string {
	lines, size := make([]string, 0, len(updates)), 0
	for _, u := range updates {
		b, err := json.Marshal(u.in)
		if err != nil {
			lines = append(lines, u.in.CRN)
			continue
		}
		line := u.in.CRN + "\t" + strconv.FormatInt(u.version, 10) + "\t" + string(b)
		size += len(line) + 1
		lines = append(lines, line)
	}
	if size > maxPayload {
		for i, u := range updates {
			lines[i] = u.in.CRN
		}
	}
	return lines
}

// applyLines applies a write's change lines: "*" (drop everything), "crn" (drop it), or
// "crn<TAB>version<TAB>state as JSON" (keep it), notified in commit order, or not (inPlace:
// applyInPlace).
func (c *cache) applyLines(lines []string, inPlace bool) {
	for _, line := range lines {
		crn, rest, hasState := strings.Cut(line, "\t")
		switch {
		case line == lineDropAll:
			c.invalidate("")
		case line == lineFaults:
			c.dropFaults()
		case !hasState:
			c.invalidate(crn)
		default:
			v, state, _ := strings.Cut(rest, "\t")
			version, err1 := strconv.ParseInt(v, 10, 64)
			var in domain.Instance
			if err := errors.Join(err1, json.Unmarshal([]byte(state), &in)); err != nil || in.CRN != crn {
				c.invalidate(crn)
				continue
			}
			if inPlace {
				c.applyInPlace(versionedInstance{in: &in, version: version})
			} else {
				c.apply([]versionedInstance{{in: &in, version: version}})
			}
		}
	}
}

// applyInPlace keeps a state a write committed, sent straight from its replica
// (direct.go), only over an older version of it in the cache. Such a message may arrive
// after a later write's, or after a reset dropped everything, so an entry it does not find
// may have been dropped since: it then only stops the reads in flight from filling, as an
// invalidation does. Versions grow in commit order across resets (migration 0009).
func (c *cache) applyInPlace(u versionedInstance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.instances[u.in.CRN]
	switch {
	case e == nil || !c.leased():
		c.gen++
	case e.version < u.version:
		c.instances[u.in.CRN] = &versionedInstance{in: u.in, version: u.version}
	}
}

// notify queues, in tx, the change lines of a write and returns its sequence number, with
// a channel its acks arrive on.
func (r *replica) notify(ctx context.Context, tx pgx.Tx, lines []string) (uint64, chan string, error) {
	seq, ch, payload := r.invalidation(lines, false)
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, chanInvalidate, payload); err != nil {
		r.forget(seq)
		return 0, nil, err
	}
	return seq, ch, nil
}

// invalidation numbers a write's change lines and returns its sequence number, a channel
// its acks arrive on, and the payload to notify on chanInvalidate or send straight. late:
// the payload may go out after the commit (straight, or notified after it), out of commit
// order, so that a replica keeps its states only in place (cache.applyInPlace).
func (r *replica) invalidation(lines []string, late bool) (uint64, chan string, string) {
	r.mu.Lock()
	r.seq++
	seq := r.seq
	ch := make(chan string, 64)
	r.acks[seq] = ch
	r.mu.Unlock()
	head := fmt.Sprintf("%s %d", r.id, seq)
	if late {
		head += " " + lateMark
	}
	return seq, ch, head + "\n" + strings.Join(lines, "\n")
}

// lateMark ends the first line of a change that may arrive out of commit order.
const lateMark = "late"

// fresh reports whether a list of peers read by a renewal that began at may still be gone
// by (peersMaxAge).
func fresh(at time.Time) bool { return !at.IsZero() && time.Since(at) < peersMaxAge }

// renewalPeers returns the peers the last renewal read and when it began.
func (r *replica) renewalPeers() ([]peer, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peers, r.peersAt
}

// alone reports whether the last renewal, which began at, found no other replica to wait
// for, and is fresh enough for a writer to go by.
func (r *replica) alone() (at time.Time, alone bool) {
	peers, at := r.renewalPeers()
	return at, fresh(at) && len(peers) == 0
}

// peersQuery lists the other replicas a write waits for, each with how long, in seconds,
// its lease may still hold if it is fenced (null if it is not): the live ones (renewed
// within livePeersWindow, unfenced: a replica whose last renewal is older has no lease
// left, with a margin for the database's and the replica's clocks running at slightly
// different rates), and the ones fenced less than fencedLease ago. A fenced replica renews
// no more, but the lease of its last renewal, taken before the fencing, may hold until
// leaseTTL after it, and so may its cache; it may still hear of writes and ack them.
var peersQuery = `SELECT id, CASE WHEN fenced THEN ` + leaseLeft("$3") + ` END, coalesce(peer_addr, '')
	FROM replicas WHERE id <> $1 AND (NOT fenced AND seen > now() - make_interval(secs => $2)
		OR fenced AND fenced_at > now() - make_interval(secs => $3))`

// leaseLeft is how long, in seconds, a fenced replica's lease may still hold (0 if it is
// out), where the parameter lease is fencedLease: its lease began no later than its last
// renewal (seen, the renewal's own statement time, after the replica read its clock), and
// a fenced replica's renewals fail, so seen is its last.
func leaseLeft(lease string) string {
	return `greatest(0, ` + lease + ` - extract(epoch FROM now() - seen))::float8`
}

// peersArrays selects the rows of peersQuery (as CTE peers) as three arrays in one order,
// the ids, how long each fenced one's lease may hold (-1: not fenced), and where each takes
// direct messages ("": nowhere), for peersRead.
const peersArrays = `array(SELECT id FROM peers ORDER BY id), array(SELECT coalesce(fenced_for, -1) FROM peers ORDER BY id),
	array(SELECT addr FROM peers ORDER BY id)`

const (
	livePeersWindow = leaseTTL + leaseTTL/2
	fencedLease     = leaseTTL + 50*time.Millisecond
)

// peer is another replica a write waits for: its ack, or, if it is fenced, until its lease
// is surely out (fencedUntil).
type peer struct {
	id          string
	fencedUntil time.Time // the zero time: not fenced
	addr        string    // where it takes direct messages ("": nowhere)
}

// peersRead makes the peers of a query that returned at read (no earlier than the
// snapshot it read, so a fenced lease is counted from no earlier than it should be).
func peersRead(ids []string, fencedFor []float64, addrs []string, read time.Time) []peer {
	peers := make([]peer, len(ids))
	for i, id := range ids {
		peers[i].id = id
		if i < len(addrs) {
			peers[i].addr = addrs[i]
		}
		if i < len(fencedFor) && fencedFor[i] >= 0 {
			peers[i].fencedUntil = read.Add(time.Duration(fencedFor[i] * float64(time.Second)))
		}
	}
	return peers
}

// livePeers returns the replicas a write waits for: as the last renewal read them if that
// began less than peersMaxAge ago (a replica that became live since serves nothing from
// its cache for leaseGrace, longer than that), else read now. A write used to read them
// itself, one more round trip to the database for every group of writes.
func (r *replica) livePeers(ctx context.Context) ([]peer, error) {
	if peers, at := r.renewalPeers(); fresh(at) {
		return slices.Clone(peers), nil
	}
	var (
		ids, addrs []string
		fencedFor  []float64
	)
	err := r.pool.QueryRow(ctx, `WITH peers (id, fenced_for, addr) AS (`+peersQuery+`) SELECT `+peersArrays,
		r.id, livePeersWindow.Seconds(), fencedLease.Seconds()).Scan(&ids, &fencedFor, &addrs)
	if err != nil {
		return nil, err
	}
	return peersRead(ids, fencedFor, addrs, time.Now()), nil
}

func (r *replica) forget(seq uint64) {
	r.mu.Lock()
	delete(r.acks, seq)
	r.mu.Unlock()
}

// awaitAcks returns once no other replica's cache may hold what write seq changed: every
// live replica acknowledged it, or was fenced and its lease has run out.
func (r *replica) awaitAcks(ctx context.Context, seq uint64, ch chan string) error {
	peers, err := r.livePeers(ctx)
	if err != nil {
		r.forget(seq)
		return err
	}
	return r.awaitAcksFrom(ctx, seq, ch, peers)
}

// awaitAcksFrom is awaitAcks for the replicas peers.
func (r *replica) awaitAcksFrom(ctx context.Context, seq uint64, ch chan string, peers []peer) error {
	defer r.forget(seq)
	if len(peers) == 0 {
		return nil
	}
	waiting := map[string]bool{} // id -> already fenced
	var fencedUntil time.Time
	for _, p := range peers {
		waiting[p.id] = !p.fencedUntil.IsZero()
		if p.fencedUntil.After(fencedUntil) {
			fencedUntil = p.fencedUntil
		}
	}
	var fencedOut <-chan time.Time // when the fenced ones' leases are surely out
	if !fencedUntil.IsZero() {
		t := time.NewTimer(time.Until(fencedUntil))
		defer t.Stop()
		fencedOut = t.C
	}
	timer := time.NewTimer(ackTimeout)
	defer timer.Stop()
	for len(waiting) > 0 {
		select {
		case from := <-ch:
			delete(waiting, from)
		case <-fencedOut:
			for id, fenced := range waiting {
				if fenced {
					delete(waiting, id)
				}
			}
		case <-timer.C:
			var silent []string
			for id, fenced := range waiting {
				if !fenced {
					silent = append(silent, id)
				}
			}
			if len(silent) == 0 {
				continue // only fenced ones are left: fencedOut ends their wait
			}
			// Fence the silent ones: none of them renews its lease from now on, so once what
			// is left of their leases has passed none answers from its cache (nor does a
			// fenced one still waited for: fencedUntil).
			left, err := r.fence(ctx, silent)
			if err != nil {
				return err
			}
			r.log.Warn("postgres: replicas did not acknowledge a write; fenced them and waiting out their lease", "replicas", silent, "lease_left", left)
			r.leaseWaited.Store(int64(left))
			r.fencedNow(silent, time.Now().Add(left))
			select {
			case <-time.After(max(left, time.Until(fencedUntil))):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// fence fences the replicas ids, so that none renews its lease from now on, and returns how
// long the longest of their leases may still hold: measured from each one's last renewal
// (leaseLeft), where a replica is silent because it died, say, a renewal or more before.
// The leases are read once the fencing has committed, so that they include the replicas
// another writer fenced first (writers that time out together race to fence): a fenced
// replica renews no more, so its last renewal, read then, is final. One whose row is gone
// (or that unfenced itself meanwhile) counts a whole lease.
func (r *replica) fence(ctx context.Context, ids []string) (time.Duration, error) {
	if _, err := r.pool.Exec(ctx, `UPDATE replicas SET fenced = true, fenced_at = now() WHERE id = ANY($1) AND NOT fenced`, ids); err != nil {
		return 0, err
	}
	rows, err := r.pool.Query(ctx, `SELECT `+leaseLeft("$2")+` FROM replicas WHERE id = ANY($1) AND fenced`, ids, fencedLease.Seconds())
	if err != nil {
		return 0, err
	}
	leases, err := pgx.CollectRows(rows, pgx.RowTo[float64])
	if err != nil {
		return 0, err
	}
	if len(leases) < len(ids) {
		return fencedLease, nil
	}
	var left time.Duration
	for _, s := range leases {
		left = max(left, time.Duration(s*float64(time.Second)))
	}
	return left, nil
}

// fencedNow records in the renewal's list of peers that this replica has just fenced ids,
// whose leases are out at until, so that the writes that go by that list until the next
// renewal wait for them no longer than that, rather than for their ack in vain.
func (r *replica) fencedNow(ids []string, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	peers := slices.Clone(r.peers) // a list already handed out stays as it was
	for i := range peers {
		if slices.Contains(ids, peers[i].id) && peers[i].fencedUntil.IsZero() {
			peers[i].fencedUntil = until
		}
	}
	r.peers = peers
}

// leave takes this replica out, for good, of every list of replicas a write waits on, and
// keeps hearing and acknowledging notifications for as long as a list read before that may
// still be gone by (peersMaxAge, with a margin: leaseGrace), so that no write through
// another replica waits in vain for a replica that has stopped — its ack timeout, then its
// lease. Its row is marked fenced since long ago: no list holds it from then on, and a
// renewal already under way cannot make it live again. Its cache serves nothing from the
// start. With no other live replica, there is nothing to wait for.
func (r *replica) leave(ctx context.Context) {
	r.leaving.Store(true)
	r.cache.retire()
	var othersLive bool
	err := r.pool.QueryRow(ctx, `WITH gone AS (UPDATE replicas SET fenced = true, fenced_at = '-infinity' WHERE id = $1)
		SELECT EXISTS (SELECT 1 FROM replicas WHERE id <> $1 AND NOT fenced AND seen > now() - make_interval(secs => $2))`,
		r.id, livePeersWindow.Seconds()).Scan(&othersLive)
	if err != nil || !othersLive {
		return
	}
	select {
	case <-time.After(leaseGrace):
	case <-ctx.Done():
	}
}

// waitOutLease returns once a lease taken before it was called has surely run out.
func waitOutLease(ctx context.Context) error {
	select {
	case <-time.After(leaseTTL):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
