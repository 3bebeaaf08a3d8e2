package main

import (
	"fmt"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plotSeries are the servers drawn, in order, with their names in the chart.
var plotSeries = []struct{ server, label string }{
	{"qrserver", "qrserver, SQLite"},
	{"qrserver-pg", "qrserver, PostgreSQL"},
	{"qrserver-pg x2", "qrserver, PostgreSQL, 2 replicas"},
	{"baseline", "bare echo baseline"},
	{"prism", "Prism"},
}

// plotScenarios are the groups of bars: each scenario at each connection count.
var plotScenarios = []struct{ scenario, label string }{
	{"GET /v1/instance", "GET"},
	{"90/10 GET/PUT", "90/10 GET/PUT"},
}

// throughputOf is a server's requests per second in a scenario at conns connections: the
// median of its rounds (the PostgreSQL scenarios run several), 0 when it did not run.
func throughputOf(rep *Report, server, scenario string, conns int) float64 {
	var v []float64
	for _, r := range rep.Results {
		if r.Server == server && r.Scenario == scenario && r.Connections == conns {
			v = append(v, r.Throughput)
		}
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// writeSVG draws the report's throughput, every server side by side in each scenario and
// connection count, as an SVG (gonum's plot).
func writeSVG(rep *Report, file string) error {
	var conns []int
	for _, r := range rep.Results {
		if !slices.Contains(conns, r.Connections) {
			conns = append(conns, r.Connections)
		}
	}
	slices.Sort(conns)
	var groups []string
	for _, s := range plotScenarios {
		for _, c := range conns {
			groups = append(groups, fmt.Sprintf("%s, %d conns", s.label, c))
		}
	}
	p := plot.New()
	p.Title.Text = "Throughput (" + rep.Machine + ", " + rep.When + ")"
	p.Y.Label.Text = "requests per second"
	p.Y.Min = 0
	p.Legend.Top = true // right: the mixes, which have no baseline or Prism, leave it room
	p.NominalX(groups...)
	p.Add(plotter.NewGrid())
	width := vg.Points(14)
	for i, s := range plotSeries {
		var vs plotter.Values
		for _, sc := range plotScenarios {
			for _, c := range conns {
				vs = append(vs, throughputOf(rep, s.server, sc.scenario, c))
			}
		}
		bars, err := plotter.NewBarChart(vs, width)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(i)
		bars.Offset = vg.Length(float64(i)-float64(len(plotSeries)-1)/2) * width
		p.Add(bars)
		p.Legend.Add(s.label, bars)
	}
	p.Y.Max *= 1.3 // room for the legend above the bars
	p.Y.Tick.Marker = plot.TickerFunc(func(min, max float64) []plot.Tick {
		var ticks []plot.Tick
		for v := 0.0; v <= max; v += 5000 {
			ticks = append(ticks, plot.Tick{Value: v, Label: fmt.Sprintf("%.0fk", v/1000)})
		}
		return ticks
	})
	return p.Save(10*vg.Inch, 5*vg.Inch, file)
}
