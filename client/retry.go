package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// RetryPolicy says when and how often a failed call is tried again: on 429, on 5xx except
// 501, and on connection errors, with exponential backoff and full jitter, honouring
// Retry-After, bounded in attempts and in total time.
type RetryPolicy struct {
	MaxAttempts int           // attempts in all, the first included; 1 turns retries off
	MinWait     time.Duration // the first backoff ceiling
	MaxWait     time.Duration // no single wait is longer (Retry-After included)
	MaxElapsed  time.Duration // no retry starts after this much time since the first attempt
}

// DefaultRetryPolicy is what New uses unless told otherwise: 4 attempts, waits of up to
// 0.5s, 1s, 2s (capped at 10s), within 30s.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 4, MinWait: 500 * time.Millisecond, MaxWait: 10 * time.Second, MaxElapsed: 30 * time.Second}

// RetryEvent is a retry the client is about to make: what the failed attempt got, and
// how long the client waits before the next one.
type RetryEvent struct {
	Method, URL string
	Attempt     int // the attempt that failed, from 1
	MaxAttempts int
	Status      int   // the failed attempt's status; 0 when it got no answer (Err)
	Err         error // the connection error, if there was no answer
	Wait        time.Duration
	RetryAfter  bool // Wait is the answer's Retry-After (capped at the policy's MaxWait)
}

// retryTransport retries requests under a RetryPolicy.
type retryTransport struct {
	next    http.RoundTripper
	policy  RetryPolicy
	sleep   func(ctx context.Context, d time.Duration) error // replaced in tests
	observe func(RetryEvent)                                 // nil: none
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func retryable(resp *http.Response, err error) bool {
	if err != nil {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	return resp.StatusCode == http.StatusTooManyRequests || (resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented)
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func retryAfter(resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp == nil {
		return 0, false
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// backoff is the wait before the next attempt, and whether Retry-After said it.
func (rt *retryTransport) backoff(attempt int, resp *http.Response) (time.Duration, bool) {
	if d, ok := retryAfter(resp, time.Now()); ok {
		return min(d, rt.policy.MaxWait), true
	}
	ceiling := rt.policy.MinWait << (attempt - 1)
	if ceiling <= 0 || ceiling > rt.policy.MaxWait {
		ceiling = rt.policy.MaxWait
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1)), false // full jitter
}

// RoundTrip sends the request, and again while the answer is retryable and the policy allows.
func (rt *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	ctx := req.Context()
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 {
			r = req.Clone(ctx)
			if req.Body != nil && req.Body != http.NoBody {
				if req.GetBody == nil {
					return nil, errors.New("client: cannot retry a request whose body cannot be read again")
				}
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = body
			}
		}
		resp, err := rt.next.RoundTrip(r)
		if !retryable(resp, err) || attempt >= rt.policy.MaxAttempts {
			if err != nil && attempt > 1 {
				err = fmt.Errorf("after %d attempts: %w", attempt, err)
			}
			return resp, err
		}
		wait, fromHeader := rt.backoff(attempt, resp)
		if time.Since(start)+wait > rt.policy.MaxElapsed {
			if err != nil {
				err = fmt.Errorf("after %d attempts in %s: %w", attempt, time.Since(start).Round(time.Millisecond), err)
			}
			return resp, err
		}
		if rt.observe != nil {
			ev := RetryEvent{Method: req.Method, URL: req.URL.String(), Attempt: attempt, MaxAttempts: rt.policy.MaxAttempts, Err: err, Wait: wait, RetryAfter: fromHeader}
			if resp != nil {
				ev.Status = resp.StatusCode
			}
			rt.observe(ev)
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
		}
		if err := rt.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}
