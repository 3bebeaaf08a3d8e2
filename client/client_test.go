package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/qrapi/qrapi/client"
	"github.com/qrapi/qrapi/gen"
	"github.com/qrapi/qrapi/qrtest"
)

func newClient(t *testing.T, rs *qrtest.Server, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(append([]client.Option{
		client.WithURL(rs.URL + "/api"), client.WithIAMURL(rs.URL), client.WithAPIKey(keyAdmin),
		client.WithCRN(crnA1), client.WithResponseValidation(),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEveryMethodAgainstTheReferenceServer(t *testing.T) {
	rs := qrtest.NewServer(t)
	c := newClient(t, rs)
	ctx := context.Background()

	in, err := c.Instance(ctx)
	if err != nil || *in.PlanId != "plan-id-2" || (*in.Backends)[0] != "backend1" {
		t.Fatalf("Instance: %+v %v", in, err)
	}
	if err := c.SetInstanceLimit(ctx, 3600); err != nil {
		t.Fatalf("SetInstanceLimit: %v", err)
	}
	cfg, err := c.InstanceConfiguration(ctx)
	if err != nil || cfg.InstanceLimit == nil || *cfg.InstanceLimit != 3600 {
		t.Fatalf("InstanceConfiguration: %+v %v", cfg, err)
	}
	u, err := c.Usage(ctx)
	if rem, ok := u.Remaining(); err != nil || !ok || rem != 3570 || *u.UsageLimitSeconds != 3600 {
		t.Fatalf("Usage: %+v %v remaining %v", u, err, rem)
	}
	if err := c.RemoveInstanceLimit(ctx); err != nil {
		t.Fatalf("RemoveInstanceLimit: %v", err)
	}
	if cfg, _ := c.InstanceConfiguration(ctx); cfg.InstanceLimit != nil {
		t.Fatalf("limit not removed: %v", *cfg.InstanceLimit)
	}
	acct, err := c.Account(ctx, "") // the account of the CRN
	if err != nil || len(acct.Plans) != 3 || acct.Plans[1].PlanId != "plan-id-2" || *acct.Plans[1].UnallocatedUsageSeconds != 10 {
		t.Fatalf("Account: %+v %v", acct, err)
	}
	if _, err := c.Account(ctx, "a/"+acctDemo); err != nil {
		t.Fatalf("Account with a/ prefix: %v", err)
	}
	// Per-call CRN and API version.
	u, err = c.Usage(ctx, client.ForCRN(crnA2), client.AtAPIVersion("2026-03-01"))
	if err != nil || u.InstanceId != crnA2 || !u.UsagePeriod.IsNull() {
		t.Fatalf("Usage for another CRN: %+v %v", u, err)
	}

	// Each error kind: a typed *Error that errors.Is matches.
	reader := newClient(t, rs, client.WithAPIKey(""), client.WithBearerToken(token(t, rs, keyReader)))
	cases := []struct {
		name     string
		err      error
		sentinel error
		status   int
		code     string
	}{
		{"conflict", c.SetInstanceLimit(ctx, 1), client.ErrConflict, 409, "usage_exceeds_limit"},
		{"not found", errOf(c.Instance(ctx, client.ForCRN(crnAMiss))), client.ErrNotFound, 404, "instance_not_found"},
		{"forbidden", errOf(reader.Usage(ctx, client.ForCRN(crnA2))), client.ErrForbidden, 403, "forbidden"},
		{"bad request", errOf(c.Instance(ctx, client.AtAPIVersion("2020-01-01"))), client.ErrBadRequest, 400, "unsupported_api_version"},
		{"account not found", errOf(c.Account(ctx, "5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f")), client.ErrNotFound, 404, "account_not_found"},
	}
	bad := newClient(t, rs, client.WithAPIKey(""), client.WithBearerToken("expired.or.forged"))
	cases = append(cases, struct {
		name     string
		err      error
		sentinel error
		status   int
		code     string
	}{"unauthorized", errOf(bad.Instance(ctx)), client.ErrUnauthorized, 401, "unauthorized"})
	for _, tc := range cases {
		var ce *client.Error
		if !errors.As(tc.err, &ce) || !errors.Is(tc.err, tc.sentinel) || ce.StatusCode != tc.status || ce.Code() != tc.code || ce.Trace == "" || ce.Errors[0].Message == "" || ce.Errors[0].MoreInfo == "" {
			t.Errorf("%s: %#v", tc.name, tc.err)
		}
		if errors.Is(tc.err, client.ErrServer) {
			t.Errorf("%s matches ErrServer", tc.name)
		}
	}
	if err := cases[0].err; !strings.Contains(err.Error(), "409 Conflict: usage_exceeds_limit:") {
		t.Errorf("error text: %v", err)
	}
	// A wrong API key fails at IAM, before any call.
	wrong := newClient(t, rs, client.WithAPIKey("nobody-has-this-key-0000"))
	_, err = wrong.Instance(ctx)
	var ae *client.AuthError
	if !errors.As(err, &ae) || ae.Answer == nil || ae.Answer.StatusCode != 400 || ae.Answer.Code() != "BXNIM0415E" || ae.Answer.Trace == "" ||
		!errors.Is(err, client.ErrAuthentication) || strings.Count(err.Error(), "\n") != 0 ||
		err.Error() != "client: authenticate: 400 Bad Request: BXNIM0415E: Provided API key could not be found. (trace "+ae.Answer.Trace+")" {
		t.Errorf("wrong API key: %v", err)
	}
}

func errOf[T any](_ T, err error) error { return err }

func token(t *testing.T, rs *qrtest.Server, key string) string {
	t.Helper()
	a, err := core.NewIamAuthenticatorBuilder().SetApiKey(key).SetURL(rs.URL).Build()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.GetToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The API key path: one token fetched and reused, fetched again once it expires.
func TestAPIKeyTokenIsCachedAndRefreshed(t *testing.T) {
	// go-sdk-core treats a token as expired 10 s before its exp: a 12 s token is stale
	// after about 2 s.
	rs := qrtest.NewServer(t, qrtest.WithTokenTTL(12*time.Second))
	c := newClient(t, rs)
	ctx := context.Background()
	for range 5 {
		if _, err := c.Instance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := rs.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests for 5 calls, want 1", n)
	}
	time.Sleep(3 * time.Second) // past the token's usable life
	if _, err := c.Instance(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rs.TokenRequests(); n < 2 {
		t.Fatalf("%d token requests after expiry, want a new one", n)
	}
}

func TestResponseValidationCatchesDrift(t *testing.T) {
	drifted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"instance_id":"x","plan_id":"p","usage_consumed_seconds":"twelve"}`)) // a string, where the document says number
	}))
	defer drifted.Close()
	c, err := client.New(client.WithURL(drifted.URL+"/api"), client.WithBearerToken("t"), client.WithCRN(crnA1), client.WithResponseValidation())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Usage(context.Background())
	var ve *client.ValidationError
	if !errors.As(err, &ve) || ve.Status != 200 || !strings.Contains(err.Error(), "usage_consumed_seconds") {
		t.Fatalf("drift not caught: %v", err)
	}
	// Without validation the same answer fails only at decoding.
	c, _ = client.New(client.WithURL(drifted.URL+"/api"), client.WithBearerToken("t"), client.WithCRN(crnA1))
	if _, err := c.Usage(context.Background()); errors.As(err, &ve) {
		t.Fatalf("validation ran although off: %v", err)
	}
}

func TestURLsAndEnvironment(t *testing.T) {
	for crn, want := range map[string]string{
		crnA1: "https://quantum.cloud.ibm.com/api",
		"crn:v1:bluemix:public:quantum-computing:eu-de:a/5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f:3a4b5c6d-7e8f-4a9b-8c0d-1e2f3a4b5c6d::": "https://eu-de.quantum.cloud.ibm.com/api",
	} {
		c, err := client.New(client.WithCRN(crn), client.WithBearerToken("t"))
		if err != nil || c.URL() != want {
			t.Errorf("%s: %v %v, want %s", crn, c.URL(), err, want)
		}
	}
	if c, _ := client.New(); c.URL() != client.DefaultURL {
		t.Errorf("default URL %s", c.URL())
	}
	if _, err := client.New(client.WithCRN("crn:not-one")); err == nil {
		t.Error("a malformed CRN was accepted")
	}
	if _, err := client.New(client.WithAPIKey("k"), client.WithBearerToken("t")); err == nil {
		t.Error("two credentials were accepted")
	}

	rs := qrtest.NewServer(t)
	env := map[string]string{client.EnvAPIKey: keyAdmin, client.EnvInstance: crnA2, client.EnvURL: rs.URL + "/api/", client.EnvIAMURL: rs.URL}
	c, err := client.New(client.FromEnv(func(k string) string { return env[k] }))
	if err != nil {
		t.Fatal(err)
	}
	if c.CRN() != crnA2 || c.URL() != rs.URL+"/api" {
		t.Fatalf("from env: %s %s", c.CRN(), c.URL())
	}
	if in, err := c.Instance(context.Background()); err != nil || *in.PlanId != "plan-id-3" {
		t.Fatalf("from env: %v", err)
	}
	// Explicit options win over the environment.
	c, _ = client.New(client.WithCRN(crnA1), client.FromEnv(func(k string) string { return env[k] }))
	if c.CRN() != crnA1 {
		t.Fatalf("explicit CRN lost to the environment: %s", c.CRN())
	}
	if _, err := mustNoCRN(t).Instance(context.Background()); err == nil || !strings.Contains(err.Error(), "no instance CRN") {
		t.Fatalf("no CRN: %v", err)
	}
}

func mustNoCRN(t *testing.T) *client.Client {
	c, err := client.New(client.WithBearerToken("t"), client.WithURL("http://127.0.0.1:1/api"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDefaultAPIVersionIsTheDocuments(t *testing.T) {
	doc, err := gen.GetSwagger()
	if err != nil {
		t.Fatal(err)
	}
	if doc.Info.Version != client.DefaultAPIVersion {
		t.Fatalf("DefaultAPIVersion %s, document %s", client.DefaultAPIVersion, doc.Info.Version)
	}
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("IBM-API-Version") + " " + r.Header.Get("Service-CRN") + " " + r.Header.Get("Authorization"))
		w.WriteHeader(404)
	}))
	defer srv.Close()
	c, _ := client.New(client.WithURL(srv.URL), client.WithBearerToken("tok"), client.WithCRN(crnA1), client.WithoutRetry())
	c.Instance(context.Background())
	if got.Load() != client.DefaultAPIVersion+" "+crnA1+" Bearer tok" {
		t.Fatalf("headers sent: %v", got.Load())
	}
}

// An API key goes to IBM Cloud's IAM only for IBM Cloud's URLs: any other service URL's
// key is exchanged at that URL's own origin.
func TestIAMURLFor(t *testing.T) {
	for url, want := range map[string]string{
		"https://quantum.cloud.ibm.com/api":       client.DefaultIAMURL,
		"https://eu-de.quantum.cloud.ibm.com/api": client.DefaultIAMURL,
		"https://quantum.test.cloud.ibm.com/api":  "https://iam.test.cloud.ibm.com",
		"http://127.0.0.1:8080/api":               "http://127.0.0.1:8080",
		"https://qr.example.com/prefix/api":       "https://qr.example.com",
		"http://cloud.ibm.com.example.org:81/api": "http://cloud.ibm.com.example.org:81",
	} {
		if got := client.IAMURLFor(url); got != want {
			t.Errorf("IAMURLFor(%s) = %s, want %s", url, got, want)
		}
	}
}

func TestAPIKeyGoesToTheServiceURLsOwnIAM(t *testing.T) {
	srv := qrtest.NewServer(t)
	c, err := client.New(client.WithURL(srv.URL+"/api"), client.WithAPIKey(qrtest.KeyAdmin), client.WithCRN(qrtest.InstanceB))
	if err != nil {
		t.Fatal(err)
	}
	if u, err := c.Usage(context.Background()); err != nil || u.UsageConsumedSeconds != 12 {
		t.Fatalf("usage with no IAM URL given: %v, %v", u, err)
	}
}
