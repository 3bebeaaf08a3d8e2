package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/qrapi/qrapi/client"
)

// exampleClient is what a user writes, pointed at an in-process reference server so the
// examples run as tests: the API key is exchanged at the server's emulated IAM endpoint.
func exampleClient(rs *refServer, crn string) *client.Client {
	c, err := client.New(
		client.WithURL(rs.URL+"/api"),
		client.WithIAMURL(rs.URL),
		client.WithAPIKey(keyAdmin),
		client.WithCRN(crn),
	)
	if err != nil {
		log.Fatal(err)
	}
	return c
}

func ExampleClient_Instance() {
	rs := startReferenceServer(0)
	defer rs.close()
	c := exampleClient(rs, crnA1)

	in, err := c.Instance(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(*in.PlanId, *in.Backends, *in.UsageAllocationSeconds)
	// Output: plan-id-2 [backend1 backend2] 140
}

func ExampleClient_InstanceConfiguration() {
	rs := startReferenceServer(0)
	defer rs.close()
	c := exampleClient(rs, crnA2)

	cfg, err := c.InstanceConfiguration(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(*cfg.InstanceLimit)
	// Output: 60
}

func ExampleClient_SetInstanceLimit() {
	rs := startReferenceServer(0)
	defer rs.close()
	c := exampleClient(rs, crnA1)
	ctx := context.Background()

	if err := c.SetInstanceLimit(ctx, 3600); err != nil {
		log.Fatal(err)
	}
	cfg, _ := c.InstanceConfiguration(ctx)
	fmt.Println(*cfg.InstanceLimit)

	// The instance already used 30 seconds: a lower limit is refused.
	err := c.SetInstanceLimit(ctx, 10)
	fmt.Println(errors.Is(err, client.ErrConflict))
	// Output:
	// 3600
	// true
}

func ExampleClient_RemoveInstanceLimit() {
	rs := startReferenceServer(0)
	defer rs.close()
	c := exampleClient(rs, crnA2)
	ctx := context.Background()

	if err := c.RemoveInstanceLimit(ctx); err != nil {
		log.Fatal(err)
	}
	cfg, _ := c.InstanceConfiguration(ctx)
	fmt.Println(cfg.InstanceLimit == nil)
	// Output: true
}

func ExampleClient_Usage() {
	rs := startReferenceServer(0)
	defer rs.close()
	c := exampleClient(rs, crnA2)

	u, err := c.Usage(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	remaining, _ := u.Remaining()
	fmt.Printf("%.0f of %.0f seconds used, %.0f left, period: %v\n", u.UsageConsumedSeconds, *u.UsageLimitSeconds, remaining, !u.UsagePeriod.IsNull())
	// Output: 12 of 60 seconds used, 48 left, period: false
}

func ExampleClient_Account() {
	rs := startReferenceServer(0)
	defer rs.close()
	c := exampleClient(rs, crnA1)

	acct, err := c.Account(context.Background(), "") // the account of the CRN
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range acct.Plans {
		free := "-"
		if p.UnallocatedUsageSeconds != nil {
			free = fmt.Sprint(*p.UnallocatedUsageSeconds)
		}
		fmt.Println(p.PlanId, p.Backends, free)
	}
	// Output:
	// flex-plan-id-1 [ibm_backend] 200
	// plan-id-2 [backend1 backend2] 10
	// plan-id-3 [backend1 backend2] -
}

func ExampleError() {
	rs := startReferenceServer(0)
	defer rs.close()
	c := exampleClient(rs, crnAMiss)

	_, err := c.Instance(context.Background())
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.StatusCode, e.Code(), errors.Is(err, client.ErrNotFound))
	}
	// Output: 404 instance_not_found true
}
