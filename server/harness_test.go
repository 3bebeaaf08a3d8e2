package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/gen"
	"github.com/qrapi/qrapi/internal/enginetest"
	"github.com/qrapi/qrapi/seed"
	"github.com/qrapi/qrapi/server"
)

// The demo seed's names (seed/demo.yaml).
const (
	acctDemo  = "8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b"
	acctOther = "5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f"
	crnA1     = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::"
	crnA2     = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f::"
	crnB1     = "crn:v1:bluemix:public:quantum-computing:us-east:a/5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f:7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b::"
	crnB2     = "crn:v1:bluemix:public:quantum-computing:eu-de:a/5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f:3a4b5c6d-7e8f-4a9b-8c0d-1e2f3a4b5c6d::"
	crnAMiss  = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:00000000-0000-4000-8000-000000000000::"

	keyAdmin   = "qrdemo-admin-key-0123456789abcdefghijklmnop"
	keyManager = "qrdemo-manager-key-0123456789abcdefghijklmn"
	keyReader  = "qrdemo-reader-key-0123456789abcdefghijklmno"
	keyViewer  = "qrdemo-viewer-key-0123456789abcdefghijklmno"
	keyOther   = "qrdemo-other-key-0123456789abcdefghijklmnop"
)

var allKeys = []string{keyAdmin, keyManager, keyReader, keyViewer, keyOther}

// syncBuffer is a bytes.Buffer safe for the server's goroutines and the test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// failingStore fails on demand, to show 500s, the instance and account reads and writes
// (fail) and the identity reads (failIdentity); and audit appends: auditFailBefore of them
// without reaching the store, then auditFailAfter of them after the store kept the batch
// (a connection lost in the commit).
type failingStore struct {
	domain.Store
	fail, failIdentity              atomic.Bool
	auditFailBefore, auditFailAfter atomic.Int32
	auditTries                      atomic.Int32
}

var errLost = errors.New("connection lost")

func (f *failingStore) AppendAudit(ctx context.Context, id string, events [][]byte) error {
	defer f.auditTries.Add(1) // a try is counted once it returned
	if f.auditFailBefore.Add(-1) >= 0 {
		return errLost
	}
	if err := f.Store.AppendAudit(ctx, id, events); err != nil {
		return err
	}
	if f.auditFailAfter.Add(-1) >= 0 {
		return errLost
	}
	return nil
}

var errDisk = errors.New("disk on fire at /var/secret/path")

func (f *failingStore) Identity(ctx context.Context, id string) (*domain.Principal, []domain.Policy, error) {
	if f.failIdentity.Load() {
		return nil, nil, errDisk
	}
	return f.Store.Identity(ctx, id)
}

func (f *failingStore) PrincipalByAPIKey(ctx context.Context, key string) (*domain.Principal, error) {
	if f.failIdentity.Load() {
		return nil, errDisk
	}
	return f.Store.PrincipalByAPIKey(ctx, key)
}

// ReadRequest reads identities and instances together: it fails under either flag.
func (f *failingStore) ReadRequest(ctx context.Context, q domain.RequestQuery) (*domain.RequestState, error) {
	if f.fail.Load() || f.failIdentity.Load() {
		return nil, errDisk
	}
	return f.Store.ReadRequest(ctx, q)
}

func (f *failingStore) Instance(ctx context.Context, crn string) (*domain.Instance, error) {
	if f.fail.Load() {
		return nil, errDisk
	}
	return f.Store.Instance(ctx, crn)
}

func (f *failingStore) UpdateInstance(ctx context.Context, crn string, change domain.Change) (*domain.Instance, error) {
	if f.fail.Load() {
		return nil, errDisk
	}
	return f.Store.UpdateInstance(ctx, crn, change)
}

func (f *failingStore) Account(ctx context.Context, id string) (*domain.Account, error) {
	if f.fail.Load() {
		return nil, errDisk
	}
	return f.Store.Account(ctx, id)
}

// clock is a settable time, so token expiry can be shown without waiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a reference server on a loopback listener, on an in-memory database with
// the demo seed, validating every answer against openapi.yaml.
type harness struct {
	t      *testing.T
	srv    *server.Server
	store  *failingStore
	http   *httptest.Server
	url    string
	client *gen.ClientWithResponses
	logs   *syncBuffer
	audit  *syncBuffer
	clock  *clock
}

func newHarness(t *testing.T, edit ...func(*server.Config)) *harness {
	t.Helper()
	ctx := context.Background()
	st := enginetest.Open(t)
	sd := seed.Demo()
	if err := st.Load(ctx, sd); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: &failingStore{Store: st}, logs: &syncBuffer{}, audit: &syncBuffer{}, clock: &clock{t: time.Now()}}
	cfg := server.Config{
		Store: h.store, Logger: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		AuditSink: h.audit, ValidateResponses: true, AdminToken: testAdminToken, Seed: sd, Now: h.clock.Now,
	}
	for _, e := range edit {
		e(&cfg)
	}
	var err error
	h.srv, err = server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.http = httptest.NewServer(h.srv) // listens on 127.0.0.1
	h.url = h.http.URL
	t.Cleanup(func() {
		h.http.Close()
		h.srv.Close()
	})
	h.client, err = gen.NewClientWithResponses(h.url + "/api")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const testAdminToken = "test-admin-token-0123456789"

// token exchanges an API key for an access token at the emulated IAM endpoint.
func (h *harness) token(apiKey string) string {
	h.t.Helper()
	form := url.Values{"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}, "apikey": {apiKey}}
	resp, err := http.PostForm(h.url+"/identity/token", form)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 {
		h.t.Fatalf("token: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		h.t.Fatalf("token: %v", err)
	}
	return tr.AccessToken
}

func bearer(token string) gen.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		return nil
	}
}

func header(name, value string) gen.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set(name, value)
		return nil
	}
}

// do sends a raw request, for what the generated client cannot send (bad bodies, methods).
func (h *harness) do(method, path, token string, hdr map[string]string, body string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
		req.ContentLength = 0
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp, buf.Bytes()
}

// errorContainer is what every error answer must be.
type errorContainer struct {
	Trace      string `json:"trace"`
	StatusCode int    `json:"status_code"`
	Errors     []struct {
		Code     string `json:"code"`
		Message  string `json:"message"`
		MoreInfo string `json:"more_info"`
		Target   *struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"target"`
	} `json:"errors"`
}

// checkError asserts that an answer is the error container with the status, a trace equal
// to X-Correlation-ID, and (if given) a code; it returns the container.
func checkError(t *testing.T, resp *http.Response, body []byte, status int, code string) errorContainer {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	var ec errorContainer
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ec); err != nil {
		t.Fatalf("not the error container: %v: %s", err, body)
	}
	if ec.StatusCode != status || len(ec.Errors) == 0 || ec.Errors[0].Message == "" || ec.Errors[0].MoreInfo == "" {
		t.Fatalf("incomplete error container: %s", body)
	}
	if ec.Trace == "" || resp.Header.Get("X-Correlation-ID") != ec.Trace || resp.Header.Get("X-Global-Transaction-Id") != ec.Trace {
		t.Fatalf("trace %q, X-Correlation-ID %q, X-Global-Transaction-Id %q", ec.Trace, resp.Header.Get("X-Correlation-ID"), resp.Header.Get("X-Global-Transaction-Id"))
	}
	if code != "" && ec.Errors[0].Code != code {
		t.Fatalf("code %q, want %q: %s", ec.Errors[0].Code, code, body)
	}
	return ec
}
