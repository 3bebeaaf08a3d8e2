package qrtest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/qrapi/qrapi/client"
	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/gen/control"
	"github.com/qrapi/qrapi/qrtest"
)

// exampleT stands in, in these examples, for the *testing.T a real test has.
type exampleT struct{ cleanups []func() }

func (e *exampleT) Helper()                           {}
func (e *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (e *exampleT) Cleanup(f func())                  { e.cleanups = append(e.cleanups, f) }

// done runs the cleanups, as the end of a test does.
func (e *exampleT) done() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

var ctx = context.Background()

func ExampleNewServer() {
	t := &exampleT{}
	defer t.done()

	srv := qrtest.NewServer(t) // the demo seed, on a loopback port, closed when the test ends
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, srv.APIURL == srv.URL+"/api")
	// Output: 200 true
}

func ExampleServer_Client() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)

	c := srv.Client(t, client.WithCRN(qrtest.InstanceB))
	u, err := c.Usage(ctx)
	if err != nil {
		panic(err)
	}
	left, _ := u.Remaining()
	fmt.Printf("%s: %v s used, %v s left\n", u.PlanId, u.UsageConsumedSeconds, left)

	// Another principal: the reader may read but not change the limit.
	reader := srv.Client(t, client.WithAPIKey(qrtest.KeyReader), client.WithCRN(qrtest.InstanceA))
	err = reader.SetInstanceLimit(ctx, 600)
	fmt.Println(errors.Is(err, client.ErrForbidden))
	// Output:
	// plan-id-3: 12 s used, 48 s left
	// true
}

func ExampleWithSeed() {
	t := &exampleT{}
	defer t.done()
	const crn = "crn:v1:bluemix:public:quantum-computing:us-east:a/0123456789abcdef0123456789abcdef:11111111-2222-4333-8444-555555555555::"
	alloc := int64(500)
	srv := qrtest.NewServer(t, qrtest.WithSeed(&domain.Seed{
		Accounts:  []domain.SeedAccount{{ID: "0123456789abcdef0123456789abcdef"}},
		Instances: []domain.SeedInstance{{CRN: crn, PlanID: "my-plan", UsageAllocationSeconds: &alloc}},
		Principals: []domain.SeedPrincipal{{ID: "IBMid-me", Type: domain.PrincipalUser, Name: "Me", Account: "0123456789abcdef0123456789abcdef",
			APIKeys: []string{"my-test-key-0123456789abcdef"}, Policies: []domain.SeedPolicyIn{{Role: domain.RoleManager, Account: "0123456789abcdef0123456789abcdef"}}}},
	}))

	u, err := srv.Client(t, client.WithAPIKey("my-test-key-0123456789abcdef"), client.WithCRN(crn)).Usage(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(u.PlanId, *u.UsageAllocationSeconds)
	// Output: my-plan 500
}

func ExampleWithSeedYAML() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t, qrtest.WithSeedYAML([]byte(`
accounts:
  - id: 0123456789abcdef0123456789abcdef
instances:
  - crn: "crn:v1:bluemix:public:quantum-computing:us-east:a/0123456789abcdef0123456789abcdef:11111111-2222-4333-8444-555555555555::"
    plan_id: yaml-plan
    usage_consumed_seconds: 7
principals:
  - id: IBMid-me
    type: user
    name: Me
    account: 0123456789abcdef0123456789abcdef
    api_keys: [my-test-key-0123456789abcdef]
    policies:
      - {role: Reader, account: 0123456789abcdef0123456789abcdef}
`)))
	c := srv.Client(t, client.WithAPIKey("my-test-key-0123456789abcdef"),
		client.WithCRN("crn:v1:bluemix:public:quantum-computing:us-east:a/0123456789abcdef0123456789abcdef:11111111-2222-4333-8444-555555555555::"))
	u, err := c.Usage(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(u.PlanId, u.UsageConsumedSeconds)
	// Output: yaml-plan 7
}

func ExampleWithTokenTTL() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t, qrtest.WithTokenTTL(10*time.Minute))
	c := srv.Client(t, client.WithCRN(qrtest.InstanceA))
	for range 3 {
		if _, err := c.Instance(ctx); err != nil {
			panic(err)
		}
	}
	fmt.Println("token requests:", srv.TokenRequests()) // the client caches its token
	// Output: token requests: 1
}

func ExampleServer_TokenRequests() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)
	fmt.Println(srv.TokenRequests())
	srv.Client(t, client.WithCRN(qrtest.InstanceA)).Instance(ctx)
	fmt.Println(srv.TokenRequests())
	// Output:
	// 0
	// 1
}

func ExampleServer_Close() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)
	srv.Close() // before the test ends, to see a client fail on a server that is gone
	_, err := http.Get(srv.URL + "/healthz")
	fmt.Println(err != nil)
	// Output: true
}

func ExampleServer_Control() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)
	r, err := srv.Control().RecordUsageWithResponse(ctx, control.UsageRecord{Instance: qrtest.InstanceB, Seconds: 3})
	if err != nil {
		panic(err)
	}
	fmt.Println(r.StatusCode(), r.JSON200.UsageConsumedSeconds)
	// Output: 200 15
}

func ExampleServer_RecordUsage() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)
	srv.RecordUsage(t, qrtest.InstanceB, 40) // 12 + 40 of a 60 s limit

	u, _ := srv.Client(t, client.WithCRN(qrtest.InstanceB)).Usage(ctx)
	left, _ := u.Remaining()
	fmt.Println(u.UsageConsumedSeconds, left)
	// Output: 52 8
}

func ExampleServer_SetUsagePeriod() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	st := srv.SetUsagePeriod(t, qrtest.InstanceB, &qrtest.Period{Start: start, End: start.AddDate(0, 1, 0)}, true)
	p, _ := st.UsagePeriod.Get()
	fmt.Println(p.StartTime.Format(time.DateOnly), p.EndTime.Format(time.DateOnly), st.UsageConsumedSeconds)

	st = srv.SetUsagePeriod(t, qrtest.InstanceB, nil, false) // none, as pay-as-you-go
	fmt.Println(st.UsagePeriod.IsNull())
	// Output:
	// 2026-11-01 2026-12-01 0
	// true
}

func ExampleServer_AdvanceUsagePeriod() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // a future period of 30 days
	srv.SetUsagePeriod(t, qrtest.InstanceB, &qrtest.Period{Start: start, End: start.AddDate(0, 0, 30)}, false)

	st := srv.AdvanceUsagePeriod(t, qrtest.InstanceB)
	p, _ := st.UsagePeriod.Get()
	fmt.Println(p.StartTime.Format(time.DateOnly), p.EndTime.Format(time.DateOnly), st.UsageConsumedSeconds)
	// Output: 2030-01-31 2030-03-02 0
}

func ExampleServer_Reset() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)
	srv.RecordUsage(t, qrtest.InstanceB, 30)
	srv.Reset(t)

	u, _ := srv.Client(t, client.WithCRN(qrtest.InstanceB)).Usage(ctx)
	fmt.Println(u.UsageConsumedSeconds)
	// Output: 12
}

func ExampleServer_AddFault() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)
	// The next two get_usage calls answer 429 with Retry-After: 1; the client waits and retries.
	srv.AddFault(t, qrtest.Fault{Operation: "get_usage", Status: 429, RetryAfter: time.Second, Count: 2})

	start := time.Now()
	u, err := srv.Client(t, client.WithCRN(qrtest.InstanceB)).Usage(ctx)
	fmt.Println(err, u.UsageConsumedSeconds, time.Since(start) >= 2*time.Second)
	// Output: <nil> 12 true
}

func ExampleServer_Faults() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)
	srv.AddFault(t, qrtest.Fault{Instance: qrtest.InstanceA, Status: 503, Count: 1})
	c := srv.Client(t, client.WithCRN(qrtest.InstanceA), client.WithoutRetry())

	_, err := c.Instance(ctx)
	fmt.Println(errors.Is(err, client.ErrUnavailable))
	for _, f := range srv.Faults(t) {
		fmt.Println(*f.Status, f.Hits, f.Live)
	}
	// Output:
	// true
	// 503 1 false
}

func ExampleServer_DeleteFault() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)
	id := srv.AddFault(t, qrtest.Fault{Status: 500})
	srv.DeleteFault(t, id)
	fmt.Println(len(srv.Faults(t)))
	// Output: 0
}

func ExampleServer_ClearFaults() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)
	srv.AddFault(t, qrtest.Fault{Status: 500})
	srv.AddFault(t, qrtest.Fault{Delay: 100 * time.Millisecond})
	srv.ClearFaults(t)
	fmt.Println(len(srv.Faults(t)))
	// Output: 0
}

func ExampleServer_AuditEvents() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)
	c := srv.Client(t, client.WithCRN(qrtest.InstanceOther)) // another account's instance: 403
	c.Instance(ctx)

	failure := control.ListAuditEventsParamsOutcome("failure")
	for _, ev := range srv.AuditEvents(t, &control.ListAuditEventsParams{Outcome: &failure}) {
		fmt.Println(ev.Action, ev.Outcome, (*ev.Reason)["reasonCode"])
	}
	// Output: quantum-computing.instance.read failure 403
}

func ExampleWithClock() {
	t := &exampleT{}
	defer t.done()
	var mu sync.Mutex
	now := time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := qrtest.NewServer(t, qrtest.WithClock(clock)) // the demo's period: the current month
	c := srv.Client(t, client.WithCRN(qrtest.InstanceA))

	u, _ := c.Usage(ctx)
	p, _ := u.UsagePeriod.Get()
	fmt.Println(p.StartTime.Format(time.DateOnly), u.UsageConsumedSeconds)

	mu.Lock()
	now = now.Add(2 * time.Hour) // past midnight: January
	mu.Unlock()
	u, _ = srv.Client(t, client.WithCRN(qrtest.InstanceA)).Usage(ctx) // a new client: the old token expired with December
	p, _ = u.UsagePeriod.Get()
	fmt.Println(p.StartTime.Format(time.DateOnly), u.UsageConsumedSeconds)
	// Output:
	// 2026-12-01 30
	// 2027-01-01 0
}

func ExampleServer_Fixture() {
	t := &exampleT{}
	defer t.done()
	srv := qrtest.NewServer(t)

	// A test's own account, instance and principal, made with generated ids and key, and
	// deleted when the test ends: other tests on the same server never see them.
	fx := srv.Fixture(t, &domain.Seed{
		Accounts:   []domain.SeedAccount{{}},
		Instances:  []domain.SeedInstance{{PlanID: "my-plan", UsageConsumedSeconds: 7}},
		Principals: []domain.SeedPrincipal{{}},
	})
	u, err := fx.Client(t).Usage(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(u.PlanId, u.UsageConsumedSeconds, len(fx.Key()))

	// The fixture's key reaches nothing else.
	_, err = fx.Client(t, client.WithCRN(qrtest.InstanceA)).Usage(ctx)
	fmt.Println(errors.Is(err, client.ErrForbidden))

	// Only this fixture's calls are faulted.
	srv.AddFault(t, qrtest.Fault{Fixture: fx.ID, Status: 503, Count: 1})
	_, err = srv.Client(t, client.WithCRN(qrtest.InstanceA)).Usage(ctx)
	fmt.Println(err == nil)
	// Output:
	// my-plan 7 44
	// true
	// true
}

func ExampleDial() {
	t := &exampleT{}
	defer t.done()
	running := qrtest.NewServer(t) // stands in for make run, or a shared deployment

	// A test in a fleet: the server runs elsewhere; the test keeps to its own fixture.
	srv := qrtest.Dial(t, running.URL, qrtest.AdminToken)
	fx := srv.Fixture(t, nil)
	srv.RecordUsage(t, fx.Instances[0], 30)
	u, err := fx.Client(t).Usage(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(u.PlanId, u.UsageConsumedSeconds)
	// Output: fixture-plan 30
}
