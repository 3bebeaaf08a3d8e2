package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"regexp"
	"sync"
	"time"

	"github.com/qrapi/qrapi/client"
)

// debugTransport prints each request and answer, with credentials redacted.
type debugTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	w    io.Writer
}

var (
	redactAuth   = regexp.MustCompile(`(?mi)^(Authorization: \S+) .*$`)
	redactAPIKey = regexp.MustCompile(`(apikey=)[^&\s]*`)
	redactTokens = regexp.MustCompile(`("(?:access_token|refresh_token)"\s*:\s*")[^"]*`)
)

func redact(b []byte) []byte {
	b = redactAuth.ReplaceAll(b, []byte("$1 [REDACTED]"))
	b = redactAPIKey.ReplaceAll(b, []byte("${1}[REDACTED]"))
	return redactTokens.ReplaceAll(b, []byte("${1}[REDACTED]"))
}

// debugRetry prints a retry the client is about to make: the attempt, what it got, the wait.
func (a *app) debugRetry(ev client.RetryEvent) {
	got := fmt.Sprintf("%d %s", ev.Status, http.StatusText(ev.Status))
	if ev.Status == 0 {
		got = "no answer: " + ev.Err.Error()
	}
	why := "backoff"
	if ev.RetryAfter {
		why = "Retry-After"
	}
	fmt.Fprintf(a.stderr, "~ attempt %d of %d: %s; retrying in %s (%s)\n", ev.Attempt, ev.MaxAttempts, got, ev.Wait.Round(time.Millisecond), why)
}

func (d *debugTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	dump, _ := httputil.DumpRequestOut(req, true)
	d.mu.Lock()
	fmt.Fprintf(d.w, "> %s\n", bytes.ReplaceAll(bytes.TrimSpace(redact(dump)), []byte("\n"), []byte("\n> ")))
	d.mu.Unlock()
	resp, err := d.next.RoundTrip(req)
	if err != nil {
		d.mu.Lock()
		fmt.Fprintf(d.w, "! %v\n", err)
		d.mu.Unlock()
		return nil, err
	}
	dump, _ = httputil.DumpResponse(resp, true)
	d.mu.Lock()
	fmt.Fprintf(d.w, "< %s\n", bytes.ReplaceAll(bytes.TrimSpace(redact(dump)), []byte("\n"), []byte("\n< ")))
	d.mu.Unlock()
	return resp, nil
}
