package server_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qrapi/qrapi/server"
)

// Failed API keys are limited per caller address, at /identity/token and in the
// Authorization header: past the burst every attempt from that address, a right key
// included, is a 429 with Retry-After (in IAM's shape at /identity/, in the error container
// on the API) until the bucket refills; other addresses are not touched; each failure counts
// once; the limiting is logged, the keys never.
func TestFailedAPIKeysAreLimitedPerAddress(t *testing.T) {
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	h := newHarness(t, func(c *server.Config) {
		c.KeyFailures = &server.KeyFailureLimit{Burst: 3, Every: time.Minute}
		c.TrustedProxies = []*net.IPNet{loopback} // so that X-Forwarded-For names the caller
	})
	const wrongKey = "qrdemo-guessed-key-0123456789abcdefghijkl"
	tokenFrom := func(addr, key string) (*http.Response, iamErrorBody) {
		t.Helper()
		resp, b := h.do("POST", "/identity/token", "", map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": addr,
		}, "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey="+key)
		var e iamErrorBody
		if resp.StatusCode != 200 {
			if err := json.Unmarshal(b, &e); err != nil || e.ErrorCode == "" || e.Context.RequestID != resp.Header.Get("X-Correlation-ID") {
				t.Fatalf("%d not in IAM's shape: %s", resp.StatusCode, b)
			}
		}
		return resp, e
	}
	apiFrom := func(addr, key string) (*http.Response, []byte) {
		t.Helper()
		return h.do("GET", "/api/v1/instance", "", map[string]string{
			"Service-CRN": crnA1, "Authorization": "apikey " + key, "X-Forwarded-For": addr,
		}, "")
	}

	for i := range 3 {
		if resp, e := tokenFrom("10.0.0.1", wrongKey); resp.StatusCode != 400 || e.ErrorCode != "BXNIM0415E" {
			t.Fatalf("wrong key %d: %d %s", i+1, resp.StatusCode, e.ErrorCode)
		}
	}
	resp, e := tokenFrom("10.0.0.1", keyAdmin)
	if resp.StatusCode != 429 || e.ErrorCode != "too_many_failed_api_keys" || resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("right key after the burst: %d %q Retry-After %q, want 429 too_many_failed_api_keys 60", resp.StatusCode, e.ErrorCode, resp.Header.Get("Retry-After"))
	}
	// The same address on the API, with the key in the header: the error container.
	resp, b := apiFrom("10.0.0.1", keyAdmin)
	checkError(t, resp, b, 429, "too_many_failed_api_keys")
	if resp.Header.Get("Retry-After") != "60" {
		t.Errorf("API 429: Retry-After %q, want 60", resp.Header.Get("Retry-After"))
	}
	// Another address is not limited.
	if resp, _ := tokenFrom("10.0.0.2", keyAdmin); resp.StatusCode != 200 {
		t.Fatalf("another address: %d", resp.StatusCode)
	}
	// A minute later, one attempt more: a right key passes, the next wrong one is the last.
	h.clock.Add(time.Minute)
	if resp, _ := tokenFrom("10.0.0.1", keyAdmin); resp.StatusCode != 200 {
		t.Fatalf("a minute later, right key: %d", resp.StatusCode)
	}
	if resp, _ := tokenFrom("10.0.0.1", wrongKey); resp.StatusCode != 400 {
		t.Fatalf("a minute later, wrong key: %d", resp.StatusCode)
	}
	if resp, _ := tokenFrom("10.0.0.1", keyAdmin); resp.StatusCode != 429 {
		t.Fatalf("after that failure: %d, want 429", resp.StatusCode)
	}

	// In the header, each wrong key counts once, though both of the API's schemes read it.
	for range 3 {
		resp, b := apiFrom("10.0.0.3", wrongKey)
		checkError(t, resp, b, 401, "unauthorized")
	}
	resp, b = apiFrom("10.0.0.3", keyAdmin)
	checkError(t, resp, b, 429, "too_many_failed_api_keys")

	h.srv.FlushAudit()
	if !strings.Contains(h.logs.String(), "API key attempts limited") || !strings.Contains(h.logs.String(), "10.0.0.3") {
		t.Error("the limiting is not logged with the address")
	}
	var refused auditLine
	lines := strings.Split(strings.TrimSpace(h.audit.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &refused); err != nil || refused.Outcome != "failure" || refused.Reason.ReasonCode != 429 {
		t.Errorf("the refused call's audit event: %+v %v", refused, err)
	}
	if everything := h.logs.String() + h.audit.String(); strings.Contains(everything, wrongKey) || strings.Contains(everything, keyAdmin) {
		t.Error("an API key reached the log or the audit trail")
	}
}

// With the limit off (burst 0), failures are never limited.
func TestFailedAPIKeyLimitOff(t *testing.T) {
	h := newHarness(t, func(c *server.Config) { c.KeyFailures = &server.KeyFailureLimit{} })
	for i := range 200 {
		resp, b := h.do("GET", "/api/v1/instance", "", map[string]string{"Service-CRN": crnA1, "Authorization": "apikey nobodys-key"}, "")
		if resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %d %s", i+1, resp.StatusCode, b)
		}
	}
}

// iamErrorBody is IBM Cloud IAM's error shape.
type iamErrorBody struct {
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
	Context      struct {
		RequestID string `json:"requestId"`
	} `json:"context"`
}
