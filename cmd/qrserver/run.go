package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/engine"
	"github.com/qrapi/qrapi/seed"
	"github.com/qrapi/qrapi/server"
)

// usageError is a bad command line: exit code 2.
type usageError struct{ error }

// exitCode is the process's exit code for what run returned: 0 for --help (the usage was
// asked for and printed), 2 for a bad command line, 1 for anything else.
func exitCode(err error) int {
	var u usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &u):
		return 2
	}
	return 1
}

// options are the command line, each flag with an environment fallback.
type options struct {
	addr              string
	db                string
	seedFile          string
	auditLog          string
	logFormat         string
	logLevel          string
	validateResponses bool
	console           bool
	adminToken        string
	tokenTTL          time.Duration
	tokenLeeway       time.Duration
	maxTTL            int64
	activeTTL         int64
	interactiveTTL    int64
	shutdownTimeout   time.Duration
	cpuProfile        string
	gcPercent         int
	memoryLimitMiB    int64
	auditKeep         int
	trustedProxies    string
	proxies           []*net.IPNet // trustedProxies, parsed
	publicURL         string
	keyFailures       server.KeyFailureLimit
}

// flagGroups orders --help: the flags most starts need first, tuning last. A test keeps
// every flag in exactly one group.
var flagGroups = []struct {
	title string
	flags []string
}{
	{"Serving", []string{"addr", "admin-token", "console", "validate-responses", "log-level", "log-format", "shutdown-timeout"}},
	{"State", []string{"db", "seed", "audit-log", "audit-keep", "default-max-ttl", "default-active-ttl", "default-interactive-ttl"}},
	{"Access (IAM)", []string{"token-ttl", "token-leeway", "apikey-failure-burst", "apikey-failure-every"}},
	{"Replicas and proxies", []string{"trusted-proxies", "public-url"}},
	{"Tuning", []string{"gc-percent", "memory-limit-mib", "cpuprofile"}},
}

const usageHead = `Usage: qrserver [flags]

The reference server of the Qiskit Runtime Instances and Accounts API: IBM's paths,
headers, status codes, bodies and errors, over state in SQLite or PostgreSQL.

Examples:
  qrserver --seed seed/demo.yaml --admin-token demo-admin-token
      the demo on http://127.0.0.1:8080, kept in ./data/qrserver.db (what make run does)
  qrserver --db :memory: --seed seed/demo.yaml --addr 127.0.0.1:9090
      a throwaway server
  qrserver --db postgres://postgres@127.0.0.1:5432/postgres --seed seed/demo.yaml --addr 127.0.0.1:8081
      one of several replicas sharing one PostgreSQL database

Every flag may also be set by the environment variable it names.
`

// printUsage writes --help: the flags by group, as --name.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, usageHead)
	groups, listed := flagGroups, map[string]bool{}
	for _, g := range groups {
		for _, name := range g.flags {
			listed[name] = true
		}
	}
	var other []string
	fs.VisitAll(func(f *flag.Flag) {
		if !listed[f.Name] {
			other = append(other, f.Name)
		}
	})
	if len(other) > 0 {
		groups = append(groups[:len(groups):len(groups)], struct {
			title string
			flags []string
		}{"Other", other})
	}
	for _, g := range groups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, name := range g.flags {
			f := fs.Lookup(name)
			arg, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  %s\n      %s", strings.TrimSpace("--"+f.Name+" "+arg), usage)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		}
	}
}

func parseFlags(args []string, getenv func(string) string, stdout io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("qrserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // --help goes to stdout, an error to stderr through run's caller
	env := map[string]string{}
	str := func(p *string, name, envName, def, usage string) {
		fs.StringVar(p, name, def, usage+" (env "+envName+")")
		env[name] = envName
	}
	str(&o.addr, "addr", "QRSERVER_ADDR", "127.0.0.1:8080", "listen address")
	str(&o.db, "db", "QRSERVER_DB", "./data/qrserver.db", "database: a SQLite file, :memory: for a throwaway one, or a postgres:// URL, which several replicas may share")
	str(&o.seedFile, "seed", "QRSERVER_SEED", "", "YAML seed loaded into an empty database (and by the control API's reset)")
	str(&o.auditLog, "audit-log", "QRSERVER_AUDIT_LOG", "", "file that audit events are appended to as JSON lines; - for stdout")
	str(&o.logFormat, "log-format", "QRSERVER_LOG_FORMAT", "text", "log format: text or json")
	str(&o.logLevel, "log-level", "QRSERVER_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	str(&o.adminToken, "admin-token", "QRSERVER_ADMIN_TOKEN", "", "bearer token of the control API under /control/v1; the control API is off without one")
	fs.BoolVar(&o.console, "console", true, "serve the web console at /console/; --console=false turns it off (env QRSERVER_CONSOLE)")
	env["console"] = "QRSERVER_CONSOLE"
	fs.BoolVar(&o.validateResponses, "validate-responses", false, "validate every answer against openapi.yaml; a violation becomes a 500 (env QRSERVER_VALIDATE_RESPONSES)")
	env["validate-responses"] = "QRSERVER_VALIDATE_RESPONSES"
	fs.DurationVar(&o.tokenTTL, "token-ttl", time.Hour, "lifetime of the access tokens issued at /identity/token (env QRSERVER_TOKEN_TTL)")
	env["token-ttl"] = "QRSERVER_TOKEN_TTL"
	fs.DurationVar(&o.tokenLeeway, "token-leeway", server.DefaultTokenLeeway, "how long past its expiry an access token is still accepted, for clock skew between issuer and server (env QRSERVER_TOKEN_LEEWAY)")
	env["token-leeway"] = "QRSERVER_TOKEN_LEEWAY"
	fs.Int64Var(&o.maxTTL, "default-max-ttl", domain.DefaultTTLs.MaxTTL, "max_ttl of an unconfigured account's default plans (env QRSERVER_DEFAULT_MAX_TTL)")
	env["default-max-ttl"] = "QRSERVER_DEFAULT_MAX_TTL"
	fs.Int64Var(&o.activeTTL, "default-active-ttl", domain.DefaultTTLs.ActiveTTL, "active_ttl of default plans (env QRSERVER_DEFAULT_ACTIVE_TTL)")
	env["default-active-ttl"] = "QRSERVER_DEFAULT_ACTIVE_TTL"
	fs.Int64Var(&o.interactiveTTL, "default-interactive-ttl", domain.DefaultTTLs.InteractiveTTL, "interactive_ttl of default plans (env QRSERVER_DEFAULT_INTERACTIVE_TTL)")
	env["default-interactive-ttl"] = "QRSERVER_DEFAULT_INTERACTIVE_TTL"
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight requests may take to finish on SIGINT/SIGTERM (env QRSERVER_SHUTDOWN_TIMEOUT)")
	env["shutdown-timeout"] = "QRSERVER_SHUTDOWN_TIMEOUT"
	fs.IntVar(&o.gcPercent, "gc-percent", 200, "Go GC target percentage (as GOGC; the live heap is ~10 MiB, so 200 trades a few MiB of RSS for half the GC cycles) (env QRSERVER_GC_PERCENT; GOGC, if set, wins)")
	env["gc-percent"] = "QRSERVER_GC_PERCENT"
	fs.Int64Var(&o.memoryLimitMiB, "memory-limit-mib", 32, "soft limit of the Go heap in MiB, as GOMEMLIMIT: the GC works harder near it, so a burst of slow writes does not swell the RSS; 0 for none (env QRSERVER_MEMORY_LIMIT_MIB; GOMEMLIMIT, if set, wins)")
	env["memory-limit-mib"] = "QRSERVER_MEMORY_LIMIT_MIB"
	fs.IntVar(&o.auditKeep, "audit-keep", 100000, "how many of the newest audit events the database keeps for the control API (the --audit-log file keeps all); -1 keeps all (env QRSERVER_AUDIT_KEEP)")
	env["audit-keep"] = "QRSERVER_AUDIT_KEEP"
	str(&o.publicURL, "public-url", "QRSERVER_PUBLIC_URL", "", "this server's origin as readers reach it (e.g. https://qr.example.com behind a proxy), listed first among the servers of /openapi.json for the docs' Try it out; default: the request's host")
	str(&o.trustedProxies, "trusted-proxies", "QRSERVER_TRUSTED_PROXIES", "", "comma-separated CIDRs of proxies whose X-Forwarded-For gives the caller's address (logs, audit events); none: the socket's address")
	fs.IntVar(&o.keyFailures.Burst, "apikey-failure-burst", server.DefaultKeyFailureLimit.Burst, "failed API-key attempts one caller address may make at once (at /identity/token or in Authorization: apikey) before it is answered 429; 0 for no limit (env QRSERVER_APIKEY_FAILURE_BURST)")
	env["apikey-failure-burst"] = "QRSERVER_APIKEY_FAILURE_BURST"
	fs.DurationVar(&o.keyFailures.Every, "apikey-failure-every", server.DefaultKeyFailureLimit.Every, "after the burst, one more failed API-key attempt is allowed per this interval (env QRSERVER_APIKEY_FAILURE_EVERY)")
	env["apikey-failure-every"] = "QRSERVER_APIKEY_FAILURE_EVERY"
	str(&o.cpuProfile, "cpuprofile", "QRSERVER_CPUPROFILE", "", "write a CPU profile (pprof) to this file until shutdown")
	fs.Usage = func() {} // --help prints to stdout below; a bad flag says so on stderr
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs)
			return nil, err
		}
		return nil, usageError{fmt.Errorf("%w\nRun 'qrserver --help' for usage.", err)}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, envName := range env {
		if v := getenv(envName); v != "" && !set[name] {
			if err := fs.Set(name, v); err != nil {
				return nil, usageError{fmt.Errorf("%s=%q: %v", envName, v, err)}
			}
		}
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return nil, usageError{fmt.Errorf("--log-format must be text or json, not %q", o.logFormat)}
	}
	if o.publicURL != "" {
		if u, err := url.Parse(o.publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, usageError{fmt.Errorf("--public-url %q: want an origin such as https://qr.example.com", o.publicURL)}
		}
	}
	var err error
	if o.proxies, err = parseCIDRs(o.trustedProxies); err != nil {
		return nil, usageError{err}
	}
	if o.keyFailures.Burst < 0 || o.keyFailures.Every <= 0 {
		return nil, usageError{errors.New("--apikey-failure-burst cannot be negative, and --apikey-failure-every must be positive")}
	}
	if o.tokenLeeway < 0 {
		return nil, usageError{errors.New("--token-leeway cannot be negative")}
	}
	if o.maxTTL < 0 || o.activeTTL < 0 || o.interactiveTTL < 0 || o.activeTTL > o.maxTTL || o.interactiveTTL > o.activeTTL {
		return nil, usageError{errors.New("default TTLs must satisfy 0 <= interactive <= active <= max")}
	}
	return o, nil
}

// parseCIDRs reads a comma-separated list of CIDRs (a bare address is one host).
func parseCIDRs(list string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			if ip := net.ParseIP(f); ip != nil && ip.To4() != nil {
				f += "/32"
			} else {
				f += "/128"
			}
		}
		_, n, err := net.ParseCIDR(f)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is not a CIDR", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func newLogger(o *options, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level: %v", err)}
	}
	ho := &slog.HandlerOptions{Level: level}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return slog.New(slog.NewTextHandler(w, ho)), nil
}

// run is the whole program: it serves until ctx is cancelled, then shuts down gracefully.
// ready, if not nil, receives the listening address once the server accepts connections.
// maxLoggedCRNs is how many of the seed's CRNs the start-up log lists.
const maxLoggedCRNs = 10

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready chan<- string) error {
	o, err := parseFlags(args, getenv, stdout)
	if err != nil {
		return err
	}
	log, err := newLogger(o, stderr)
	if err != nil {
		return err
	}
	if getenv("GOGC") == "" && o.gcPercent != 0 {
		debug.SetGCPercent(o.gcPercent)
	}
	if getenv("GOMEMLIMIT") == "" && o.memoryLimitMiB > 0 {
		debug.SetMemoryLimit(o.memoryLimitMiB << 20)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var sd *domain.Seed
	if o.seedFile != "" {
		if sd, err = seed.ReadFile(o.seedFile); err != nil {
			return err
		}
	}
	store, err := engine.Open(ctx, o.db)
	if err != nil {
		return fmt.Errorf("open the %s database: %w", engine.Name(o.db), err)
	}
	defer store.Close()
	if sd != nil {
		// Of several replicas starting at once on an empty database, exactly one loads.
		loaded, err := store.LoadIfEmpty(ctx, sd)
		if err != nil {
			return err
		}
		if loaded {
			log.Info("database seeded", "engine", engine.Name(o.db), "seed", o.seedFile, "accounts", len(sd.Accounts), "instances", len(sd.Instances), "principals", len(sd.Principals))
		} else {
			log.Info("database not empty: seed not loaded", "engine", engine.Name(o.db))
		}
	}
	if has, err := store.HasAPIKeys(ctx); err != nil {
		return err
	} else if !has {
		log.Warn("no API keys: no caller can authenticate; start on an empty database with --seed seed/demo.yaml (or a seed of your own), or add a fixture through the control API (--admin-token, POST /control/v1/fixtures)")
	}
	var audit io.Writer
	switch o.auditLog {
	case "":
	case "-":
		audit = stdout
	default:
		f, err := os.OpenFile(o.auditLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		audit = f
	}
	srv, err := server.New(ctx, server.Config{
		TrustedProxies: o.proxies, PublicURL: o.publicURL, KeyFailures: &o.keyFailures,
		Store: store, Logger: log, AuditSink: audit, AuditKeep: o.auditKeep, ValidateResponses: o.validateResponses,
		TokenTTL: o.tokenTTL, TokenLeeway: &o.tokenLeeway, AdminToken: o.adminToken, NoConsole: !o.console, Seed: sd,
		TTLDefaults: &domain.TTLDefaults{MaxTTL: o.maxTTL, ActiveTTL: o.activeTTL, InteractiveTTL: o.interactiveTTL},
	})
	if err != nil {
		return err
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	base := "http://" + ln.Addr().String()
	consoleURL := "off"
	if o.console {
		consoleURL = base + "/console/"
	}
	log.Info("serving", "api", base+"/api", "token", base+"/identity/token", "docs", base+"/docs/", "console", consoleURL, "control_api", o.adminToken != "")
	if sd != nil {
		// The first few CRNs, to copy from: a seed of thousands would make one huge line.
		var crns []string
		for _, in := range sd.Instances[:min(len(sd.Instances), maxLoggedCRNs)] {
			crns = append(crns, in.CRN)
		}
		log.Info("seeded instances", "count", len(sd.Instances), "crns", strings.Join(crns, " "))
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: letting in-flight requests finish", "timeout", o.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
