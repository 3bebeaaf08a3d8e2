package postgres

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Direct messages. An instance write (writer.go) is sent, once committed, straight to each
// other live replica over a TCP connection between the two, and acknowledged on it, rather
// than notified through the database: a NOTIFY in the write's transaction and an ack by
// NOTIFY woke every listening backend twice and cost PostgreSQL a third of its CPU on the
// 90/10 mix over two replicas. The protocol of cache.go is the same: the writer answers
// once every replica in the list of live replicas it reads after its commit has acked, or
// has been fenced and its lease is out. What NOTIFY gave for free is kept so:
//   - Order: a message may arrive after a later write's, or after a reset's drop of
//     everything. Versions come from one sequence (migration 0009), so they grow in commit
//     order across resets, and a direct message only replaces an older state the cache
//     holds (applyInPlace); one that finds nothing stops the reads in flight from filling.
//   - Delivery: a writer that dies between its commit and its messages never answered, and
//     the replica whose connection from it closes drops its whole cache.
//   - Authenticity: both ends prove they hold the secret kept in the database (settings
//     peer_secret) before any message, so no other process can make a replica drop its
//     cache or forge an ack.
//   - Reach: a write made while some live replica has no connection yet (or takes no
//     direct messages: peer_addr null) notifies in its transaction as before; one whose
//     message does not go through is notified through the database after its commit.

const (
	peerProtocol         = "QRPEER1"
	peerSecretSetting    = "peer_secret"
	peerHandshakeTimeout = time.Second
	peerDialTimeout      = 500 * time.Millisecond
	peerRedialAfter      = time.Second // after a failed dial, writes notify until then
	peerWriteTimeout     = time.Second
	maxFrame             = 1 << 20
	// NoPeerAddr, as Options.PeerAddr, takes no direct messages: writes through other
	// replicas notify this one through the database.
	NoPeerAddr = "none"
)

// directNet is a replica's side of the direct messages: the port it takes them on, and its
// connections to the other replicas' ports.
type directNet struct {
	r       *replica
	ln      net.Listener // nil: this replica takes no direct messages
	addr    string       // ln's address, as the replicas table shows it ("" if none)
	secret  []byte
	mu      sync.Mutex
	conns   map[string]*peerConn // to other replicas, by id
	dialing map[string]bool
	failed  map[string]time.Time     // when a dial to a replica last failed
	served  map[net.Conn]*servedConn // from other replicas
	closed  bool
	// For tests: messages sent and taken.
	sent, taken atomic.Int64
}

// servedConn is a connection from another replica: which one (once it has proved it
// holds the secret), and since when.
type servedConn struct {
	writer string
	since  time.Time
}

// peerConn is a connection to another replica's port.
type peerConn struct {
	id, addr string
	c        net.Conn
	mu       sync.Mutex // one frame at a time
	w        *bufio.Writer
}

// listenDirect opens this replica's port at addr ("" for a loopback port of the system's
// choosing; NoPeerAddr for none).
func listenDirect(r *replica, addr string, secret []byte) (*directNet, error) {
	d := &directNet{r: r, secret: secret, conns: map[string]*peerConn{}, dialing: map[string]bool{},
		failed: map[string]time.Time{}, served: map[net.Conn]*servedConn{}}
	if addr == NoPeerAddr {
		return d, nil
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("postgres: peer address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("postgres: peer address %q: the other replicas connect to it as given, so it must name this host (for example 127.0.0.1:0 or 10.0.0.5:7400)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("postgres: peer port: %w", err)
	}
	d.ln, d.addr = ln, ln.Addr().String()
	if net.ParseIP(host) == nil { // a host name: the others resolve it themselves
		d.addr = net.JoinHostPort(host, fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	}
	go d.accept()
	return d, nil
}

// close stops taking messages and closes every connection.
func (d *directNet) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.ln != nil {
		d.ln.Close()
	}
	for c := range d.served {
		c.Close()
	}
	for _, pc := range d.conns {
		pc.c.Close()
	}
}

func (d *directNet) accept() {
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			c.Close()
			return
		}
		d.served[c] = &servedConn{}
		d.mu.Unlock()
		go d.serve(c)
	}
}

// serve takes one writer's messages: each is applied to the cache, then acked.
func (d *directNet) serve(c net.Conn) {
	defer func() {
		c.Close()
		d.mu.Lock()
		delete(d.served, c)
		d.mu.Unlock()
	}()
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	c.SetDeadline(time.Now().Add(peerHandshakeTimeout))
	from, err := d.acceptHandshake(br, bw)
	if err != nil {
		d.r.log.Warn("postgres: refused a connection to the peer port", "remote", c.RemoteAddr().String(), "error", err)
		return
	}
	c.SetDeadline(time.Time{})
	d.mu.Lock()
	if sc := d.served[c]; sc != nil {
		sc.writer, sc.since = from, time.Now()
	}
	d.mu.Unlock()
	// The writer went away (or dropGone took it for gone): it may have committed a change
	// it had not sent yet.
	defer d.r.cache.invalidate("")
	for {
		p, err := readFrame(br)
		if err != nil {
			return
		}
		writer, seq, _, body := parseChange(p)
		if writer != from {
			d.r.log.Warn("postgres: a peer sent a message in another's name; closing its connection", "peer", from)
			return
		}
		d.r.take(body, true) // a direct message is always kept in place
		d.taken.Add(1)
		if d.r.dropAcks.Load() {
			continue
		}
		if err := writeFrame(bw, from+" "+seq+" "+d.r.id); err != nil {
			return
		}
	}
}

// The handshake, in which each end proves it holds the secret, over a nonce of each:
//
//	writer → replica: QRPEER1 <writer id> <writer nonce>
//	replica → writer: <replica id> <replica nonce> <mac("replica")>
//	writer → replica: <mac("writer")>
//
// where mac(side) is HMAC-SHA256 under the secret of side and both ids and nonces.
func (d *directNet) mac(side, writer, replica, wNonce, rNonce string) string {
	h := hmac.New(sha256.New, d.secret)
	io.WriteString(h, strings.Join([]string{peerProtocol, side, writer, replica, wNonce, rNonce}, "\x00"))
	return hex.EncodeToString(h.Sum(nil))
}

func nonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// acceptHandshake is the replica's side; it returns the writer's id.
func (d *directNet) acceptHandshake(br *bufio.Reader, bw *bufio.Writer) (string, error) {
	line, err := readLine(br)
	if err != nil {
		return "", err
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != peerProtocol {
		return "", errors.New("not the peer protocol")
	}
	writer, wNonce, rNonce := f[1], f[2], nonce()
	if err := writeLine(bw, d.r.id, rNonce, d.mac("replica", writer, d.r.id, wNonce, rNonce)); err != nil {
		return "", err
	}
	line, err = readLine(br)
	if err != nil {
		return "", err
	}
	if !hmac.Equal([]byte(line), []byte(d.mac("writer", writer, d.r.id, wNonce, rNonce))) {
		return "", errors.New("the writer does not hold the peer secret")
	}
	return writer, nil
}

// connect dials replica p and makes the writer's side of the handshake.
func (d *directNet) connect(p peer) (*peerConn, error) {
	c, err := net.DialTimeout("tcp", p.addr, peerDialTimeout)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*peerConn, error) {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Now().Add(peerHandshakeTimeout))
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	wNonce := nonce()
	if err := writeLine(bw, peerProtocol, d.r.id, wNonce); err != nil {
		return fail(err)
	}
	line, err := readLine(br)
	if err != nil {
		return fail(err)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != p.id {
		return fail(fmt.Errorf("%s is not replica %s", p.addr, p.id))
	}
	rNonce := f[1]
	if !hmac.Equal([]byte(f[2]), []byte(d.mac("replica", d.r.id, p.id, wNonce, rNonce))) {
		return fail(fmt.Errorf("replica %s at %s does not hold the peer secret", p.id, p.addr))
	}
	if err := writeLine(bw, d.mac("writer", d.r.id, p.id, wNonce, rNonce)); err != nil {
		return fail(err)
	}
	c.SetDeadline(time.Time{})
	pc := &peerConn{id: p.id, addr: p.addr, c: c, w: bw}
	go d.readAcks(pc, br)
	return pc, nil
}

// readAcks hands the acks that come on pc to the writes waiting for them.
func (d *directNet) readAcks(pc *peerConn, br *bufio.Reader) {
	for {
		line, err := readFrame(br)
		if err != nil {
			d.drop(pc)
			return
		}
		d.r.acked(line)
	}
}

// drop forgets pc, if it is still the connection to its replica, and closes it.
func (d *directNet) drop(pc *peerConn) {
	d.mu.Lock()
	if d.conns[pc.id] == pc {
		delete(d.conns, pc.id)
	}
	d.mu.Unlock()
	pc.c.Close()
}

// dropGone closes the connections from writers that a renewal which began at start did not
// list, which drops the cache (serve): a writer whose row has left the live window — its
// machine vanished, say, with no FIN to close the connection — may have committed a change
// it never sent. A connection made after the renewal began may come from a writer that
// renewal could not list yet, and stays.
func (d *directNet) dropGone(peers []peer, start time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c, sc := range d.served {
		if sc.writer == "" || !sc.since.Before(start) {
			continue
		}
		if !slices.ContainsFunc(peers, func(p peer) bool { return p.id == sc.writer }) {
			d.r.log.Info("postgres: a writer connected to the peer port is no longer live (it left, or its renewals stopped); dropping its connection and the cache", "replica", sc.writer)
			c.Close()
		}
	}
}

// ready reports whether each of peers that is not fenced can be sent a message: it has a
// connection to the address its row gives. For one without, it starts a dial (unless one
// is under way, or failed less than peerRedialAfter ago).
func (d *directNet) ready(peers []peer) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	ok := true
	for _, p := range peers {
		if !p.fencedUntil.IsZero() {
			continue // waited out by its lease: no message needed
		}
		if pc := d.conns[p.id]; pc != nil && pc.addr == p.addr {
			continue
		}
		ok = false
		if p.addr == "" || d.closed || d.dialing[p.id] || time.Since(d.failed[p.id]) < peerRedialAfter {
			continue
		}
		d.dialing[p.id] = true
		go d.dial(p)
	}
	return ok
}

func (d *directNet) dial(p peer) {
	pc, err := d.connect(p)
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.dialing, p.id)
	if err != nil {
		d.failed[p.id] = time.Now()
		d.r.log.Warn("postgres: no connection to a replica's peer port; writes notify it through the database", "replica", p.id, "error", err)
		return
	}
	if d.closed {
		pc.c.Close()
		return
	}
	if old := d.conns[p.id]; old != nil {
		old.c.Close()
	}
	d.conns[p.id] = pc
}

// send sends a write's message to each of peers that is not fenced, and reports whether
// every one went out.
func (d *directNet) send(peers []peer, payload string) bool {
	ok := true
	for _, p := range peers {
		if !p.fencedUntil.IsZero() {
			continue
		}
		d.mu.Lock()
		pc := d.conns[p.id]
		d.mu.Unlock()
		if pc == nil || pc.addr != p.addr {
			ok = false
			continue
		}
		pc.mu.Lock()
		pc.c.SetWriteDeadline(time.Now().Add(peerWriteTimeout))
		err := writeFrame(pc.w, payload)
		pc.mu.Unlock()
		if err != nil {
			d.drop(pc)
			ok = false
			continue
		}
		d.sent.Add(1)
	}
	return ok
}

// A frame is a 4-byte big-endian length and that many bytes.
func writeFrame(w *bufio.Writer, s string) error {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(s)))
	w.Write(h[:])
	w.WriteString(s)
	return w.Flush()
}

func readFrame(r *bufio.Reader) (string, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > maxFrame {
		return "", fmt.Errorf("a frame of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// writeLine writes one handshake line, its fields apart by spaces.
func writeLine(w *bufio.Writer, fields ...string) error {
	w.WriteString(strings.Join(fields, " ") + "\n")
	return w.Flush()
}

// readLine reads one handshake line (at most the reader's buffer).
func readLine(r *bufio.Reader) (string, error) {
	b, err := r.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// peerSecret returns the secret the replicas' handshakes prove they hold, made by the
// first replica that needs it.
func (s *Store) peerSecret(ctx context.Context) ([]byte, error) {
	return s.Setting(ctx, peerSecretSetting, func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	})
}
