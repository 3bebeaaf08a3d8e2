// The targets: ratios between the runs, each judged met or missed, and the table printed.

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
)

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
