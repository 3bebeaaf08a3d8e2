package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrapi/qrapi/client"
)

const instanceBody = `{"backends":["b"],"plan_id":"p"}`

// flaky answers the statuses in order, then 200 with an instance.
func flaky(statuses ...int) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i < len(statuses) {
			if statuses[i] == 429 {
				w.Header().Set("Retry-After", "1")
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(statuses[i])
			w.Write([]byte(`{"trace":"t","errors":[{"code":"oops","message":"try again"}]}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(instanceBody))
	}))
	return srv, &n
}

var fastRetry = client.RetryPolicy{MaxAttempts: 4, MinWait: time.Millisecond, MaxWait: 5 * time.Second, MaxElapsed: 20 * time.Second}

func newTestClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(append([]client.Option{client.WithURL(url), client.WithBearerToken("t"), client.WithCRN(crnA1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRetryTwoFailuresThenSuccess(t *testing.T) {
	srv, n := flaky(503, 502)
	defer srv.Close()
	in, err := newTestClient(t, srv.URL, client.WithRetry(fastRetry)).Instance(context.Background())
	if err != nil || *in.PlanId != "p" || n.Load() != 3 {
		t.Fatalf("%v after %d attempts", err, n.Load())
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	srv, n := flaky(429)
	defer srv.Close()
	start := time.Now()
	_, err := newTestClient(t, srv.URL, client.WithRetry(fastRetry)).Instance(context.Background())
	if err != nil || n.Load() != 2 {
		t.Fatalf("%v after %d attempts", err, n.Load())
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("retried after %v, before Retry-After: 1 allowed", waited)
	}
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	srv, n := flaky(500, 500, 500, 500, 500, 500, 500)
	defer srv.Close()
	_, err := newTestClient(t, srv.URL, client.WithRetry(client.RetryPolicy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: 10 * time.Millisecond, MaxElapsed: time.Second})).Instance(context.Background())
	var ce *client.Error
	if n.Load() != 3 || !errors.As(err, &ce) || ce.StatusCode != 500 || !errors.Is(err, client.ErrServer) || ce.Code() != "oops" {
		t.Fatalf("%d attempts, %v", n.Load(), err)
	}
}

func TestNoRetryOn400And501(t *testing.T) {
	for _, status := range []int{400, 404, 409, 501} {
		srv, n := flaky(status, status)
		_, err := newTestClient(t, srv.URL, client.WithRetry(fastRetry)).Instance(context.Background())
		srv.Close()
		var ce *client.Error
		if n.Load() != 1 || !errors.As(err, &ce) || ce.StatusCode != status {
			t.Errorf("%d: %d attempts, %v", status, n.Load(), err)
		}
	}
	srv, n := flaky(503)
	defer srv.Close()
	if _, err := newTestClient(t, srv.URL, client.WithoutRetry()).Instance(context.Background()); n.Load() != 1 || !errors.Is(err, client.ErrServer) {
		t.Errorf("WithoutRetry: %d attempts, %v", n.Load(), err)
	}
}

func TestRetryOnConnectionErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = newTestClient(t, "http://"+addr, client.WithRetry(client.RetryPolicy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond, MaxElapsed: time.Second})).Instance(context.Background())
	if err == nil || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Fatalf("connection refused: %v", err)
	}
}

func TestRetryResendsTheBody(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		first := len(bodies) == 1
		mu.Unlock()
		if first {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(204)
	}))
	defer srv.Close()
	if err := newTestClient(t, srv.URL, client.WithRetry(fastRetry)).SetInstanceLimit(context.Background(), 77); err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 2 || bodies[0] != bodies[1] || !strings.Contains(bodies[1], `"instance_limit":77`) {
		t.Fatalf("bodies: %q", bodies)
	}
}

func TestContextCancelStopsRetrying(t *testing.T) {
	srv, n := flaky(503, 503, 503, 503)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	slow := client.RetryPolicy{MaxAttempts: 4, MinWait: 10 * time.Second, MaxWait: 10 * time.Second, MaxElapsed: time.Minute}
	start := time.Now()
	_, err := newTestClient(t, srv.URL, client.WithRetry(slow)).Instance(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second || n.Load() > 2 {
		t.Fatalf("%v after %v and %d attempts", err, time.Since(start), n.Load())
	}
}
