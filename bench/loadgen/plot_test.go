package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The chart is drawn from the report: every server's bar group is in it, named.
func TestWriteSVG(t *testing.T) {
	rep := &Report{When: "now", Machine: "test"}
	for i, s := range plotSeries {
		for _, c := range []int{32, 128} {
			rep.Results = append(rep.Results, Result{Server: s.server, Scenario: "GET /v1/instance", Connections: c, Throughput: float64(1000 * (i + 1))})
		}
	}
	rep.Results = append(rep.Results, Result{Server: "qrserver-pg", Scenario: "GET /v1/instance", Connections: 32, Throughput: 9000}, // a round more
		Result{Server: "qrserver-pg", Scenario: "GET /v1/instance", Connections: 32, Throughput: 100})
	if got := throughputOf(rep, "qrserver-pg", "GET /v1/instance", 32); got != 2000 {
		t.Errorf("the median of the rounds 100, 2000, 9000: %v", got)
	}
	file := filepath.Join(t.TempDir(), "results.svg")
	if err := writeSVG(rep, file); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	svg := string(b)
	for _, want := range append([]string{"<svg", "GET, 32 conns", "requests per second"}, func() (l []string) {
		for _, s := range plotSeries {
			l = append(l, s.label)
		}
		return
	}()...) {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
}
