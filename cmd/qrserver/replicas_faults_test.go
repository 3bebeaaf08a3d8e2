package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/postgres/pgtest"
	"github.com/qrapi/qrapi/seed"
)

// These tests put the replicas through what happens to a deployment: a replica killed or
// frozen, PostgreSQL restarted or stalled, more instances than any cache would hold. Each
// request loop is bounded in count and in time.

var postgresScript = filepath.Join("..", "..", "deploy", "postgres.sh")

// ownPostgres is a PostgreSQL server of one test's own, for a test that restarts or stops
// it: its DSN, and the directory and port deploy/postgres.sh runs it in.
type ownPostgres struct{ dsn, dir, port string }

// startOwnPostgres starts one (deploy/postgres.sh); it is stopped and removed when the
// test ends. It runs where the shared test server does.
func startOwnPostgres(t *testing.T) *ownPostgres {
	t.Helper()
	pg := ownPostgresDir(t)
	pg.dsn = pg.run(t, "start")
	return pg
}

// ownPostgresDir is the directory and port of a PostgreSQL server of the test's own, not
// yet started; it is stopped and removed when the test ends.
func ownPostgresDir(t *testing.T) *ownPostgres {
	t.Helper()
	pgtest.ServerDSN(t)                       // skips, or fails under CI, as every PostgreSQL test does
	dir, err := os.MkdirTemp("", "qrapi-pg-") // not t.TempDir(): the postgres user must reach it
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	pg := &ownPostgres{dir: dir, port: freePort(t)}
	t.Cleanup(func() {
		exec.Command(postgresScript, "stop", dir).Run()
		os.RemoveAll(dir)
	})
	return pg
}

// run runs deploy/postgres.sh's command (start, restart, stop) on the server, and returns
// what it printed.
func (pg *ownPostgres) run(t *testing.T, command string) string {
	t.Helper()
	out, err := exec.Command(postgresScript, command, pg.dir, pg.port).Output()
	if err != nil {
		t.Fatalf("deploy/postgres.sh %s: %v %s", command, err, exitStderr(err))
	}
	return strings.TrimSpace(string(out))
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// signal sends sig to every process of the PostgreSQL server: the
// postmaster (the first line of postmaster.pid) and its children.
func (pg *ownPostgres) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pg.dir, "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	master, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	pids := []int{master}
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		stat, err := os.ReadFile(p)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after its last ')'.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(master) {
			pid, _ := strconv.Atoi(strings.SplitN(string(stat), " ", 2)[0])
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH {
			t.Fatalf("signal %v to PostgreSQL process %d: %v", sig, pid, err)
		}
	}
}

// seedWithInstances writes a seed file: the demo's, with n more instances in the demo
// account (plan-id-3, no limit), and returns its path and the added CRNs.
func seedWithInstances(t *testing.T, n int) (string, []string) {
	t.Helper()
	sd := seed.Demo()
	var crns []string
	for i := range n {
		crn := fmt.Sprintf("crn:v1:bluemix:public:quantum-computing:us-east:a/%s:00000000-0000-4000-8000-%012d::", acctDemo, i)
		crns = append(crns, crn)
		sd.Instances = append(sd.Instances, domain.SeedInstance{CRN: crn, PlanID: "plan-id-3", Backends: []string{"backend1"}})
	}
	b, err := json.Marshal(sd) // JSON is YAML: --seed reads it
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, crns
}

// putLimit sets an instance's limit through a replica and says how long it took.
func putLimit(base, tok, crn string, limit int) (int, string, time.Duration, error) {
	start := time.Now()
	st, b, _, err := req("PUT", base+"/api/v1/instances/configuration", tok, crn, fmt.Sprintf(`{"instance_limit": %d}`, limit))
	return st, b, time.Since(start), err
}

// limitOf reads an instance's limit through a replica: its configuration's body.
func limitOf(base, tok, crn string) (int, string, error) {
	st, b, _, err := req("GET", base+"/api/v1/instances/configuration", tok, crn, "")
	return st, b, err
}

func limitBody(limit int) string { return fmt.Sprintf(`{"instance_limit":%d}`+"\n", limit) }

// After a kill -9 of one replica, the next write through each other replica is answered as
// fast as the writes before the kill: no replica waits for the dead one.
func TestReplicasKill9StallsNoWrite(t *testing.T) {
	db := pgtest.NewDatabase(t)
	rs := startReplicas(t, db, 3)
	tok := tokenFor(t, rs[1].base, demoKey)
	var slowest time.Duration
	for i := range 40 {
		st, b, took, err := putLimit(rs[1+i%2].base, tok, demoCRN, 1000+i)
		if err != nil || st != 204 {
			t.Fatalf("PUT %d before the kill: %d %s %v", i, st, b, err)
		}
		slowest = max(slowest, took)
	}
	if err := rs[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	rs[0].cmd.Wait()
	for j, r := range rs[1:] {
		st, b, took, err := putLimit(r.base, tok, demoCRN, 2000+j)
		if err != nil || st != 204 {
			t.Fatalf("the first PUT through replica %d after the kill: %d %s %v", j+1, st, b, err)
		}
		t.Logf("replica %d: first PUT after the kill took %v; the slowest of 40 before it, %v", j+1, took, slowest)
		// A wait for the dead replica would add a timeout's worth (the cache protocol's took
		// 1 s); a busy machine adds noise, well under that.
		if took > slowest+750*time.Millisecond {
			t.Errorf("replica %d: the first PUT after the kill took %v, the slowest before it %v", j+1, took, slowest)
		}
	}
	if st, b, err := limitOf(rs[1].base, tok, demoCRN); err != nil || st != 200 || b != limitBody(2001) {
		t.Fatalf("after the writes, replica 1 reads %d %s %v", st, b, err)
	}
}

// A replica stopped with SIGSTOP for 3 s stalls no request sent to the others: each is
// answered in well under the 3 s, and the stopped replica answers what they wrote once it
// goes on.
func TestReplicaStoppedStallsNoOther(t *testing.T) {
	db := pgtest.NewDatabase(t)
	rs := startReplicas(t, db, 3)
	tok := tokenFor(t, rs[1].base, demoKey)
	if err := rs[0].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	var (
		wg      sync.WaitGroup
		slowest atomic.Int64
		last    [2]atomic.Int64
		errs    = make(chan error, 10)
	)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rs[1+w]
			for i := 0; i < 5000 && time.Since(stopped) < 3*time.Second; i++ {
				limit := 10000*(w+1) + i
				st, b, took, err := putLimit(r.base, tok, demoCRN, limit)
				if err != nil || st != 204 {
					errs <- fmt.Errorf("PUT through replica %d while replica 0 is stopped: %d %s %v", 1+w, st, b, err)
					return
				}
				last[w].Store(int64(limit))
				start := time.Now()
				if st, b, err := limitOf(rs[2-w].base, tok, demoCRN); err != nil || st != 200 {
					errs <- fmt.Errorf("GET through replica %d while replica 0 is stopped: %d %s %v", 2-w, st, b, err)
					return
				}
				for d := max(took, time.Since(start)); ; {
					old := slowest.Load()
					if int64(d) <= old || slowest.CompareAndSwap(old, int64(d)) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := rs[0].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("the slowest request to the other replicas while replica 0 was stopped: %v", time.Duration(slowest.Load()))
	if d := time.Duration(slowest.Load()); d > 2*time.Second { // a wait for the frozen one would take its 3 s
		t.Fatalf("a request to a running replica took %v while another was stopped for 3 s", d)
	}
	// Both writers wrote the same instance; whichever PUT was answered last is the value.
	_, b, err := limitOf(rs[1].base, tok, demoCRN)
	if err != nil || (b != limitBody(int(last[0].Load())) && b != limitBody(int(last[1].Load()))) {
		t.Fatalf("replica 1 reads %s, the last PUTs were %d and %d", b, last[0].Load(), last[1].Load())
	}
	if st, again, err := limitOf(rs[0].base, tok, demoCRN); err != nil || st != 200 || again != b {
		t.Fatalf("the replica that was stopped reads %d %s %v, the others %s", st, again, err, b)
	}
}

// errorContainer is the API's error body.
type errorContainer struct {
	Trace  string `json:"trace"`
	Errors []struct {
		Code string `json:"code"`
	} `json:"errors"`
}

// checkUnavailable fails unless an answer is a 503 in the error container whose trace is
// the call's.
func checkUnavailable(st int, body, trace string) error {
	var ec errorContainer
	if st != 503 || json.Unmarshal([]byte(body), &ec) != nil || ec.Trace == "" || ec.Trace != trace || len(ec.Errors) != 1 || ec.Errors[0].Code != "service_unavailable" {
		return fmt.Errorf("%d %s (trace %s), want a 503 in the error container with the call's trace", st, body, trace)
	}
	return nil
}

// PostgreSQL restarted under load (pg_ctl restart -m fast): each call is answered, 200 or
// 503 in the error container with its trace; once PostgreSQL is back every replica answers
// again without a restart of its own, and every usage record answered 200 is kept. Then
// PostgreSQL stopped for a while: every call to every replica is a 503 until it is back.
func TestReplicasOutlivePostgresRestart(t *testing.T) {
	pg := startOwnPostgres(t)
	rs := startReplicas(t, pg.dsn, 3)
	tok := tokenFor(t, rs[0].base, demoKey)
	var (
		sent, acked, unavailable atomic.Int64
		wg                       sync.WaitGroup
		stop                     = make(chan struct{})
		errs                     = make(chan error, 100)
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rs[w%3]
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				st, b, trace, err := req("POST", r.base+"/control/v1/usage", replicaAdminToken, "", fmt.Sprintf(`{"instance":%q,"seconds":1}`, demoCRN))
				switch {
				case err != nil:
					errs <- fmt.Errorf("usage record through replica %d: %v", w%3, err)
					return
				case st == 200:
					acked.Add(1)
				case checkUnavailable(st, b, trace) == nil:
					unavailable.Add(1)
					time.Sleep(10 * time.Millisecond)
				default:
					errs <- fmt.Errorf("usage record through replica %d: %v", w%3, checkUnavailable(st, b, trace))
					return
				}
				st, b, trace, err = req("GET", r.base+"/api/v1/instance", tok, demoCRN, "")
				if err == nil && st != 200 && checkUnavailable(st, b, trace) != nil {
					errs <- fmt.Errorf("GET through replica %d: %v", w%3, checkUnavailable(st, b, trace))
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	pg.run(t, "restart")
	time.Sleep(500 * time.Millisecond) // the load goes on against the restarted server
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("across the restart: %d usage records sent, %d answered 200, %d answered 503", sent.Load(), acked.Load(), unavailable.Load())
	got := consumed(t, rs[1].base, tok)
	if got < 30+float64(acked.Load()) || got > 30+float64(sent.Load()) {
		t.Fatalf("consumed %v: %d records answered 200 and %d sent after the seed's 30", got, acked.Load(), sent.Load())
	}

	// Down for a while: every replica answers 503, then answers again once it is back.
	pg.run(t, "stop")
	for i, r := range rs {
		st, b, trace, err := req("GET", r.base+"/api/v1/instances/usage", tok, demoCRN, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := checkUnavailable(st, b, trace); err != nil {
			t.Errorf("replica %d while PostgreSQL is down: %v", i, err)
		}
	}
	pg.run(t, "start")
	t.Cleanup(func() {
		if t.Failed() {
			for i, r := range rs {
				t.Logf("replica %d:\n%s", i, r.logs.String())
			}
		}
	})
	for i, r := range rs {
		if again := consumed(t, r.base, tok); again != got {
			t.Errorf("replica %d after PostgreSQL came back reads %v consumed, want %v", i, again, got)
		}
	}
}

// PostgreSQL stalled (every process stopped for 2 s with SIGSTOP, then resumed) while
// clients write through one replica and read through another: no GET that started after a
// PUT's 204 answers an older value, before, during or after the stall.
func TestReplicasReadTheirWritesAcrossPostgresStall(t *testing.T) {
	pg := startOwnPostgres(t)
	seedFile, crns := seedWithInstances(t, 16)
	rs := startReplicasSeeded(t, pg.dsn, 2, seedFile)
	tok := tokenFor(t, rs[0].base, demoKey)
	var (
		wg           sync.WaitGroup
		rounds, late atomic.Int64 // rounds done, and those answered after the stall began
		stalled      atomic.Bool
		errs         = make(chan error, 100)
		deadline     = time.Now().Add(6 * time.Second)
	)
	for c, crn := range crns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= 2000 && time.Now().Before(deadline); i++ {
				st, b, _, err := putLimit(rs[0].base, tok, crn, i)
				if err != nil || st != 204 {
					errs <- fmt.Errorf("client %d: PUT %d: %d %s %v", c, i, st, b, err)
					return
				}
				st, b, err = limitOf(rs[1].base, tok, crn)
				if err != nil || st != 200 || b != limitBody(i) {
					errs <- fmt.Errorf("client %d: GET after PUT %d's 204 answered %d %s %v", c, i, st, b, err)
					return
				}
				rounds.Add(1)
				if stalled.Load() {
					late.Add(1)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	stalled.Store(true)
	pg.signal(t, syscall.SIGSTOP)
	time.Sleep(2 * time.Second)
	pg.signal(t, syscall.SIGCONT)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d rounds of a PUT through one replica and a GET through the other, %d of them answered after the stall began", rounds.Load(), late.Load())
	if late.Load() < int64(len(crns)) {
		t.Fatalf("only %d rounds after the stall: the test did not test it", late.Load())
	}
}

// More instances than the 4,096 a cache once held, read through one replica while they
// are written through another: every read after a write's 204 answers that write's value.
func TestReplicasReadTheirWritesPast4096Instances(t *testing.T) {
	db := pgtest.NewDatabase(t)
	const clients, each = 8, 640 // 5,120 instances
	seedFile, crns := seedWithInstances(t, clients*each)
	rs := startReplicasSeeded(t, db, 2, seedFile)
	tok := tokenFor(t, rs[0].base, demoKey)
	var (
		wg       sync.WaitGroup
		read     atomic.Int64 // instances read through replica 1 before their write
		errs     = make(chan error, clients)
		deadline = time.Now().Add(150 * time.Second)
	)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each instance read through replica 1 first (so that a cache would hold it),
			// then written through replica 0 and read again through replica 1.
			for i, crn := range crns[c*each : (c+1)*each] {
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("client %d: out of time after %d instances", c, i)
					return
				}
				if st, b, err := limitOf(rs[1].base, tok, crn); err != nil || st != 200 || b != "{}\n" {
					errs <- fmt.Errorf("client %d: %s before its write: %d %s %v", c, crn, st, b, err)
					return
				}
				read.Add(1)
				if st, b, _, err := putLimit(rs[0].base, tok, crn, 100+i); err != nil || st != 204 {
					errs <- fmt.Errorf("client %d: PUT %s: %d %s %v", c, crn, st, b, err)
					return
				}
				if st, b, err := limitOf(rs[1].base, tok, crn); err != nil || st != 200 || b != limitBody(100+i) {
					errs <- fmt.Errorf("client %d: GET %s after its PUT of %d answered %d %s %v", c, crn, 100+i, st, b, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := read.Load(); n <= 4096 {
		t.Fatalf("%d instances read through one replica, want more than 4,096", n)
	}
	// The first instances written, read once more through the reading replica, past all the others.
	for c := range clients {
		if st, b, err := limitOf(rs[1].base, tok, crns[c*each]); err != nil || st != 200 || b != limitBody(100) {
			t.Errorf("client %d's first instance reads %d %s %v", c, st, b, err)
		}
	}
}

// freePort is a loopback port free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
