// Command loadgen is make bench-load: it starts qrserver, the bare echo baseline and Prism
// on loopback ports, loads each with a fixed number of requests at fixed concurrency
// (bounded in count and time), and reports throughput, latency, errors, peak RSS and
// start-up time as a table, as bench/results.json and as a chart, bench/results.svg.
//
// main.go holds the flags and the report; procs.go starts and stops the servers; cpu.go
// reads the CPU they spent from /proc; load.go is the load loop; scenarios.go runs each
// scenario; targets.go judges the targets and prints the table; plot.go draws the chart.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	apiKey = "qrdemo-admin-key-0123456789abcdefghijklmnop"
	crn    = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::"
)

type options struct {
	qrserver, baseline, prism, seed, out string
	svg, plotFrom                        string
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
	flag.StringVar(&o.svg, "svg", "bench/results.svg", "the throughput chart drawn from the results (gonum's plot)")
	flag.StringVar(&o.plotFrom, "plot-from", "", "draw --svg from this results file and exit, without loading anything")
	flag.Parse()
	if o.plotFrom != "" {
		b, err := os.ReadFile(o.plotFrom)
		if err != nil {
			fatal(err)
		}
		var rep Report
		if err := json.Unmarshal(b, &rep); err != nil {
			fatal(fmt.Errorf("%s: %w", o.plotFrom, err))
		}
		if err := writeSVG(&rep, o.svg); err != nil {
			fatal(err)
		}
		return
	}
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
	if err := writeSVG(rep, o.svg); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTicks = 100

// errOnlyQR ends a qrserver-only run before the report.
var errOnlyQR = errors.New("only qrserver")
