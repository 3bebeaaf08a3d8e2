// The scenarios: each server on each path at each connection count, on SQLite, and on
// PostgreSQL in rounds of one replica and two.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/postgres/pgtest"
)

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
