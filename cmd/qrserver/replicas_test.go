package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/postgres"
	"github.com/qrapi/qrapi/postgres/pgtest"
	"github.com/qrapi/qrapi/seed"
)

// These tests run three qrserver processes on one PostgreSQL database, as a deployment of
// replicas behind a load balancer would, and check that they answer as one server.

const replicaAdminToken = "replica-test-admin-token-0123456789"

var demoSeedFile = filepath.Join("..", "..", "seed", "demo.yaml")

// httpc keeps connections to the replicas open between requests.
var httpc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// startReplicas starts n replicas at once on one database, with the demo seed and the
// control API.
func startReplicas(t *testing.T, db string, n int) []*child {
	t.Helper()
	return startReplicasSeeded(t, db, n, demoSeedFile)
}

// startReplicasSeeded starts n replicas at once on one database, with the seed file
// seedFile and the control API.
func startReplicasSeeded(t *testing.T, db string, n int, seedFile string) []*child {
	t.Helper()
	out := make([]*child, n)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = startQrserver(t, "--db", db, "--seed", seedFile, "--admin-token", replicaAdminToken)
		}()
	}
	wg.Wait()
	for i, c := range out {
		if c == nil {
			t.Fatalf("replica %d did not start", i)
		}
	}
	return out
}

// req sends a request and returns its status, body and trace (X-Correlation-ID). It
// returns an error rather than failing the test, for the load loops.
func req(method, url, bearer, crn, body string) (int, string, string, error) {
	r, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	if crn != "" {
		r.Header.Set("Service-CRN", crn)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpc.Do(r)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("X-Correlation-ID"), err
}

func mustReq(t *testing.T, method, url, bearer, crn, body string) (int, string) {
	t.Helper()
	st, b, _, err := req(method, url, bearer, crn, body)
	if err != nil {
		t.Fatal(err)
	}
	return st, b
}

func tokenFor(t *testing.T, base, apiKey string) string {
	t.Helper()
	resp, err := httpc.PostForm(base+"/identity/token", url.Values{"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}, "apikey": {apiKey}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tr)
	if tr.AccessToken == "" {
		t.Fatalf("no token for the key from %s: %d", base, resp.StatusCode)
	}
	return tr.AccessToken
}

// listedReads returns how many times the audit listing from the replica at base holds each
// call's event (by its correlation id), for the instance reads; st is the listing's status.
func listedReads(t *testing.T, base string) (listed map[string]int, st int) {
	t.Helper()
	st, b, _, err := req("GET", base+"/control/v1/audit-events?action=quantum-computing.instance.read&limit=1000", replicaAdminToken, "", "")
	if err != nil || st != 200 {
		return nil, st
	}
	var list struct {
		Events []struct {
			CorrelationID string `json:"correlationId"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(b), &list); err != nil {
		t.Fatal(err)
	}
	listed = map[string]int{}
	for _, ev := range list.Events {
		listed[ev.CorrelationID]++
	}
	return listed, st
}

// recordUsage adds seconds through the control API and returns the consumed seconds it
// answered.
func recordUsage(base string, seconds float64) (int, float64, error) {
	st, b, _, err := req("POST", base+"/control/v1/usage", replicaAdminToken, "", fmt.Sprintf(`{"instance":%q,"seconds":%v}`, demoCRN, seconds))
	if err != nil || st != 200 {
		return st, 0, err
	}
	var out struct {
		Consumed float64 `json:"usage_consumed_seconds"`
	}
	err = json.Unmarshal([]byte(b), &out)
	return st, out.Consumed, err
}

// consumed reads the demo instance's consumed seconds through a replica's usage operation.
func consumed(t *testing.T, base, tok string) float64 {
	t.Helper()
	st, b := mustReq(t, "GET", base+"/api/v1/instances/usage", tok, demoCRN, "")
	if st != 200 {
		t.Fatalf("usage from %s: %d %s", base, st, b)
	}
	var u struct {
		Consumed float64 `json:"usage_consumed_seconds"`
	}
	if err := json.Unmarshal([]byte(b), &u); err != nil {
		t.Fatal(err)
	}
	return u.Consumed
}

// Three replicas starting at once on an empty database: exactly one seeds it. Then 1,000
// rounds of a PUT through one replica and a GET through another: every GET sees its PUT,
// and a usage record through one is seen by the next read through another.
func TestReplicasReadTheirWrites(t *testing.T) {
	db := pgtest.NewDatabase(t)
	rs := startReplicas(t, db, 3)
	seeded := 0
	for _, r := range rs {
		seeded += strings.Count(r.logs.String(), "database seeded")
	}
	if seeded != 1 {
		t.Fatalf("%d replicas seeded the database, want exactly 1", seeded)
	}
	tok := tokenFor(t, rs[0].base, demoKey)
	for i := range 1000 {
		w, r := rs[i%3], rs[(i+1)%3]
		limit := 1000 + i
		if st, b := mustReq(t, "PUT", w.base+"/api/v1/instances/configuration", tok, demoCRN, fmt.Sprintf(`{"instance_limit": %d}`, limit)); st != 204 {
			t.Fatalf("round %d: PUT through replica %d: %d %s", i, i%3, st, b)
		}
		st, b := mustReq(t, "GET", r.base+"/api/v1/instances/configuration", tok, demoCRN, "")
		if want := fmt.Sprintf(`{"instance_limit":%d}`+"\n", limit); st != 200 || b != want {
			t.Fatalf("round %d: GET through replica %d after a PUT through replica %d: %d %s, want %s", i, (i+1)%3, i%3, st, b, want)
		}
	}
	for i := range 30 {
		if st, _, err := recordUsage(rs[i%3].base, 1); err != nil || st != 200 {
			t.Fatalf("usage record %d: %d %v", i, st, err)
		}
		if got := consumed(t, rs[(i+2)%3].base, tok); got != float64(31+i) {
			t.Fatalf("after usage record %d through replica %d, replica %d reads %v consumed, want %d", i, i%3, (i+2)%3, got, 31+i)
		}
	}
}

// Concurrent PUTs and usage records through all three replicas: nothing is lost, every
// PUT's answer agrees with the usage recorded before and after it (the 409 rule), and the
// final state is the one the answers imply, the same on every replica.
func TestReplicasConcurrentWritesLoseNothing(t *testing.T) {
	db := pgtest.NewDatabase(t)
	rs := startReplicas(t, db, 3)
	tok := tokenFor(t, rs[0].base, demoKey)
	const recorders, records = 6, 40
	var (
		started, answered atomic.Int64 // usage records sent, and answered 200
		wg                sync.WaitGroup
		mu                sync.Mutex
		accepted          = map[int]bool{}
	)
	errs := make(chan error, 1000)
	for w := range recorders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range records {
				started.Add(1)
				st, _, err := recordUsage(rs[w%3].base, 1)
				if err != nil || st != 200 {
					errs <- fmt.Errorf("usage record through replica %d: %d %v", w%3, st, err)
					return
				}
				answered.Add(1)
			}
		}()
	}
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				limit := 30 + recorders*records*i/40 + w*3 // from the start's usage to past the end's
				before := answered.Load()
				st, b, _, err := req("PUT", rs[(w+1)%3].base+"/api/v1/instances/configuration", tok, demoCRN, fmt.Sprintf(`{"instance_limit": %d}`, limit))
				after := started.Load()
				switch {
				case err != nil:
					errs <- err
					return
				case st == 204 && float64(limit) < 30+float64(before):
					errs <- fmt.Errorf("limit %d accepted although %d seconds were consumed before it was sent", limit, 30+before)
				case st == 409 && float64(limit) >= 30+float64(after):
					errs <- fmt.Errorf("limit %d refused although at most %d seconds were consumed when it was answered", limit, 30+after)
				case st == 204:
					mu.Lock()
					accepted[limit] = true
					mu.Unlock()
				case st != 409:
					errs <- fmt.Errorf("PUT %d: %d %s", limit, st, b)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := float64(30 + recorders*records)
	var limits []string
	for i, r := range rs {
		if got := consumed(t, r.base, tok); got != want {
			t.Errorf("replica %d reads %v consumed, want %v: a usage record was lost", i, got, want)
		}
		_, b := mustReq(t, "GET", r.base+"/api/v1/instances/configuration", tok, demoCRN, "")
		limits = append(limits, b)
	}
	var final struct {
		Limit *int `json:"instance_limit"`
	}
	json.Unmarshal([]byte(limits[0]), &final)
	if limits[0] != limits[1] || limits[1] != limits[2] || final.Limit == nil || !accepted[*final.Limit] {
		t.Fatalf("final limits %q: not one limit that a PUT was answered 204 for", limits)
	}
}

// kill -9 of one replica under load: the other two answer every request sent to them,
// nothing acknowledged is lost, and the killed replica restarts into the same state.
func TestReplicasSurviveKill9UnderLoad(t *testing.T) {
	db := pgtest.NewDatabase(t)
	rs := startReplicas(t, db, 3)
	tok := tokenFor(t, rs[0].base, demoKey)
	var (
		sent, acked atomic.Int64
		wg          sync.WaitGroup
		stop        = make(chan struct{})
	)
	errs := make(chan error, 100)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := w % 3
			deadline := time.Now().Add(20 * time.Second)
			for i := 0; i < 2000 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				st, _, err := recordUsage(rs[r].base, 1)
				if err == nil && st == 200 {
					acked.Add(1)
				} else if r == 0 {
					time.Sleep(10 * time.Millisecond) // the killed replica: no busy loop
					continue
				} else {
					errs <- fmt.Errorf("replica %d, still up, failed a usage record: %d %v", r, st, err)
					return
				}
				if st, _, _, err := req("GET", rs[r].base+"/api/v1/instance", tok, demoCRN, ""); r != 0 && (err != nil || st != 200) {
					errs <- fmt.Errorf("replica %d, still up, failed a GET: %d %v", r, st, err)
					return
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	if err := rs[0].cmd.Process.Kill(); err != nil { // SIGKILL, in the middle of the load
		t.Fatal(err)
	}
	rs[0].cmd.Wait()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := consumed(t, rs[1].base, tok)
	if got < 30+float64(acked.Load()) || got > 30+float64(sent.Load()) {
		t.Fatalf("consumed %v: %d records acknowledged and %d sent after the seed's 30", got, acked.Load(), sent.Load())
	}
	t.Logf("%d usage records sent, %d acknowledged; %v seconds consumed", sent.Load(), acked.Load(), got)
	restarted := startQrserver(t, "--db", db, "--seed", demoSeedFile, "--admin-token", replicaAdminToken)
	if strings.Contains(restarted.logs.String(), "database seeded") {
		t.Fatal("the restarted replica seeded the database again")
	}
	if again := consumed(t, restarted.base, tok); again != got {
		t.Fatalf("the restarted replica reads %v consumed, the others %v", again, got)
	}
}

// When every connection of the replicas to the database is terminated at once, as a
// database restart does, twice during a run of calls, the replicas go on: each call is
// answered 200 or, while the database cannot answer it, 503 — never a 401 that would
// blame a good token — every call's audit event is kept exactly once (a batch that met a
// dead connection is tried again), and afterwards a PUT through one replica is read
// through the other.
func TestReplicasOutliveTheirConnectionsBeingTerminated(t *testing.T) {
	db := pgtest.NewDatabase(t)
	rs := startReplicas(t, db, 2)
	tok := tokenFor(t, rs[0].base, demoKey)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	traces := map[string]bool{}
	answers := map[int]int{}
	for i := range 200 {
		if i == 50 || i == 120 {
			if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
				t.Fatal(err)
			}
		}
		st, b, trace, err := req("GET", rs[i%2].base+"/api/v1/instance", tok, demoCRN, "")
		if err != nil || (st != 200 && st != 503) || trace == "" {
			t.Fatalf("call %d through replica %d: %d %s %v", i, i%2, st, b, err)
		}
		answers[st]++
		traces[trace] = true
	}
	t.Logf("answers: %v", answers)
	var listed map[string]int
	for deadline := time.Now().Add(15 * time.Second); ; {
		if listed, _ = listedReads(t, rs[1].base); len(listed) >= len(traces) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s, %d of the %d calls' events are listed", len(listed), len(traces))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for tr, n := range listed {
		if n != 1 || !traces[tr] {
			t.Fatalf("the event of %s is listed %d times (a call made: %v)", tr, n, traces[tr])
		}
	}
	// A PUT through replica 0 (tried until the database answers it), then a GET through 1.
	for deadline := time.Now().Add(15 * time.Second); ; {
		st, b, _, err := req("PUT", rs[0].base+"/api/v1/instances/configuration", tok, demoCRN, `{"instance_limit": 4545}`)
		if err == nil && st == 204 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no PUT answered 204 within 15 s: %d %s %v", st, b, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st, b := mustReq(t, "GET", rs[1].base+"/api/v1/instances/configuration", tok, demoCRN, ""); st != 200 || b != `{"instance_limit":4545}`+"\n" {
		t.Fatalf("GET through replica 1 after the PUT through replica 0: %d %s", st, b)
	}
}

// A reset through one replica holds on the others at once: the seed's state, and its
// principals and policies for tokens issued before the reset.
func TestReplicasResetIsSeenByAll(t *testing.T) {
	db := pgtest.NewDatabase(t)
	// The database starts from a seed in which the reader is an Administrator and a
	// principal exists that the demo seed lacks; the replicas' --seed is the demo seed.
	ctx := context.Background()
	store, err := postgres.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	before := seed.Demo()
	for i := range before.Principals {
		if before.Principals[i].ID == "IBMid-demo-reader" {
			before.Principals[i].Policies = []domain.SeedPolicyIn{{Role: domain.RoleAdministrator, Account: acctDemo}}
		}
	}
	before.Principals = append(before.Principals, domain.SeedPrincipal{ID: "IBMid-gone", Type: domain.PrincipalUser, Name: "Gone", Account: acctDemo,
		APIKeys: []string{goneKey}, Policies: []domain.SeedPolicyIn{{Role: domain.RoleAdministrator, Account: acctDemo}}})
	if err := store.Load(ctx, before); err != nil {
		t.Fatal(err)
	}
	store.Close()

	rs := startReplicas(t, db, 3)
	admin, reader, gone := tokenFor(t, rs[0].base, demoKey), tokenFor(t, rs[1].base, readerKey), tokenFor(t, rs[2].base, goneKey)
	for i, r := range rs {
		for _, tok := range []string{reader, gone} {
			if st, b := mustReq(t, "PUT", r.base+"/api/v1/instances/configuration", tok, demoCRN, fmt.Sprintf(`{"instance_limit": %d}`, 500+i)); st != 204 {
				t.Fatalf("before the reset, replica %d: %d %s", i, st, b)
			}
		}
	}
	if st, _, err := recordUsage(rs[0].base, 7); st != 200 || err != nil {
		t.Fatalf("usage record: %d %v", st, err)
	}
	if st, b := mustReq(t, "POST", rs[1].base+"/control/v1/reset", replicaAdminToken, "", ""); st != 204 {
		t.Fatalf("reset: %d %s", st, b)
	}
	for i, r := range rs {
		if st, b := mustReq(t, "GET", r.base+"/api/v1/instances/configuration", admin, demoCRN, ""); st != 200 || b != "{}\n" {
			t.Errorf("replica %d after the reset: %d %s, want the seed's: no limit", i, st, b)
		}
		if got := consumed(t, r.base, admin); got != 30 {
			t.Errorf("replica %d after the reset: %v consumed, want the seed's 30", i, got)
		}
		if st, _ := mustReq(t, "PUT", r.base+"/api/v1/instances/configuration", reader, demoCRN, `{"instance_limit": 900}`); st != 403 {
			t.Errorf("replica %d after the reset: the reader (now Reader) PUT answered %d, want 403", i, st)
		}
		if st, _ := mustReq(t, "GET", r.base+"/api/v1/instance", gone, demoCRN, ""); st != 401 {
			t.Errorf("replica %d after the reset: a token of a principal the seed lacks answered %d, want 401", i, st)
		}
	}
}

const (
	readerKey = "qrdemo-reader-key-0123456789abcdefghijklmno"
	goneKey   = "qrdemo-gone-key-0123456789abcdefghijklmnopq"
	acctDemo  = "8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b"
)

// A token from one replica works on the others, and the audit listing from any replica
// holds every call's event exactly once.
func TestReplicasShareTokensAndAudit(t *testing.T) {
	db := pgtest.NewDatabase(t)
	rs := startReplicas(t, db, 3)
	tok := tokenFor(t, rs[0].base, demoKey)
	traces := map[string]bool{}
	for i := range 60 {
		st, b, trace, err := req("GET", rs[i%3].base+"/api/v1/instance", tok, demoCRN, "")
		if err != nil || st != 200 || trace == "" {
			t.Fatalf("GET through replica %d with replica 0's token: %d %s %v", i%3, st, b, err)
		}
		traces[trace] = true
	}
	for i, r := range rs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			seen, st := listedReads(t, r.base)
			if st != 200 {
				t.Fatalf("audit listing from replica %d: %d", i, st)
			}
			for tr, n := range seen {
				if n > 1 {
					t.Fatalf("replica %d lists the event of %s %d times", i, tr, n)
				}
				if !traces[tr] {
					t.Fatalf("replica %d lists an event of a call never made: %s", i, tr)
				}
			}
			if len(seen) == len(traces) {
				break
			}
			// Another replica's events are kept in its next batch, within 20 ms.
			if time.Now().After(deadline) {
				t.Fatalf("replica %d lists %d of the %d events", i, len(seen), len(traces))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Fault rules are shared: a rule added through one replica is applied by all at once, its
// count is exact across them under concurrent calls, the listing from any replica shows its
// hits, and a delete through one is seen by all.
func TestReplicasShareFaultRules(t *testing.T) {
	db := pgtest.NewDatabase(t)
	rs := startReplicas(t, db, 3)
	tok := tokenFor(t, rs[0].base, demoKey)
	// Every replica first answers, and caches, that there is no rule.
	for i, r := range rs {
		if st, b := mustReq(t, "GET", r.base+"/api/v1/instance", tok, demoCRN, ""); st != 200 {
			t.Fatalf("replica %d before any rule: %d %s", i, st, b)
		}
	}
	st, b := mustReq(t, "POST", rs[0].base+"/control/v1/faults", replicaAdminToken, "", `{"operation": "get_instance", "status": 503, "count": 12}`)
	if st != 201 {
		t.Fatalf("add fault: %d %s", st, b)
	}
	var rule struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(b), &rule)
	// The next call through another replica is faulted: no replica still holds "no rule".
	if st, b := mustReq(t, "GET", rs[2].base+"/api/v1/instance", tok, demoCRN, ""); st != 503 || !strings.Contains(b, "injected_fault") {
		t.Fatalf("replica 2 right after the add through replica 0: %d %s", st, b)
	}
	var injected, ok, other atomic.Int32
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				st, _, _, err := req("GET", rs[w%3].base+"/api/v1/instance", tok, demoCRN, "")
				switch {
				case err != nil:
					other.Add(1)
				case st == 503:
					injected.Add(1)
				case st == 200:
					ok.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if injected.Load() != 11 || ok.Load() != 49 || other.Load() != 0 {
		t.Fatalf("60 calls across 3 replicas under a count-12 rule (1 spent before): %d injected, %d OK, %d other; want 11, 49, 0", injected.Load(), ok.Load(), other.Load())
	}
	for i, r := range rs {
		st, b := mustReq(t, "GET", r.base+"/control/v1/faults", replicaAdminToken, "", "")
		if st != 200 || !strings.Contains(b, `"hits":12`) || !strings.Contains(b, `"live":false`) {
			t.Errorf("the listing from replica %d: %d %s", i, st, b)
		}
	}
	// Delete a live rule through one replica: none applies it after.
	if st, b = mustReq(t, "POST", rs[1].base+"/control/v1/faults", replicaAdminToken, "", `{"status": 500}`); st != 201 {
		t.Fatalf("add fault: %d %s", st, b)
	}
	json.Unmarshal([]byte(b), &rule)
	if st, _ := mustReq(t, "GET", rs[0].base+"/api/v1/instance", tok, demoCRN, ""); st != 500 {
		t.Fatalf("under a rule for every call: %d", st)
	}
	if st, b := mustReq(t, "DELETE", rs[1].base+"/control/v1/faults/"+rule.ID, replicaAdminToken, "", ""); st != 204 {
		t.Fatalf("delete: %d %s", st, b)
	}
	for i, r := range rs {
		if st, b := mustReq(t, "GET", r.base+"/api/v1/instance", tok, demoCRN, ""); st != 200 {
			t.Errorf("replica %d after the delete through replica 1: %d %s", i, st, b)
		}
	}
}

// fixtureOf makes a fixture through a replica and returns its id, its instance's CRN and
// its principal's key.
func fixtureOf(t *testing.T, base string) (id, crn, key string) {
	t.Helper()
	st, b, _, err := req("POST", base+"/control/v1/fixtures", replicaAdminToken, "", `{"accounts": [{}], "instances": [{"plan_id": "p"}], "principals": [{}]}`)
	if err != nil || st != 201 {
		t.Fatalf("create fixture through %s: %d %s %v", base, st, b, err)
	}
	var f fixtureAnswer
	if err := json.Unmarshal([]byte(b), &f); err != nil {
		t.Fatal(err)
	}
	return f.ID, f.Instances[0], f.Principals[0].APIKeys[0]
}

// fixtureAnswer is what create_fixture answers, in part.
type fixtureAnswer struct {
	ID         string   `json:"id"`
	Instances  []string `json:"instances"`
	Principals []struct {
		APIKeys []string `json:"api_keys"`
	} `json:"principals"`
}

// Two fixtures made at once through different replicas: each is seen by every replica as
// soon as its 201 is answered, each one's key is refused on the other's instance (403), a
// delete through one replica holds on the others, and a restarted replica finds them.
func TestReplicasShareFixtures(t *testing.T) {
	db := pgtest.NewDatabase(t)
	rs := startReplicas(t, db, 2)
	type made struct{ id, crn, key string }
	var (
		fx [2]made
		wg sync.WaitGroup
	)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fx[i].id, fx[i].crn, fx[i].key = fixtureOf(t, rs[i].base)
		}()
	}
	wg.Wait()
	call := func(r *child, key, crn string) int {
		tok := tokenFor(t, r.base, key)
		st, _, _, err := req("GET", r.base+"/api/v1/instance", tok, crn, "")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for i := range 2 {
		other := rs[1-i] // the replica that did not make it
		if st := call(other, fx[i].key, fx[i].crn); st != 200 {
			t.Errorf("fixture %d through the other replica: %d", i, st)
		}
		if st := call(other, fx[i].key, fx[1-i].crn); st != 403 {
			t.Errorf("fixture %d's key on fixture %d's instance: %d, want 403", i, 1-i, st)
		}
	}
	tok := tokenFor(t, rs[1].base, fx[0].key)
	if st, b := mustReq(t, "DELETE", rs[0].base+"/control/v1/fixtures/"+fx[0].id, replicaAdminToken, "", ""); st != 204 {
		t.Fatalf("delete through replica 0: %d %s", st, b)
	}
	if st, _ := mustReq(t, "GET", rs[1].base+"/api/v1/instance", tok, fx[0].crn, ""); st != 401 {
		t.Errorf("a token of the deleted fixture through replica 1: %d, want 401", st)
	}
	restarted := startQrserver(t, "--db", db, "--seed", demoSeedFile, "--admin-token", replicaAdminToken)
	if st := call(restarted, fx[1].key, fx[1].crn); st != 200 {
		t.Errorf("the kept fixture through a replica started since: %d", st)
	}
}
