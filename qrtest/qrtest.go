// Package qrtest starts the reference server of the Qiskit Runtime Instances and Accounts
// API inside a Go test, as net/http/httptest does for a handler: in-process, on a
// loopback port, on an in-memory database with the demo seed (or a seed of the test's
// own), validating every answer against openapi.yaml, and closed when the test ends.
//
//	srv := qrtest.NewServer(t)
//	c := srv.Client(t, client.WithCRN(qrtest.InstanceA))
//	srv.RecordUsage(t, qrtest.InstanceA, 30)
//	srv.AddFault(t, qrtest.Fault{Operation: "get_usage", Status: 503, Count: 1})
//
// Dial gives the same helpers against a server that runs elsewhere, and Fixture gives a
// test state of its own on a server that other tests share.
//
// The control helpers go through the control API's generated client (gen/control), as a
// test on another machine would, not into the server's internals.
package qrtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qrapi/qrapi/client"
	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/gen/control"
	"github.com/qrapi/qrapi/internal/optional"
	"github.com/qrapi/qrapi/seed"
	"github.com/qrapi/qrapi/server"
	"github.com/qrapi/qrapi/sqlite"
)

// The demo seed's API keys, one per role, and its accounts and instances
// (seed/demo.yaml; seed/demo.txt lists them).
const (
	KeyAdmin   = "qrdemo-admin-key-0123456789abcdefghijklmnop" // Administrator on AccountDemo
	KeyManager = "qrdemo-manager-key-0123456789abcdefghijklmn" // Manager on InstanceA
	KeyReader  = "qrdemo-reader-key-0123456789abcdefghijklmno" // Reader on InstanceA
	KeyViewer  = "qrdemo-viewer-key-0123456789abcdefghijklmno" // Viewer on AccountDemo (a service ID)
	KeyOther   = "qrdemo-other-key-0123456789abcdefghijklmnop" // Administrator on AccountOther

	AccountDemo  = "8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b" // the Accounts page's three-plan example
	AccountOther = "5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f" // no stored configuration: the default one

	// InstanceA is AccountDemo's plan-id-2 instance, with a monthly usage period.
	InstanceA = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::"
	// InstanceB is AccountDemo's plan-id-3 instance: the usage page's example (12 of 60 s).
	InstanceB = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f::"
	// InstanceOther is AccountOther's: the Instances page's example.
	InstanceOther = "crn:v1:bluemix:public:quantum-computing:us-east:a/5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f:7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b::"
	// InstanceOtherEU is AccountOther's eu-de instance, with the deprecated qctrl_enabled.
	InstanceOtherEU = "crn:v1:bluemix:public:quantum-computing:eu-de:a/5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f:3a4b5c6d-7e8f-4a9b-8c0d-1e2f3a4b5c6d::"
	// InstanceMissing is a well-formed CRN in AccountDemo that no instance has.
	InstanceMissing = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:00000000-0000-4000-8000-000000000000::"
)

// AdminToken is the control API's token on every Server.
const AdminToken = "qrtest-admin-token"

// TB is what NewServer needs of a test: *testing.T and *testing.B are one.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Option configures a Server.
type Option func(*options) error

type options struct {
	seed     *domain.Seed
	tokenTTL time.Duration
	now      func() time.Time
}

// WithSeed starts the server on a seed given in Go instead of the demo seed.
func WithSeed(s *domain.Seed) Option {
	return func(o *options) error { o.seed = s; return nil }
}

// WithSeedYAML starts the server on a seed in the YAML form of seed/demo.yaml.
func WithSeedYAML(yaml []byte) Option {
	return func(o *options) error {
		s, err := seed.Parse(yaml)
		if err != nil {
			return err
		}
		o.seed = s
		return nil
	}
}

// WithTokenTTL sets the lifetime of the access tokens the server issues (IAM's hour by
// default), to test a client's token refresh.
func WithTokenTTL(d time.Duration) Option {
	return func(o *options) error { o.tokenTTL = d; return nil }
}

// WithClock gives the server a clock of the test's own: what it takes as now for usage
// periods (a period that has ended rolls into the one that contains now), token lifetimes
// and fault rule expiries. Move it to test a client across a month's end.
func WithClock(now func() time.Time) Option {
	return func(o *options) error { o.now = now; return nil }
}

// signingKey is the one RSA key the servers of a test binary sign tokens with: making one
// is four fifths of what starting a server costs (about 40 of 50 ms). Like IBM Cloud, whose
// one IAM signs for every service, a token of one Server is accepted by another whose seed
// has its principal.
var signingKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

// Server is a reference server running inside a test.
type Server struct {
	URL    string // http://127.0.0.1:port: IAM's /identity/token, the API under /api, the control API under /control
	APIURL string // the API's base URL, URL + "/api": client.WithURL
	IAMURL string // where API keys are exchanged for tokens: client.WithIAMURL

	control    *control.ClientWithResponses
	adminToken string
	tokens     atomic.Int64 // token requests, on a server NewServer started
	close      func()
}

// NewServer starts a reference server and closes it when the test ends.
func NewServer(t TB, opts ...Option) *Server {
	t.Helper()
	o := options{seed: seed.Demo(), now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			t.Fatalf("qrtest: %v", err)
		}
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Memory)
	if err != nil {
		t.Fatalf("qrtest: open the database: %v", err)
	}
	if err := st.Load(ctx, o.seed.At(o.now())); err != nil {
		st.Close()
		t.Fatalf("qrtest: load the seed: %v", err)
	}
	key, err := signingKey()
	if err != nil {
		st.Close()
		t.Fatalf("qrtest: signing key: %v", err)
	}
	srv, err := server.New(ctx, server.Config{Store: st, ValidateResponses: true, TokenTTL: o.tokenTTL, AdminToken: AdminToken, Seed: o.seed, SigningKey: key, Now: o.now})
	if err != nil {
		st.Close()
		t.Fatalf("qrtest: %v", err)
	}
	s := &Server{adminToken: AdminToken}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/identity/token" {
			s.tokens.Add(1)
		}
		srv.ServeHTTP(w, r)
	}))
	s.URL, s.APIURL, s.IAMURL = hs.URL, hs.URL+"/api", hs.URL
	s.close = func() {
		hs.Close()
		srv.Close()
		st.Close()
	}
	if s.control, err = controlClient(hs.URL, AdminToken); err != nil {
		s.close()
		t.Fatalf("qrtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// controlClient is the control API's client at base, sending the admin token.
func controlClient(base, adminToken string) (*control.ClientWithResponses, error) {
	return control.NewClientWithResponses(base+"/control", control.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+adminToken)
		return nil
	}))
}

// Dial gives the same helpers against a reference server that runs elsewhere, at base
// (http://host:port, as qrserver prints it) with the control API's admin token: a shared
// deployment, or make run's. Nothing is started or stopped; a test that shares the server
// with others should keep to its own Fixture (a Reset resets everyone's state).
func Dial(t TB, base, adminToken string) *Server {
	t.Helper()
	base = strings.TrimSuffix(base, "/")
	c, err := controlClient(base, adminToken)
	if err != nil {
		t.Fatalf("qrtest: %v", err)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("qrtest: no reference server at %s: %v", base, err)
	}
	resp.Body.Close()
	return &Server{URL: base, APIURL: base + "/api", IAMURL: base, control: c, adminToken: adminToken}
}

// Close stops the server; NewServer's test does it when it ends.
func (s *Server) Close() {
	if c := s.close; c != nil {
		s.close = nil
		c()
	}
}

// Client returns a client of the API pointed at the server, authenticated with KeyAdmin;
// opts come after, so client.WithAPIKey(KeyReader) acts as another principal,
// client.WithAPIKey("") with client.WithBearerToken uses a token instead, and
// client.WithCRN picks the instance.
func (s *Server) Client(t TB, opts ...client.Option) *client.Client {
	t.Helper()
	all := append([]client.Option{client.WithURL(s.APIURL), client.WithIAMURL(s.IAMURL), client.WithAPIKey(KeyAdmin)}, opts...)
	c, err := client.New(all...)
	if err != nil {
		t.Fatalf("qrtest: client: %v", err)
	}
	return c
}

// Control is the control API's generated client, authenticated, for what the helpers
// below do not cover.
func (s *Server) Control() *control.ClientWithResponses { return s.control }

// TokenRequests is how many requests /identity/token has had: to see a client cache tokens.
func (s *Server) TokenRequests() int { return int(s.tokens.Load()) }

// answered fails the test unless a control call answered want.
func answered(t TB, what string, status, want int, body []byte) {
	t.Helper()
	if status != want {
		t.Fatalf("qrtest: %s: %d %s", what, status, body)
	}
}

// RecordUsage adds consumed seconds to an instance, as if a job ran, and returns its state.
func (s *Server) RecordUsage(t TB, crn string, seconds float64) control.InstanceState {
	t.Helper()
	r, err := s.control.RecordUsageWithResponse(context.Background(), control.UsageRecord{Instance: crn, Seconds: seconds})
	if err != nil {
		t.Fatalf("qrtest: record usage: %v", err)
	}
	answered(t, "record usage", r.StatusCode(), http.StatusOK, r.Body)
	return *r.JSON200
}

// Period is a usage period.
type Period struct{ Start, End time.Time }

// SetUsagePeriod replaces an instance's usage period (nil: none, as pay-as-you-go plans
// have) and, with resetConsumed, zeroes its consumed seconds.
func (s *Server) SetUsagePeriod(t TB, crn string, p *Period, resetConsumed bool) control.InstanceState {
	t.Helper()
	body := control.UsagePeriodUpdate{Instance: crn, ResetConsumed: &resetConsumed}
	body.UsagePeriod.SetNull()
	if p != nil {
		body.UsagePeriod.Set(control.Period{StartTime: p.Start, EndTime: p.End})
	}
	r, err := s.control.SetUsagePeriodWithResponse(context.Background(), body)
	if err != nil {
		t.Fatalf("qrtest: set usage period: %v", err)
	}
	answered(t, "set usage period", r.StatusCode(), http.StatusOK, r.Body)
	return *r.JSON200
}

// AdvanceUsagePeriod starts an instance's next usage period and zeroes its usage, as
// when a month of its plan ends.
func (s *Server) AdvanceUsagePeriod(t TB, crn string) control.InstanceState {
	t.Helper()
	r, err := s.control.AdvanceUsagePeriodWithResponse(context.Background(), control.InstanceRef{Instance: crn})
	if err != nil {
		t.Fatalf("qrtest: advance usage period: %v", err)
	}
	answered(t, "advance usage period", r.StatusCode(), http.StatusOK, r.Body)
	return *r.JSON200
}

// Reset puts the whole state back to the seed and removes every fault rule.
func (s *Server) Reset(t TB) {
	t.Helper()
	r, err := s.control.ResetStateWithResponse(context.Background())
	if err != nil {
		t.Fatalf("qrtest: reset: %v", err)
	}
	answered(t, "reset", r.StatusCode(), http.StatusNoContent, r.Body)
}

// Fault is a fault rule: which calls it matches (each empty field: any), what it does, and
// for how many (Count) or for what share (Probability, repeatable with Seed).
type Fault struct {
	Operation string // an operationId, such as "get_instance"
	Instance  string // a CRN
	Principal string // an IAM id, such as "IBMid-demo-admin"
	Fixture   string // a Fixture's ID: only calls on its instances or by its principals

	Status     int           // answer this (400–599) with the error container, code injected_fault
	RetryAfter time.Duration // with Status: Retry-After, in whole seconds
	Delay      time.Duration // wait this long first (at most a minute)
	Reset      bool          // drop the connection with no answer

	Count       int      // the next Count matching calls, then the rule expires; 0: no count
	Probability *float64 // this share of matching calls; nil: every one
	Seed        *int64   // with Probability: the same calls fire in every run
	ExpiresAt   time.Time
}

// AddFault adds a fault rule and returns its id.
func (s *Server) AddFault(t TB, f Fault) string {
	t.Helper()
	in := control.FaultRuleInput{Probability: f.Probability, Seed: f.Seed,
		Operation: optional.NonZero(f.Operation), Instance: optional.NonZero(f.Instance), Principal: optional.NonZero(f.Principal),
		Fixture: optional.NonZero(f.Fixture), Status: optional.NonZero(f.Status), Count: optional.NonZero(f.Count), DelayMs: optional.NonZero(int(f.Delay / time.Millisecond)),
		Reset: optional.NonZero(f.Reset)}
	if f.RetryAfter > 0 {
		in.RetryAfterSeconds = new(int((f.RetryAfter + time.Second - 1) / time.Second))
	}
	if !f.ExpiresAt.IsZero() {
		in.ExpiresAt = &f.ExpiresAt
	}
	r, err := s.control.AddFaultWithResponse(context.Background(), in)
	if err != nil {
		t.Fatalf("qrtest: add fault: %v", err)
	}
	answered(t, "add fault", r.StatusCode(), http.StatusCreated, r.Body)
	return r.JSON201.Id
}

// Faults lists the fault rules, oldest first, with how many calls each saw and hit.
func (s *Server) Faults(t TB) []control.FaultRule {
	t.Helper()
	r, err := s.control.ListFaultsWithResponse(context.Background())
	if err != nil {
		t.Fatalf("qrtest: list faults: %v", err)
	}
	answered(t, "list faults", r.StatusCode(), http.StatusOK, r.Body)
	return r.JSON200.Faults
}

// DeleteFault removes one fault rule.
func (s *Server) DeleteFault(t TB, id string) {
	t.Helper()
	r, err := s.control.DeleteFaultWithResponse(context.Background(), id)
	if err != nil {
		t.Fatalf("qrtest: %s: %v", "delete fault "+id, err)
	}
	answered(t, "delete fault "+id, r.StatusCode(), http.StatusNoContent, r.Body)
}

// ClearFaults removes every fault rule.
func (s *Server) ClearFaults(t TB) {
	t.Helper()
	r, err := s.control.ClearFaultsWithResponse(context.Background())
	if err != nil {
		t.Fatalf("qrtest: clear faults: %v", err)
	}
	answered(t, "clear faults", r.StatusCode(), http.StatusNoContent, r.Body)
}

// AuditEvents lists the audit events the server emitted, oldest first, filtered by params
// (nil: all), reading every page.
func (s *Server) AuditEvents(t TB, params *control.ListAuditEventsParams) []control.AuditEvent {
	t.Helper()
	p := control.ListAuditEventsParams{}
	if params != nil {
		p = *params
	}
	var out []control.AuditEvent
	for pages := 0; ; pages++ {
		r, err := s.control.ListAuditEventsWithResponse(context.Background(), &p)
		if err != nil {
			t.Fatalf("qrtest: list audit events: %v", err)
		}
		answered(t, "list audit events", r.StatusCode(), http.StatusOK, r.Body)
		out = append(out, r.JSON200.Events...)
		if r.JSON200.NextCursor == nil || pages > 1000 {
			return out
		}
		p.Cursor = r.JSON200.NextCursor
	}
}
