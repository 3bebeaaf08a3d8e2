package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/server"
)

func TestOperationsEndpoints(t *testing.T) {
	h := newHarness(t)
	admin := h.token(keyAdmin)
	h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnA1}, "")

	if resp, b := h.do("GET", "/healthz", "", nil, ""); resp.StatusCode != 200 || !strings.Contains(string(b), "ok") {
		t.Fatalf("healthz: %d %s", resp.StatusCode, b)
	}
	if resp, _ := h.do("GET", "/readyz", "", nil, ""); resp.StatusCode != 200 {
		t.Fatalf("readyz: %d", resp.StatusCode)
	}
	resp, b := h.do("GET", "/metrics", "", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `qrserver_requests_total{injected="false",operation="get_instance",status="200"} 1`) ||
		!strings.Contains(string(b), `qrserver_request_duration_seconds_bucket{operation="get_instance"`) {
		t.Fatalf("metrics: %d %s", resp.StatusCode, b)
	}
	resp, b = h.do("GET", "/openapi.json", "", nil, "")
	var doc map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(b, &doc) != nil || doc["openapi"] != "3.0.3" || !strings.Contains(string(b), `"operationId":"get_instance"`) {
		t.Fatalf("openapi.json: %d", resp.StatusCode)
	}
	if resp, b := h.do("GET", "/openapi.yaml", "", nil, ""); resp.StatusCode != 200 || !strings.Contains(string(b), "operationId: replace_instance_configuration") {
		t.Fatalf("openapi.yaml: %d", resp.StatusCode)
	}
	// A page the documentation does not have is a 404 in the error container.
	for _, p := range []string{"/docs/nothing-here", "/docs/x/../../etc/passwd"} {
		resp, b := h.do("GET", p, "", nil, "")
		checkError(t, resp, b, 404, "not_found")
	}
	if resp, b := h.do("GET", "/docs/", "", nil, ""); resp.StatusCode != 200 || !strings.Contains(string(b), "swagger") || !strings.Contains(string(b), "/openapi.json") {
		t.Fatalf("docs: %d %.200s", resp.StatusCode, b)
	}
}

// brokenStore returns an instance the document does not allow (an empty backend name).
type brokenStore struct{ domain.Store }

func (b brokenStore) ReadRequest(ctx context.Context, q domain.RequestQuery) (*domain.RequestState, error) {
	st, err := b.Store.ReadRequest(ctx, q)
	if err == nil && st.Instance != nil {
		st.Instance.Backends = append(st.Instance.Backends, "")
	}
	return st, err
}

func TestAnAnswerThatBreaksTheDocumentIsA500(t *testing.T) {
	h := newHarness(t, func(c *server.Config) { c.Store = brokenStore{c.Store} })
	admin := h.token(keyAdmin)
	resp, b := h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnA1}, "")
	ec := checkError(t, resp, b, 500, "response_validation_failed")
	if !strings.Contains(ec.Errors[0].Message, "openapi.yaml") {
		t.Fatalf("the 500 should say the answer broke the document: %s", b)
	}
	if !strings.Contains(h.logs.String(), "answer breaks openapi.yaml") || !strings.Contains(h.logs.String(), ec.Trace) {
		t.Fatalf("the violation is not logged with its trace")
	}
	// Without response validation, the same answer goes out as is.
	off := newHarness(t, func(c *server.Config) { c.Store = brokenStore{c.Store}; c.ValidateResponses = false })
	resp, b = off.do("GET", "/api/v1/instance", off.token(keyAdmin), map[string]string{"Service-CRN": crnA1}, "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `""`) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestPanicIsA500(t *testing.T) {
	h := newHarness(t, func(c *server.Config) { c.Store = panickyStore{c.Store} })
	admin := h.token(keyAdmin)
	resp, b := h.do("GET", "/api/v1/instances/usage", admin, map[string]string{"Service-CRN": crnA1}, "")
	checkError(t, resp, b, 500, "internal")
	if !strings.Contains(h.logs.String(), "panic") {
		t.Fatal("the panic is not logged")
	}
}

type panickyStore struct{ domain.Store }

// ReadRequest panics on a call's read (one that names an instance), not on a token's.
func (p panickyStore) ReadRequest(ctx context.Context, q domain.RequestQuery) (*domain.RequestState, error) {
	if q.InstanceCRN != "" {
		panic("boom")
	}
	return p.Store.ReadRequest(ctx, q)
}

// Every answer, error or not, from any endpoint, carries X-Global-Transaction-Id (IBM
// Cloud's name, read by IBM's SDK cores) equal to the trace in X-Correlation-ID.
func TestGlobalTransactionIDOnEveryAnswer(t *testing.T) {
	h := newHarness(t)
	admin := h.token(keyAdmin)
	crn := map[string]string{"Service-CRN": crnA1}
	for _, c := range []struct {
		method, path, token string
		hdr                 map[string]string
		body                string
		status              int
	}{
		{"GET", "/api/v1/instance", admin, crn, "", 200},
		{"PUT", "/api/v1/instances/configuration", admin, map[string]string{"Service-CRN": crnA1, "Content-Type": "application/json"}, `{"instance_limit": 500}`, 204},
		{"GET", "/api/v1/instances/usage", "", crn, "", 401},
		{"GET", "/api/v1/nothing", admin, nil, "", 404},
		{"GET", "/healthz", "", nil, "", 200},
		{"GET", "/readyz", "", nil, "", 200},
		{"GET", "/metrics", "", nil, "", 200},
		{"GET", "/openapi.json", "", nil, "", 200},
		{"GET", "/docs/", "", nil, "", 200},
		{"POST", "/identity/token", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=" + keyAdmin, 200},
		{"POST", "/identity/token", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=wrong-key-0123456789abcdefgh", 400},
		{"GET", "/control/v1/audit-events", testAdminToken, nil, "", 200},
	} {
		resp, b := h.do(c.method, c.path, c.token, c.hdr, c.body)
		trace := resp.Header.Get("X-Correlation-ID")
		if resp.StatusCode != c.status || trace == "" || resp.Header.Get("X-Global-Transaction-Id") != trace {
			t.Errorf("%s %s: %d (want %d), X-Correlation-ID %q, X-Global-Transaction-Id %q: %.200s", c.method, c.path, resp.StatusCode, c.status,
				trace, resp.Header.Get("X-Global-Transaction-Id"), b)
		}
	}
}

// The served document lists this server first, as the reader reached it (or as
// --public-url says), so that the docs' "Try it out" calls it and not IBM Cloud; IBM's
// servers follow; the page says how to get a token.
func TestServedDocumentPointsAtThisServer(t *testing.T) {
	type served struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Info struct {
			Description string `json:"description"`
		} `json:"info"`
	}
	get := func(h *harness, host string) served {
		t.Helper()
		req, _ := http.NewRequest("GET", h.url+"/openapi.json", nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d served
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != 200 {
			t.Fatalf("openapi.json: %d %v", resp.StatusCode, err)
		}
		return d
	}
	h := newHarness(t)
	for _, host := range []string{"", "localhost:9123"} {
		d := get(h, host)
		want := h.url + "/api"
		if host != "" {
			want = "http://" + host + "/api"
		}
		if len(d.Servers) < 2 || d.Servers[0].URL != want || d.Servers[1].URL != "https://quantum.cloud.ibm.com/api" {
			t.Fatalf("Host %q: servers %+v, want %s first, then IBM Cloud", host, d.Servers, want)
		}
		for _, s := range d.Servers[1:] {
			if strings.HasPrefix(s.URL, "http://127.0.0.1:") {
				t.Fatalf("the hard-coded local entry is still served: %+v", d.Servers)
			}
		}
		if !strings.Contains(d.Info.Description, strings.TrimSuffix(want, "/api")+"/identity/token") || !strings.Contains(d.Info.Description, "Authorize") {
			t.Fatalf("the page does not say how to get a token: %.300s", d.Info.Description)
		}
	}
	h = newHarness(t, func(c *server.Config) { c.PublicURL = "https://qr.example.com" })
	if d := get(h, "whatever:1"); d.Servers[0].URL != "https://qr.example.com/api" {
		t.Fatalf("--public-url: servers %+v", d.Servers)
	}
	resp, b := h.do("GET", "/openapi.yaml", "", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), "url: https://qr.example.com/api") {
		t.Fatalf("openapi.yaml: %d %.300s", resp.StatusCode, b)
	}
}

// readCountingStore counts the store's reads.
type readCountingStore struct {
	domain.Store
	mu    sync.Mutex
	reads []string
}

func (s *readCountingStore) count(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads = append(s.reads, name)
}

func (s *readCountingStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reads
	s.reads = nil
	return r
}

func (s *readCountingStore) ReadRequest(ctx context.Context, q domain.RequestQuery) (*domain.RequestState, error) {
	s.count("ReadRequest")
	return s.Store.ReadRequest(ctx, q)
}
func (s *readCountingStore) Instance(ctx context.Context, crn string) (*domain.Instance, error) {
	s.count("Instance")
	return s.Store.Instance(ctx, crn)
}
func (s *readCountingStore) Identity(ctx context.Context, id string) (*domain.Principal, []domain.Policy, error) {
	s.count("Identity")
	return s.Store.Identity(ctx, id)
}
func (s *readCountingStore) PrincipalByAPIKey(ctx context.Context, key string) (*domain.Principal, error) {
	s.count("PrincipalByAPIKey")
	return s.Store.PrincipalByAPIKey(ctx, key)
}
func (s *readCountingStore) Account(ctx context.Context, id string) (*domain.Account, error) {
	s.count("Account")
	return s.Store.Account(ctx, id)
}
func (s *readCountingStore) AccountInstances(ctx context.Context, id string) ([]domain.Instance, error) {
	s.count("AccountInstances")
	return s.Store.AccountInstances(ctx, id)
}
func (s *readCountingStore) LiveFaults(ctx context.Context, now time.Time) ([]domain.FaultRule, error) {
	s.count("LiveFaults")
	return s.Store.LiveFaults(ctx, now)
}
func (s *readCountingStore) Faults(ctx context.Context) ([]domain.FaultRule, error) {
	s.count("Faults")
	return s.Store.Faults(ctx)
}

// A call that changes nothing reads the store once, with its caller: the principal, its
// policies, the instance or account it names and the live fault rules come in one read
// (on PostgreSQL, one round trip: postgres.TestReadRequestIsOneRoundTrip), by token or by
// API key, answered or refused.
func TestACallReadsTheStoreOnce(t *testing.T) {
	counting := &readCountingStore{}
	h := newHarness(t, func(c *server.Config) { counting.Store = c.Store; c.Store = counting })
	admin, reader := h.token(keyAdmin), h.token(keyReader)
	// A rule that matches nothing here, so that the fault step has a rule to look at.
	if resp, b := h.do("POST", "/control/v1/faults", testAdminToken, map[string]string{"Content-Type": "application/json"}, `{"operation": "get_usage", "principal": "nobody", "status": 500}`); resp.StatusCode != 201 {
		t.Fatalf("add fault: %d %s", resp.StatusCode, b)
	}
	for _, c := range []struct {
		path, auth, crn string
		status          int
	}{
		{"/api/v1/instance", "Bearer " + admin, crnA1, 200},
		{"/api/v1/instances/configuration", "Bearer " + admin, crnA1, 200},
		{"/api/v1/instances/usage", "apikey " + keyAdmin, crnA1, 200},
		{"/api/v1/accounts/" + acctDemo, "Bearer " + admin, "", 200},
		{"/api/v1/instance", "Bearer " + admin, crnAMiss, 404},
		{"/api/v1/instances/usage", "Bearer " + reader, crnB1, 403},
		{"/api/v1/accounts/" + acctOther, "apikey " + keyReader, "", 404},
	} {
		counting.take()
		hdr := map[string]string{"Authorization": c.auth}
		if c.crn != "" {
			hdr["Service-CRN"] = c.crn
		}
		resp, b := h.do("GET", c.path, "", hdr, "")
		if resp.StatusCode != c.status {
			t.Fatalf("GET %s: %d %s, want %d", c.path, resp.StatusCode, b, c.status)
		}
		if reads := counting.take(); len(reads) != 1 || reads[0] != "ReadRequest" {
			t.Errorf("GET %s (%s) read the store %d times: %v, want once (ReadRequest)", c.path, strings.Fields(c.auth)[0], len(reads), reads)
		}
	}
}
