package client_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/qrapi/qrapi/client"
	"github.com/qrapi/qrapi/qrtest"
)

// retries records what the client's retry observer saw.
type retries struct {
	mu  sync.Mutex
	evs []client.RetryEvent
}

func (r *retries) observe(ev client.RetryEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
}

func (r *retries) all() []client.RetryEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]client.RetryEvent(nil), r.evs...)
}

// The project's client against injected faults, end to end through qrtest.
func TestClientAgainstInjectedFaults(t *testing.T) {
	srv := qrtest.NewServer(t)
	ctx := context.Background()

	t.Run("429 with Retry-After twice, then success", func(t *testing.T) {
		srv.AddFault(t, qrtest.Fault{Operation: "get_instance", Status: 429, RetryAfter: time.Second, Count: 2})
		var r retries
		c := srv.Client(t, client.WithCRN(qrtest.InstanceA), client.WithRetryObserver(r.observe), client.WithResponseValidation())
		start := time.Now()
		in, err := c.Instance(ctx)
		if err != nil || *in.PlanId != "plan-id-2" {
			t.Fatalf("one call through two 429s: %v", err)
		}
		evs := r.all()
		if len(evs) != 2 {
			t.Fatalf("%d retries, want 2: %+v", len(evs), evs)
		}
		for i, ev := range evs {
			if ev.Status != 429 || ev.Attempt != i+1 || ev.Wait != time.Second || !ev.RetryAfter {
				t.Errorf("retry %d: %+v, want after a 429, waiting the Retry-After's 1s", i+1, ev)
			}
		}
		if waited := time.Since(start); waited < 2*time.Second {
			t.Errorf("the call took %s: it did not wait out Retry-After twice", waited)
		}
	})

	t.Run("503 on every call: bounded attempts, typed error", func(t *testing.T) {
		id := srv.AddFault(t, qrtest.Fault{Operation: "get_usage", Status: 503})
		defer srv.DeleteFault(t, id)
		var r retries
		c := srv.Client(t, client.WithCRN(qrtest.InstanceA), client.WithRetryObserver(r.observe), client.WithResponseValidation(),
			client.WithRetry(client.RetryPolicy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: 20 * time.Millisecond, MaxElapsed: 10 * time.Second}))
		_, err := c.Usage(ctx)
		var ce *client.Error
		if !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, client.ErrServer) || !errors.As(err, &ce) || ce.Code() != "injected_fault" || ce.Trace == "" {
			t.Fatalf("after the attempts: %v, want ErrUnavailable with code injected_fault", err)
		}
		if errors.Is(err, client.ErrTooManyRequests) {
			t.Error("a 503 matches ErrTooManyRequests")
		}
		if n := len(r.all()); n != 2 {
			t.Errorf("%d retries, want 2 (3 attempts)", n)
		}
		for _, f := range srv.Faults(t) {
			if f.Id == id && (f.Hits != 3 || f.Seen != 3) {
				t.Errorf("the server saw %d calls and hit %d, want 3 and 3", f.Seen, f.Hits)
			}
		}
	})

	t.Run("429 for good: ErrTooManyRequests", func(t *testing.T) {
		id := srv.AddFault(t, qrtest.Fault{Operation: "get_account", Status: 429})
		defer srv.DeleteFault(t, id)
		c := srv.Client(t, client.WithCRN(qrtest.InstanceA), client.WithoutRetry(), client.WithResponseValidation())
		if _, err := c.Account(ctx, qrtest.AccountDemo); !errors.Is(err, client.ErrTooManyRequests) {
			t.Fatalf("a 429: %v", err)
		}
	})

	t.Run("reset: a connection error the client retries", func(t *testing.T) {
		srv.AddFault(t, qrtest.Fault{Operation: "get_instance_configuration", Reset: true, Count: 1})
		var r retries
		// Without keep-alive every attempt is a new connection, so the retry is the
		// client's, not Go's transport resending on a reused one.
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		c := srv.Client(t, client.WithCRN(qrtest.InstanceB), client.WithHTTPClient(hc), client.WithRetryObserver(r.observe),
			client.WithRetry(client.RetryPolicy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: 20 * time.Millisecond, MaxElapsed: 10 * time.Second}))
		cfg, err := c.InstanceConfiguration(ctx)
		if err != nil || cfg.InstanceLimit == nil || *cfg.InstanceLimit != 60 {
			t.Fatalf("after a dropped connection: %+v %v", cfg, err)
		}
		evs := r.all()
		if len(evs) != 1 || evs[0].Status != 0 || evs[0].Err == nil {
			t.Fatalf("retries: %+v, want one after a connection error", evs)
		}
	})

	t.Run("a 2 s delay under a 500 ms timeout", func(t *testing.T) {
		srv.AddFault(t, qrtest.Fault{Operation: "get_usage", Delay: 2 * time.Second, Count: 1})
		c := srv.Client(t, client.WithCRN(qrtest.InstanceA))
		other := srv.Client(t, client.WithCRN(qrtest.InstanceA))
		if _, err := other.Instance(ctx); err != nil { // its token, before the clock starts
			t.Fatal(err)
		}
		delayed := make(chan error, 1)
		go func() {
			short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			_, err := c.Usage(short)
			delayed <- err
		}()
		// While the delayed call waits, the server answers others at once: three calls
		// complete before the delayed one gives up.
		for i := range 3 {
			if _, err := other.Instance(ctx); err != nil {
				t.Fatalf("call %d during the delay: %v", i+1, err)
			}
			select {
			case err := <-delayed:
				t.Fatalf("the delayed call ended before call %d of the others: %v", i+1, err)
			default:
			}
		}
		if err := <-delayed; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the delayed call: %v, want the deadline", err)
		}
	})
}
