// Command loadgen is make bench-load: it starts qrserver, the bare echo baseline and Prism
// on loopback ports, loads each with a fixed number of requests at fixed concurrency
// (bounded in count and time), and reports throughput, latency, errors, peak RSS and
// start-up time as a table and as bench/results.json.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/postgres/pgtest"
)

const (
	apiKey = "qrdemo-admin-key-0123456789abcdefghijklmnop"
	crn    = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::"
)

type options struct {
	qrserver, baseline, prism, seed, out string
	requests                             int
	warmup                               int
	profile                              string
	onlyQR, onlyPG                       bool
	replicaEnv, pgScenario               string
	mix                                  float64
	conns                                []int
	maxRun                               time.Duration
	postgres                             string
	gomaxprocs, pgRounds                 int
}

// Result is one load run.
type Result struct {
	Server      string  `json:"server"`
	Scenario    string  `json:"scenario"`
	Connections int     `json:"connections"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	Seconds     float64 `json:"seconds"`
	Throughput  float64 `json:"throughput_rps"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	// CPUusPerReq is the server processes' CPU time (user and system, from /proc) over the
	// run and its warm-up, per request: what a request costs, which moves far less between
	// runs on a shared machine than throughput does.
	CPUusPerReq float64 `json:"cpu_us_per_request"`
	LostUpdates *bool   `json:"lost_updates,omitempty"`
	// In a mix, the GETs' and the PUTs' latencies apart.
	GetP50ms float64 `json:"get_p50_ms,omitempty"`
	GetP99ms float64 `json:"get_p99_ms,omitempty"`
	PutP50ms float64 `json:"put_p50_ms,omitempty"`
	PutP99ms float64 `json:"put_p99_ms,omitempty"`
	// On PostgreSQL, during the run: WAL fsyncs per PUT sent (pg_stat_wal.wal_sync; below
	// 1 where PUTs share a commit), transactions per request (pg_stat_database's
	// xact_commit: each call's read, a batch in one implicit transaction, the writes and
	// the audit batches) and round trips per request (the replicas' qrserver_store_round_trips_total: each
	// call's read, the writes' two, the audit batches').
	FsyncsPerPUT    float64 `json:"fsyncs_per_put,omitempty"`
	TxPerRequest    float64 `json:"db_transactions_per_request,omitempty"`
	TripsPerRequest float64 `json:"db_round_trips_per_request,omitempty"`
	// The busy CPU time of the whole machine per request (servers, database, load generator
	// and whatever else runs), and on PostgreSQL that of the PostgreSQL processes, from
	// /proc: where the two cores went, for a run that is bound by them.
	MachineCPUusPerReq float64 `json:"machine_cpu_us_per_request"`
	DBCPUusPerReq      float64 `json:"db_cpu_us_per_request,omitempty"`
	// Round numbers the PostgreSQL runs, which alternate one replica and two.
	Round int `json:"round,omitempty"`
}

// Report is bench/results.json.
type Report struct {
	When       string             `json:"when"`
	Machine    string             `json:"machine"`
	GoVersion  string             `json:"go_version"`
	StartupMs  map[string]float64 `json:"startup_ms"`
	Results    []Result           `json:"results"`
	Ratios     map[string]float64 `json:"ratios"`
	TargetsMet map[string]bool    `json:"targets_met"`
}

func main() {
	var o options
	var conns string
	flag.StringVar(&o.qrserver, "qrserver", "bin/qrserver", "qrserver binary")
	flag.StringVar(&o.baseline, "baseline", "bin/baseline", "baseline binary")
	flag.StringVar(&o.prism, "prism", "node_modules/.bin/prism", "Prism CLI")
	flag.StringVar(&o.seed, "seed", "seed/demo.yaml", "demo seed")
	flag.StringVar(&o.out, "out", "bench/results.json", "results file")
	flag.IntVar(&o.requests, "requests", 50000, "requests per run")
	flag.IntVar(&o.warmup, "warmup", 2000, "requests sent before each run, not counted (connections opened, caches filled)")
	flag.StringVar(&conns, "conns", "32,128", "concurrency levels")
	flag.DurationVar(&o.maxRun, "max-run", 60*time.Second, "time bound of one run")
	flag.StringVar(&o.profile, "cpuprofile", "", "have qrserver write a CPU profile of the whole run here")
	flag.StringVar(&o.postgres, "postgres", "", "a postgres:// URL of a server where loadgen may create a database: adds the PostgreSQL scenarios (one replica, two replicas)")
	flag.BoolVar(&o.onlyQR, "only-qrserver", false, "load qrserver alone (for profiling); with --postgres, on PostgreSQL")
	flag.Float64Var(&o.mix, "mix", 0, "with --only-qrserver: the share of PUTs")
	flag.BoolVar(&o.onlyPG, "only-postgres", false, "with --postgres: run the PostgreSQL scenarios alone")
	flag.StringVar(&o.pgScenario, "pg-scenario", "", "with --postgres: \"get\" or \"mix\" to run only that PostgreSQL scenario (for profiling)")
	flag.BoolVar(&putsThroughFirst, "puts-through-first", false, "in a mix over replicas, send every PUT through the first one (GETs still spread)")
	flag.StringVar(&o.replicaEnv, "replica-env", "", "KEY=VALUE,… added to the environment of the PostgreSQL replicas")
	flag.IntVar(&o.gomaxprocs, "replica-gomaxprocs", 0, "with --postgres: GOMAXPROCS of the PostgreSQL replicas, which share the machine's cores with each other, PostgreSQL and loadgen; 0: Go's default, the number of cores")
	flag.IntVar(&o.pgRounds, "pg-rounds", 3, "with --postgres: rounds of one replica then two, the PostgreSQL targets judged on the median round")
	flag.Parse()
	for _, c := range strings.Split(conns, ",") {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			fatal(fmt.Errorf("bad --conns %q", conns))
		}
		o.conns = append(o.conns, n)
	}
	warmup = o.warmup
	rep, err := runAll(o)
	if errors.Is(err, errOnlyQR) {
		return
	}
	if err != nil {
		fatal(err)
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
		fatal(err)
	}
	printTable(os.Stdout, rep)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a started server.
type proc struct {
	name    string
	cmd     *exec.Cmd
	base    string // URL prefix of the API's paths (…/api, or / for Prism)
	startup time.Duration
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// cpu is the CPU time the process has used so far.
func (p *proc) cpu() time.Duration { return pidCPU(strconv.Itoa(p.cmd.Process.Pid)) }

// pidCPU is the CPU time process pid has used so far (utime + stime of /proc/PID/stat).
func pidCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may hold spaces:
	// state is the first, utime and stime the 12th and 13th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// postgresCPU is the CPU time the PostgreSQL processes on this machine have used so far.
func postgresCPU() time.Duration {
	var t time.Duration
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if comm, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			t += pidCPU(e.Name())
		}
	}
	return t
}

// machineCPU is the busy CPU time of the whole machine so far (the first line of
// /proc/stat: every column but idle and iowait).
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var busy int64
	for i, f := range strings.Fields(line)[1:] {
		if n, err := strconv.ParseInt(f, 10, 64); err == nil && i != 3 && i != 4 && i < 8 {
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTicks = 100

// cpuOf sums the CPU time of the replicas.
func cpuOf(ps []*proc) time.Duration {
	var t time.Duration
	for _, p := range ps {
		t += p.cpu()
	}
	return t
}

// cpuMeter holds the CPU counters from before a run: the servers' (ps), PostgreSQL's when
// it is their database (db), and the whole machine's.
type cpuMeter struct {
	ps                      []*proc
	db                      bool
	servers, dbCPU, machine time.Duration
}

func startCPU(ps []*proc, db bool) cpuMeter {
	m := cpuMeter{ps: ps, db: db, servers: cpuOf(ps), machine: machineCPU()}
	if db {
		m.dbCPU = postgresCPU()
	}
	return m
}

// fill sets the run's CPU per request since the meter started.
func (m cpuMeter) fill(r *Result) {
	r.CPUusPerReq, r.MachineCPUusPerReq = perRequest(cpuOf(m.ps)-m.servers, *r), perRequest(machineCPU()-m.machine, *r)
	if m.db {
		r.DBCPUusPerReq = perRequest(postgresCPU()-m.dbCPU, *r)
	}
}

// printCPU says on stderr where a PostgreSQL run's CPU went.
func printCPU(server, scenario string, c int, r Result) {
	fmt.Fprintf(os.Stderr, "%-13s %-26s c=%-4d CPU µs per request: servers %.1f, database %.1f, machine %.1f\n", server, scenario, c, r.CPUusPerReq, r.DBCPUusPerReq, r.MachineCPUusPerReq)
}

// perRequest is a CPU time spread over a run's requests and its warm-up, in µs.
func perRequest(d time.Duration, r Result) float64 {
	return round(float64(d.Microseconds()) / float64(r.Requests+warmup))
}

// peakRSS reads the process's high-water resident set (VmHWM) in MiB.
func (p *proc) peakRSS() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// start starts a server and waits for the first 200 on ready (bounded: 60 s).
func start(name string, argv []string, base, ready string, hdr http.Header) (*proc, error) {
	return startEnv(name, argv, base, ready, hdr, nil)
}

// replicaEnv is the environment added for the PostgreSQL replicas: their GOMAXPROCS, if
// set, and --replica-env.
func replicaEnv(o options) []string {
	var env []string
	if o.gomaxprocs > 0 {
		env = append(env, fmt.Sprintf("GOMAXPROCS=%d", o.gomaxprocs))
	}
	if o.replicaEnv != "" {
		env = append(env, strings.Split(o.replicaEnv, ",")...)
	}
	return env
}

// startEnv starts a server with env added to loadgen's environment.
func startEnv(name string, argv []string, base, ready string, hdr http.Header, env []string) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, base: base}
	hc := &http.Client{Timeout: time.Second}
	for time.Since(t0) < 60*time.Second {
		req, _ := http.NewRequest("GET", ready, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		if resp, err := hc.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				p.startup = time.Since(t0)
				return p, nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("%s did not answer 200 on %s within 60s", name, ready)
}

func token(base string) (string, error) {
	resp, err := http.PostForm(base+"/identity/token", url.Values{"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}, "apikey": {apiKey}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("token: %d %v", resp.StatusCode, err)
	}
	return tr.AccessToken, nil
}

// load sends n requests over conns connections; mix > 0 makes that share of them PUTs.
// It stops after maxRun whatever is left.
func load(base, path string, hdr http.Header, n, conns int, maxRun time.Duration, mix float64) (Result, map[int64]bool, error) {
	return loadSpread([]string{base}, path, hdr, n, conns, maxRun, mix)
}

// loadSpread is load with the connections spread evenly over several servers (replicas).
func loadSpread(bases []string, path string, hdr http.Header, n, conns int, maxRun time.Duration, mix float64) (Result, map[int64]bool, error) {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	if warmup > 0 {
		run(hc, bases, path, hdr, warmup, conns, maxRun, 0, nil, nil, nil)
	}
	lat := make([]time.Duration, n)
	isPut := make([]bool, n)
	var mu sync.Mutex
	accepted := map[int64]bool{}
	start := time.Now()
	done, errs := run(hc, bases, path, hdr, n, conns, maxRun, mix, lat, isPut, func(limit int64) {
		mu.Lock()
		accepted[limit] = true
		mu.Unlock()
	})
	elapsed := time.Since(start)
	var all, gets, puts []time.Duration
	for i := range done {
		all = append(all, lat[i])
		if isPut[i] {
			puts = append(puts, lat[i])
		} else {
			gets = append(gets, lat[i])
		}
	}
	r := Result{Connections: conns, Requests: done, Errors: errs + (n - done), Seconds: elapsed.Seconds(),
		Throughput: float64(done-errs) / elapsed.Seconds(), P50ms: percentile(all, 0.50), P99ms: percentile(all, 0.99)}
	if mix > 0 {
		r.GetP50ms, r.GetP99ms = percentile(gets, 0.50), percentile(gets, 0.99)
		r.PutP50ms, r.PutP99ms = percentile(puts, 0.50), percentile(puts, 0.99)
	}
	return r, accepted, nil
}

// percentile is the q-quantile of the latencies in milliseconds (it sorts them).
func percentile(lat []time.Duration, q float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return float64(lat[min(int(q*float64(len(lat))), len(lat)-1)].Microseconds()) / 1000
}

// warmup is the number of uncounted requests before each run (set from --warmup).
var warmup int

// putsThroughFirst sends every PUT of a mix through the first server, the GETs still
// spread (set from --puts-through-first): with two replicas, what one row's writes shared
// between replicas cost, against one replica writing them all.
var putsThroughFirst bool

// run sends n requests over conns workers, stopping after maxRun; lat (if not nil) gets
// each latency, accepted each PUT limit that answered 204. It returns how many were sent
// and how many failed.
func run(hc *http.Client, bases []string, path string, hdr http.Header, n, conns int, maxRun time.Duration, mix float64, lat []time.Duration, isPut []bool, accepted func(int64)) (int, int) {
	var next, errs atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), maxRun)
	defer cancel()
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			base := bases[w%len(bases)]
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				method, body, want := "GET", io.Reader(nil), 200
				var limit int64
				if mix > 0 && rng.Float64() < mix {
					limit = 1000 + i
					method, body, want = "PUT", strings.NewReader(fmt.Sprintf(`{"instance_limit": %d}`, limit)), 204
				}
				p := path
				b := base
				if method == "PUT" {
					p = "/v1/instances/configuration"
					if putsThroughFirst {
						b = bases[0]
					}
				}
				req, _ := http.NewRequestWithContext(ctx, method, b+p, body)
				for k, v := range hdr {
					req.Header[k] = v
				}
				if method == "PUT" {
					req.Header.Set("Content-Type", "application/json")
				}
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if lat != nil {
					lat[i] = time.Since(t0)
					isPut[i] = method == "PUT"
				}
				if err != nil || resp.StatusCode != want {
					errs.Add(1)
					continue
				}
				if method == "PUT" && accepted != nil {
					accepted(limit)
				}
			}
		}()
	}
	wg.Wait()
	return min(int(next.Load()), n), int(errs.Load())
}

func fetch(url string, hdr http.Header) ([]byte, error) {
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}

func runAll(o options) (*Report, error) {
	rep := &Report{When: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), StartupMs: map[string]float64{}, Ratios: map[string]float64{}, TargetsMet: map[string]bool{}}
	rep.Machine = machine()
	tmp, err := os.MkdirTemp("", "bench-load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	// qrserver: the full stack, response validation off, on a fresh file database (with
	// --only-qrserver and --postgres, on a fresh PostgreSQL database).
	qaddr := freePort()
	db := filepath.Join(tmp, "qr.db")
	if o.onlyQR && o.postgres != "" {
		dsn, drop, err := pgtest.CreateDatabase(o.postgres, "qrapi_bench_")
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		defer drop()
		db = dsn
	}
	qargs := []string{o.qrserver, "--addr", qaddr, "--db", db, "--seed", o.seed, "--log-level", "error"}
	if o.profile != "" {
		qargs = append(qargs, "--cpuprofile", o.profile)
	}
	qr, err := start("qrserver", qargs,
		"http://"+qaddr+"/api", "http://"+qaddr+"/healthz", nil)
	if err != nil {
		return nil, err
	}
	defer qr.stop()
	rep.StartupMs["qrserver"] = float64(qr.startup.Microseconds()) / 1000
	tok, err := token("http://" + qaddr)
	if err != nil {
		return nil, err
	}
	hdr := http.Header{"Authorization": {"Bearer " + tok}, "Service-Crn": {crn}, "Ibm-Api-Version": {"2025-05-01"}}
	instBody, err := fetch(qr.base+"/v1/instance", hdr)
	if err != nil {
		return nil, err
	}
	usageBody, err := fetch(qr.base+"/v1/instances/usage", hdr)
	if err != nil {
		return nil, err
	}
	os.WriteFile(filepath.Join(tmp, "instance.json"), instBody, 0o644)
	os.WriteFile(filepath.Join(tmp, "usage.json"), usageBody, 0o644)

	if o.onlyPG {
		if err := runPostgres(o, rep, hdr); err != nil {
			return nil, err
		}
		for _, c := range o.conns {
			replicaRatios(rep, c)
		}
		printTable(os.Stdout, rep)
		return nil, errOnlyQR
	}
	if o.onlyQR {
		for _, c := range o.conns {
			r, _, err := load(qr.base, "/v1/instance", hdr, o.requests, c, o.maxRun, o.mix)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(os.Stderr, "qrserver GET /v1/instance c=%d: %.0f req/s p50 %.2f ms p99 %.2f ms errors %d, peak RSS %.1f MiB\n", c, r.Throughput, r.P50ms, r.P99ms, r.Errors, qr.peakRSS())
		}
		return nil, errOnlyQR
	}
	baddr := freePort()
	bl, err := start("baseline", []string{o.baseline, "--addr", baddr, "--instance-body", filepath.Join(tmp, "instance.json"), "--usage-body", filepath.Join(tmp, "usage.json")},
		"http://"+baddr+"/api", "http://"+baddr+"/healthz", nil)
	if err != nil {
		return nil, err
	}
	defer bl.stop()

	paddr := freePort()
	_, pport, _ := net.SplitHostPort(paddr)
	pr, err := start("prism", []string{o.prism, "mock", "-h", "127.0.0.1", "-p", pport, "-v", "error", "openapi.yaml"},
		"http://"+paddr, "http://"+paddr+"/v1/instance", hdr)
	if err != nil {
		return nil, err
	}
	defer pr.stop()
	rep.StartupMs["prism"] = float64(pr.startup.Microseconds()) / 1000

	for _, scenario := range []struct{ name, path string }{{"GET /v1/instance", "/v1/instance"}, {"GET /v1/instances/usage", "/v1/instances/usage"}} {
		for _, c := range o.conns {
			for _, p := range []*proc{qr, bl, pr} {
				meter := startCPU([]*proc{p}, false)
				r, _, err := load(p.base, scenario.path, hdr, o.requests, c, o.maxRun, 0)
				if err != nil {
					return nil, err
				}
				meter.fill(&r)
				r.Server, r.Scenario, r.PeakRSSMiB = p.name, scenario.name, p.peakRSS()
				rep.Results = append(rep.Results, r)
				fmt.Fprintf(os.Stderr, "%-9s %-26s c=%-4d %8.0f req/s p50 %6.2f ms p99 %6.2f ms errors %d\n", r.Server, r.Scenario, c, r.Throughput, r.P50ms, r.P99ms, r.Errors)
			}
		}
	}
	for _, c := range o.conns {
		r, err := mixRun(o, "qrserver", []*proc{qr}, hdr, c)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, r)
	}
	if o.postgres != "" {
		if err := runPostgres(o, rep, hdr); err != nil {
			return nil, err
		}
	}
	judge(rep, o.conns)
	return rep, nil
}

// mixRun is the 90/10 GET/PUT mix spread over replicas, with the lost-update check: the
// limit read at the end must be one that a PUT was answered 204 for.
func mixRun(o options, name string, ps []*proc, hdr http.Header, c int) (Result, error) {
	var bases []string
	for _, p := range ps {
		bases = append(bases, p.base)
	}
	meter := startCPU(ps, o.postgres != "" && name != "qrserver")
	r, accepted, err := loadSpread(bases, "/v1/instance", hdr, o.requests, c, o.maxRun, 0.10)
	if err != nil {
		return r, err
	}
	meter.fill(&r)
	lost := false
	for _, p := range ps { // every replica must read a limit that was accepted
		body, err := fetch(p.base+"/v1/instances/configuration", hdr)
		if err != nil {
			return r, err
		}
		var cfg struct {
			InstanceLimit *float64 `json:"instance_limit"`
		}
		json.Unmarshal(body, &cfg)
		lost = lost || cfg.InstanceLimit == nil || !accepted[int64(*cfg.InstanceLimit)]
	}
	r.Server, r.Scenario, r.PeakRSSMiB, r.LostUpdates = name, "90/10 GET/PUT", peakOf(ps), &lost
	fmt.Fprintf(os.Stderr, "%-13s %-26s c=%-4d %8.0f req/s p50 %6.2f ms p99 %6.2f ms errors %d lost %v; GET p50 %.2f p99 %.2f ms, PUT p50 %.2f p99 %.2f ms\n",
		r.Server, r.Scenario, c, r.Throughput, r.P50ms, r.P99ms, r.Errors, lost, r.GetP50ms, r.GetP99ms, r.PutP50ms, r.PutP99ms)
	return r, nil
}

// peakOf is the highest peak RSS of one of the replicas.
func peakOf(ps []*proc) float64 {
	var peak float64
	for _, p := range ps {
		peak = max(peak, p.peakRSS())
	}
	return peak
}

// roundTrips is the sum of the replicas' qrserver_store_round_trips_total (0 where a
// replica's metrics cannot be read).
func roundTrips(ps []*proc) int64 {
	var n int64
	for _, p := range ps {
		body, err := fetch(strings.TrimSuffix(p.base, "/api")+"/metrics", nil)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "qrserver_store_round_trips_total "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				n += int64(f)
			}
		}
	}
	return n
}

// runPostgres adds the PostgreSQL scenarios: qrserver on a fresh database of the server
// o.postgres names, as one replica and then as two with the connections spread over both.
func runPostgres(o options, rep *Report, hdr http.Header) error {
	dsn, drop, err := pgtest.CreateDatabase(o.postgres, "qrapi_bench_")
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer drop()
	// dbStats reads the cluster's WAL fsyncs and the database's commits.
	dbStats := func() (fsyncs, commits int64) {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, o.postgres)
		if err != nil {
			return 0, 0
		}
		defer conn.Close(ctx)
		u, _ := url.Parse(dsn)
		conn.QueryRow(ctx, `SELECT (SELECT wal_sync FROM pg_stat_wal), (SELECT xact_commit FROM pg_stat_database WHERE datname = $1)`,
			strings.TrimPrefix(u.Path, "/")).Scan(&fsyncs, &commits)
		return fsyncs, commits
	}
	env := replicaEnv(o)
	replicas := 0
	startReplica := func() (*proc, error) {
		addr := freePort()
		argv := []string{o.qrserver, "--addr", addr, "--db", dsn, "--seed", o.seed, "--log-level", "error"}
		if replicas++; o.profile != "" {
			argv = append(argv, "--cpuprofile", fmt.Sprintf("%s.pg%d", o.profile, replicas))
		}
		return startEnv("qrserver-pg", argv, "http://"+addr+"/api", "http://"+addr+"/healthz", nil, env)
	}
	a, err := startReplica()
	if err != nil {
		return err
	}
	defer a.stop()
	rep.StartupMs["qrserver-pg"] = float64(a.startup.Microseconds()) / 1000
	tok, err := token(strings.TrimSuffix(a.base, "/api"))
	if err != nil {
		return err
	}
	hdr = hdr.Clone()
	hdr.Set("Authorization", "Bearer "+tok)
	scenarios := func(name string, ps []*proc, rnd int) error {
		var bases []string
		for _, p := range ps {
			bases = append(bases, p.base)
		}
		for _, c := range o.conns {
			if o.pgScenario == "mix" {
				break
			}
			_, c0 := dbStats()
			t0 := roundTrips(ps)
			meter := startCPU(ps, true)
			r, _, err := loadSpread(bases, "/v1/instance", hdr, o.requests, c, o.maxRun, 0)
			if err != nil {
				return err
			}
			meter.fill(&r)
			printCPU(name, "GET /v1/instance", c, r)
			time.Sleep(1500 * time.Millisecond)
			_, c1 := dbStats()
			r.TxPerRequest = round(float64(c1-c0) / float64(r.Requests))
			r.TripsPerRequest = round(float64(roundTrips(ps)-t0) / float64(r.Requests))
			fmt.Fprintf(os.Stderr, "%-13s %-26s c=%-4d database transactions per request %.2f, round trips per request %.2f\n", name, "GET /v1/instance", c, r.TxPerRequest, r.TripsPerRequest)
			r.Server, r.Scenario, r.PeakRSSMiB, r.Round = name, "GET /v1/instance", peakOf(ps), rnd
			rep.Results = append(rep.Results, r)
			fmt.Fprintf(os.Stderr, "%-13s %-26s c=%-4d %8.0f req/s p50 %6.2f ms p99 %6.2f ms errors %d\n", r.Server, r.Scenario, c, r.Throughput, r.P50ms, r.P99ms, r.Errors)
		}
		for _, c := range o.conns {
			if o.pgScenario == "get" {
				break
			}
			f0, c0 := dbStats()
			t0 := roundTrips(ps)
			r, err := mixRun(o, name, ps, hdr, c)
			if err != nil {
				return err
			}
			printCPU(name, "90/10 GET/PUT", c, r)
			// Statistics reach the views within PostgreSQL's stats interval (1 s at most).
			time.Sleep(1500 * time.Millisecond)
			f1, c1 := dbStats()
			if puts := float64(r.Requests) * 0.10; puts > 0 {
				r.FsyncsPerPUT = round(float64(f1-f0) / puts)
				r.TxPerRequest = round(float64(c1-c0) / float64(r.Requests))
				r.TripsPerRequest = round(float64(roundTrips(ps)-t0) / float64(r.Requests))
			}
			fmt.Fprintf(os.Stderr, "%-13s %-26s c=%-4d WAL fsyncs per PUT %.2f, database transactions per request %.2f, round trips per request %.2f\n",
				r.Server, r.Scenario, c, r.FsyncsPerPUT, r.TxPerRequest, r.TripsPerRequest)
			r.Round = rnd
			rep.Results = append(rep.Results, r)
		}
		return nil
	}
	// Rounds of one replica, then two: the second replica is started for each round's
	// two-replica runs and stopped after them. Alternating puts both through the same
	// swings of a shared machine.
	for rnd := 1; rnd <= max(o.pgRounds, 1); rnd++ {
		fmt.Fprintf(os.Stderr, "PostgreSQL round %d of %d\n", rnd, max(o.pgRounds, 1))
		if err := scenarios("qrserver-pg", []*proc{a}, rnd); err != nil {
			return err
		}
		b, err := startReplica()
		if err != nil {
			return err
		}
		err = scenarios("qrserver-pg x2", []*proc{a, b}, rnd)
		b.stop()
		if err != nil {
			return err
		}
	}
	return nil
}

// rounds returns the runs of server and scenario at conns, one a round, in order.
func rounds(rep *Report, server, scenario string, conns int) []*Result {
	var rs []*Result
	for i := range rep.Results {
		if r := &rep.Results[i]; r.Server == server && r.Scenario == scenario && r.Connections == conns {
			rs = append(rs, r)
		}
	}
	return rs
}

// medianRatio is the median over the rounds of f(one replica's run, two replicas' run of
// the same round), with each round's ratio.
func medianRatio(one, two []*Result, f func(one, two *Result) float64) (float64, []float64) {
	var rs []float64
	for i := range min(len(one), len(two)) {
		rs = append(rs, f(one[i], two[i]))
	}
	if len(rs) == 0 {
		return 0, nil
	}
	sorted := slices.Clone(rs)
	slices.Sort(sorted)
	if len(sorted)%2 == 1 {
		return sorted[len(sorted)/2], rs
	}
	return (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2, rs
}

func find(rep *Report, server, scenario string, conns int) *Result {
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Server == server && r.Scenario == scenario && r.Connections == conns {
			return r
		}
	}
	return nil
}

// judge computes the ratios and checks the targets, each a ratio within this run (a shared
// machine cannot hold an absolute figure steady).
func judge(rep *Report, conns []int) {
	for _, c := range conns {
		q, b, p := find(rep, "qrserver", "GET /v1/instance", c), find(rep, "baseline", "GET /v1/instance", c), find(rep, "prism", "GET /v1/instance", c)
		rep.Ratios[fmt.Sprintf("qrserver/baseline c=%d", c)] = round(q.Throughput / b.Throughput)
		rep.Ratios[fmt.Sprintf("qrserver/prism c=%d", c)] = round(q.Throughput / p.Throughput)
		if q.CPUusPerReq > 0 {
			rep.Ratios[fmt.Sprintf("baseline/qrserver CPU per request, GET c=%d", c)] = round(b.CPUusPerReq / q.CPUusPerReq)
		}
		rep.TargetsMet[fmt.Sprintf("GET /v1/instance >= 0.8 of baseline, c=%d", c)] = q.Throughput >= 0.8*b.Throughput
		rep.TargetsMet[fmt.Sprintf("GET /v1/instance >= 6x Prism, c=%d", c)] = q.Throughput >= 6*p.Throughput
		rep.TargetsMet[fmt.Sprintf("GET /v1/instance zero errors, c=%d", c)] = q.Errors == 0
		m := find(rep, "qrserver", "90/10 GET/PUT", c)
		rep.Ratios[fmt.Sprintf("mix/baseline GET c=%d", c)] = round(m.Throughput / b.Throughput)
		rep.TargetsMet[fmt.Sprintf("90/10 mix >= 0.6 of baseline GET, no lost update, c=%d", c)] = m.Throughput >= 0.6*b.Throughput && !*m.LostUpdates && m.Errors == 0
	}
	if q, b := find(rep, "qrserver", "GET /v1/instance", 32), find(rep, "baseline", "GET /v1/instance", 32); q != nil && b != nil {
		rep.Ratios["GET p99/baseline p99 c=32"] = round(q.P99ms / b.P99ms)
		rep.TargetsMet["GET /v1/instance p99 <= 1.25x the baseline's p99, c=32"] = q.P99ms <= 1.25*b.P99ms
	}
	if m := find(rep, "qrserver", "90/10 GET/PUT", 32); m != nil && m.GetP99ms > 0 {
		rep.Ratios["mix PUT p99/GET p99 c=32"] = round(m.PutP99ms / m.GetP99ms)
		rep.TargetsMet["90/10 mix PUT p99 <= 3x its GET p99, c=32"] = m.PutP99ms <= 3*m.GetP99ms
	}
	var peak float64
	for _, r := range rep.Results {
		if r.Server == "qrserver" {
			peak = max(peak, r.PeakRSSMiB)
		}
	}
	rep.TargetsMet["qrserver peak RSS <= 64 MiB"] = peak <= 64
	rep.TargetsMet["qrserver start-up <= 200 ms"] = rep.StartupMs["qrserver"] <= 200
	judgePostgres(rep, conns)
}

// judgePostgres checks the PostgreSQL targets, each a ratio within this run. Two replicas
// are reported against one with no target: on two cores shared with PostgreSQL and the
// load generator, a second replica adds no core to serve with.
func judgePostgres(rep *Report, conns []int) {
	if find(rep, "qrserver-pg", "GET /v1/instance", conns[0]) == nil {
		return
	}
	// The baseline, Prism and SQLite ran once, before the rounds: each round against them.
	repeat := func(r *Result, n int) []*Result {
		rs := make([]*Result, n)
		for i := range rs {
			rs[i] = r
		}
		return rs
	}
	if b, pg := find(rep, "baseline", "GET /v1/instance", 32), rounds(rep, "qrserver-pg", "GET /v1/instance", 32); b != nil && len(pg) > 0 {
		recordRatio(rep, "qrserver-pg/baseline c=32", repeat(b, len(pg)), pg, throughput)
	}
	for _, c := range conns {
		one, two := rounds(rep, "qrserver-pg", "GET /v1/instance", c), rounds(rep, "qrserver-pg x2", "GET /v1/instance", c)
		if p := find(rep, "prism", "GET /v1/instance", c); p != nil && len(one) > 0 {
			vsPrism := recordRatio(rep, fmt.Sprintf("qrserver-pg/prism c=%d", c), repeat(p, len(one)), one, throughput)
			rep.TargetsMet[fmt.Sprintf("PostgreSQL, one replica: GET /v1/instance >= 2x Prism, c=%d (median round)", c)] = vsPrism >= 2
		}
		replicaRatios(rep, c)
		pg, pg2 := rounds(rep, "qrserver-pg", "90/10 GET/PUT", c), rounds(rep, "qrserver-pg x2", "90/10 GET/PUT", c)
		if m := find(rep, "qrserver", "90/10 GET/PUT", c); m != nil && len(pg) > 0 {
			recordRatio(rep, fmt.Sprintf("pg mix/sqlite mix c=%d", c), repeat(m, len(pg)), pg, throughput)
		}
		sound := true
		for _, r := range append(append(slices.Clone(pg), pg2...), append(one, two...)...) {
			sound = sound && r.Errors == 0 && (r.LostUpdates == nil || !*r.LostUpdates)
		}
		rep.TargetsMet[fmt.Sprintf("PostgreSQL: zero errors, no lost update, every round, c=%d", c)] = sound
	}
	var peak float64
	for _, r := range rep.Results {
		if strings.HasPrefix(r.Server, "qrserver-pg") {
			peak = max(peak, r.PeakRSSMiB)
		}
	}
	rep.TargetsMet["PostgreSQL: peak RSS per replica <= 64 MiB"] = peak <= 64
}

// replicaRatios records, at conns, the median ratios of two replicas to one over the
// rounds, GET and mix, in throughput and in the machine's CPU per request.
func replicaRatios(rep *Report, conns int) {
	for _, sc := range []struct{ scenario, key string }{{"GET /v1/instance", "GET"}, {"90/10 GET/PUT", "mix"}} {
		one, two := rounds(rep, "qrserver-pg", sc.scenario, conns), rounds(rep, "qrserver-pg x2", sc.scenario, conns)
		if len(one) == 0 || len(two) == 0 {
			continue
		}
		recordRatio(rep, fmt.Sprintf("pg x2/pg %s c=%d", sc.key, conns), one, two, throughput)
		recordRatio(rep, fmt.Sprintf("machine CPU per request, pg/pg x2 %s c=%d", sc.key, conns), one, two, cpuRatio)
	}
}

func throughput(one, two *Result) float64 { return two.Throughput / one.Throughput }

// cpuRatio is one's machine CPU per request over two's: 1 or more is two's side, what
// throughput follows on a machine the run keeps busy.
func cpuRatio(one, two *Result) float64 {
	if one.MachineCPUusPerReq <= 0 || two.MachineCPUusPerReq <= 0 {
		return 0
	}
	return one.MachineCPUusPerReq / two.MachineCPUusPerReq
}

// recordRatio records the median of f over the rounds under key, each round's beside it.
func recordRatio(rep *Report, key string, one, two []*Result, f func(one, two *Result) float64) float64 {
	med, each := medianRatio(one, two, f)
	rep.Ratios[key] = round(med)
	if len(each) > 1 {
		for i, r := range each {
			rep.Ratios[fmt.Sprintf("%s, round %d", key, i+1)] = round(r)
		}
	}
	return med
}

func round(f float64) float64 { return float64(int(f*100+0.5)) / 100 }

func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%d cores, %s, %s/%s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH)
}

func printTable(w io.Writer, rep *Report) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Machine: %s; %s; %s\n\n", rep.Machine, rep.GoVersion, rep.When)
	fmt.Fprintf(&b, "| server | scenario | conns | requests | req/s | p50 ms | p99 ms | errors | CPU µs/req | machine CPU µs/req (PostgreSQL's) | DB round trips/req | peak RSS MiB |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rep.Results {
		scen := r.Scenario
		if r.LostUpdates != nil {
			scen += fmt.Sprintf(" (lost updates: %v; GET p50/p99 %.2f/%.2f ms, PUT %.2f/%.2f ms)", *r.LostUpdates, r.GetP50ms, r.GetP99ms, r.PutP50ms, r.PutP99ms)
		}
		machine := fmt.Sprintf("%.1f", r.MachineCPUusPerReq)
		if r.DBCPUusPerReq > 0 {
			machine += fmt.Sprintf(" (%.1f)", r.DBCPUusPerReq)
		}
		server := r.Server
		if r.Round > 0 {
			server += fmt.Sprintf(" (round %d)", r.Round)
		}
		trips := "–"
		if r.TripsPerRequest > 0 {
			trips = fmt.Sprintf("%.2f", r.TripsPerRequest)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %.0f | %.2f | %.2f | %d | %.1f | %s | %s | %.1f |\n", server, scen, r.Connections, r.Requests, r.Throughput, r.P50ms, r.P99ms, r.Errors, r.CPUusPerReq, machine, trips, r.PeakRSSMiB)
	}
	fmt.Fprintf(&b, "\nStart-up to the first 200: qrserver %.0f ms (GET /healthz), Prism %.0f ms (GET /v1/instance).\n\n", rep.StartupMs["qrserver"], rep.StartupMs["prism"])
	keys := make([]string, 0, len(rep.Ratios))
	for k := range rep.Ratios {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "- %s: %.2f\n", k, rep.Ratios[k])
	}
	b.WriteString("\nTargets:\n")
	keys = keys[:0]
	for k := range rep.TargetsMet {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		mark := "met"
		if !rep.TargetsMet[k] {
			mark = "MISSED"
		}
		fmt.Fprintf(&b, "- %s: %s\n", k, mark)
	}
	w.Write(b.Bytes())
}

// errOnlyQR ends a qrserver-only run before the report.
var errOnlyQR = errors.New("only qrserver")
