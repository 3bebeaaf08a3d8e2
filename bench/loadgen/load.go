// The load loop: a fixed number of requests at a fixed concurrency, bounded in time,
// with latencies, errors and the PUTs a mix had accepted.

package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

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
