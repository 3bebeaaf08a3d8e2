// The processes loadgen starts and stops: the servers under load, their ports, their
// tokens, and what they report of themselves (peak RSS, store round trips).

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

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
