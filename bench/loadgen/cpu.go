// CPU accounting from /proc: what each process, PostgreSQL and the whole machine spent
// over a run, per request.

package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

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
