package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrapi/qrapi/gen/control"
)

// addFault adds a rule through the control API and returns it.
func (h *harness) addFault(t *testing.T, in control.FaultRuleInput) control.FaultRule {
	t.Helper()
	r, err := h.control(t).AddFaultWithResponse(context.Background(), in)
	if err != nil || r.StatusCode() != 201 {
		t.Fatalf("add fault: %v %d %s", err, r.StatusCode(), r.Body)
	}
	return *r.JSON201
}

func (h *harness) faults(t *testing.T) map[string]control.FaultRule {
	t.Helper()
	r, err := h.control(t).ListFaultsWithResponse(context.Background())
	if err != nil || r.StatusCode() != 200 {
		t.Fatalf("list faults: %v %s", err, r.Body)
	}
	out := map[string]control.FaultRule{}
	for _, f := range r.JSON200.Faults {
		out[f.Id] = f
	}
	return out
}

// A count rule answers its status, Retry-After and the error container (code
// injected_fault, the trace) to exactly count matching calls, then expires; the listing
// shows its counts; the injected answer is audited as a failure that names the rule,
// counted in the metrics as injected and logged with the rule.
func TestFaultCountAnswersThenExpires(t *testing.T) {
	h := newHarness(t)
	admin := h.token(keyAdmin)
	rule := h.addFault(t, control.FaultRuleInput{Operation: new("get_instance"), Status: new(503), RetryAfterSeconds: new(2), Count: new(2)})
	if rule.Id == "" || !rule.Live || rule.Hits != 0 || *rule.Status != 503 || *rule.Count != 2 {
		t.Fatalf("the new rule: %+v", rule)
	}
	get := func() (*http.Response, []byte) {
		return h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnA1}, "")
	}
	for i := range 2 {
		resp, b := get()
		ec := checkError(t, resp, b, 503, "injected_fault")
		if resp.Header.Get("Retry-After") != "2" || !strings.Contains(ec.Errors[0].Message, rule.Id) || !strings.Contains(ec.Errors[0].Message, "injected") {
			t.Fatalf("call %d: Retry-After %q: %s", i+1, resp.Header.Get("Retry-After"), b)
		}
	}
	if resp, b := get(); resp.StatusCode != 200 {
		t.Fatalf("the third call, after the count: %d %s", resp.StatusCode, b)
	}
	// Another operation is not matched.
	if resp, _ := h.do("GET", "/api/v1/instances/usage", admin, map[string]string{"Service-CRN": crnA1}, ""); resp.StatusCode != 200 {
		t.Fatalf("get_usage under a get_instance rule: %d", resp.StatusCode)
	}
	got := h.faults(t)[rule.Id]
	if got.Hits != 2 || got.Seen != 2 || got.Live {
		t.Fatalf("listed after the count: hits %d seen %d live %v", got.Hits, got.Seen, got.Live)
	}

	h.srv.FlushAudit()
	var failures int
	for _, line := range strings.Split(strings.TrimSpace(h.audit.String()), "\n") {
		var ev struct {
			Outcome string `json:"outcome"`
			Reason  struct {
				ReasonCode       int    `json:"reasonCode"`
				ReasonForFailure string `json:"reasonForFailure"`
			} `json:"reason"`
		}
		json.Unmarshal([]byte(line), &ev)
		if ev.Outcome == "failure" && ev.Reason.ReasonCode == 503 && strings.Contains(ev.Reason.ReasonForFailure, "injected_fault") && strings.Contains(ev.Reason.ReasonForFailure, rule.Id) {
			failures++
		}
	}
	if failures != 2 {
		t.Errorf("%d audit events name the injection, want 2:\n%s", failures, h.audit.String())
	}
	_, metrics := h.do("GET", "/metrics", "", nil, "")
	if !strings.Contains(string(metrics), `qrserver_requests_total{injected="true",operation="get_instance",status="503"} 2`) {
		t.Errorf("metrics do not count the injected answers:\n%s", metrics)
	}
	if n := strings.Count(h.logs.String(), `"injected_fault":"`+rule.Id+`"`); n != 2 {
		t.Errorf("%d log lines name the rule, want 2", n)
	}
}

// Rules match by operation, instance and principal; a call that authentication or IAM
// refuses (401, 403) is refused and never faulted, nor counted.
func TestFaultMatchingAndIAMFirst(t *testing.T) {
	h := newHarness(t)
	admin, reader := h.token(keyAdmin), h.token(keyReader)
	byInstance := h.addFault(t, control.FaultRuleInput{Instance: new(crnA2), Status: new(500)})
	byPrincipal := h.addFault(t, control.FaultRuleInput{Principal: new("IBMid-demo-reader"), Status: new(502)})
	for _, c := range []struct {
		tok, crn string
		want     int
	}{
		{admin, crnA1, 200},  // neither
		{admin, crnA2, 500},  // the instance
		{reader, crnA1, 502}, // the principal
		{"", crnA1, 401},     // no token: refused, not faulted
		{admin, crnB1, 403},  // another account's instance: refused, not faulted
		{"", crnA2, 401},
	} {
		resp, b := h.do("GET", "/api/v1/instance", c.tok, map[string]string{"Service-CRN": c.crn}, "")
		if resp.StatusCode != c.want {
			t.Fatalf("%s as %.12s…: %d, want %d: %s", c.crn, c.tok, resp.StatusCode, c.want, b)
		}
	}
	got := h.faults(t)
	if got[byInstance.Id].Seen != 1 || got[byPrincipal.Id].Seen != 1 {
		t.Fatalf("counts: by instance %+v, by principal %+v", got[byInstance.Id], got[byPrincipal.Id])
	}
	// The control API is never faulted.
	all := h.addFault(t, control.FaultRuleInput{Status: new(500)})
	if r, err := h.control(t).ListFaultsWithResponse(context.Background()); err != nil || r.StatusCode() != 200 {
		t.Fatalf("the control API under a rule for everything: %v %d", err, r.StatusCode())
	}
	// Delete one; an unknown id is a 404; clear; a reset removes them too.
	cc := h.control(t)
	if r, _ := cc.DeleteFaultWithResponse(context.Background(), all.Id); r.StatusCode() != 204 {
		t.Fatalf("delete: %d", r.StatusCode())
	}
	if r, _ := cc.DeleteFaultWithResponse(context.Background(), all.Id); r.StatusCode() != 404 {
		t.Fatalf("delete again: %d %s", r.StatusCode(), r.Body)
	}
	if r, _ := cc.ClearFaultsWithResponse(context.Background()); r.StatusCode() != 204 || len(h.faults(t)) != 0 {
		t.Fatalf("clear: %d, %d left", r.StatusCode(), len(h.faults(t)))
	}
	h.addFault(t, control.FaultRuleInput{Status: new(500)})
	if r, _ := cc.ResetStateWithResponse(context.Background()); r.StatusCode() != 204 || len(h.faults(t)) != 0 {
		t.Fatalf("reset: %d, %d rules left", r.StatusCode(), len(h.faults(t)))
	}
	if resp, _ := h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnA2}, ""); resp.StatusCode != 200 {
		t.Fatalf("after the reset: %d", resp.StatusCode)
	}
}

// A seeded probability gives the same sequence twice; it fires on some calls and not others.
func TestFaultSeededProbabilityRepeats(t *testing.T) {
	h := newHarness(t)
	admin := h.token(keyAdmin)
	run := func() string {
		rule := h.addFault(t, control.FaultRuleInput{Probability: new(0.5), Seed: new(int64(20261124)), Status: new(503)})
		var seq strings.Builder
		for range 40 {
			resp, _ := h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnA1}, "")
			seq.WriteString(map[int]string{200: ".", 503: "x"}[resp.StatusCode])
		}
		if r, _ := h.control(t).DeleteFaultWithResponse(context.Background(), rule.Id); r.StatusCode() != 204 {
			t.Fatal("delete")
		}
		return seq.String()
	}
	a, b := run(), run()
	if a != b || len(a) != 40 || !strings.Contains(a, "x") || !strings.Contains(a, ".") {
		t.Fatalf("two runs of one seed: %s and %s", a, b)
	}
}

// Every bad rule is a 400 that names its field.
func TestBadFaultRules(t *testing.T) {
	h := newHarness(t)
	for body, field := range map[string]string{
		`{}`: "status",
		`{"operation": "get_instances", "status": 500}`: "operation",
		`{"operation": "list_faults", "status": 500}`:   "operation",
		`{"status": 399}`:                      "status",
		`{"status": 600}`:                      "status",
		`{"delay_ms": 60001}`:                  "delay_ms",
		`{"delay_ms": -1}`:                     "delay_ms",
		`{"status": 500, "probability": 1.5}`:  "probability",
		`{"status": 500, "probability": -0.1}`: "probability",
		`{"retry_after_seconds": 5}`:           "retry_after_seconds",
		`{"status": 500, "reset": true}`:       "reset",
		`{"status": 500, "seed": 3}`:           "seed",
		`{"status": 500, "count": 0}`:          "count",
		`{"stauts": 500}`:                      "stauts",
	} {
		resp, b := h.do("POST", "/control/v1/faults", testAdminToken, map[string]string{"Content-Type": "application/json"}, body)
		ec := checkError(t, resp, b, 400, "")
		if ec.Errors[0].Target == nil || ec.Errors[0].Target.Name != field {
			t.Errorf("%s: want a 400 naming %s: %s", body, field, b)
		}
	}
	if n := len(h.faults(t)); n != 0 {
		t.Fatalf("%d bad rules were kept", n)
	}
}

// A delay holds only its own call: calls sent while it waits are answered before it; a
// reset drops the connection with no answer.
func TestFaultDelayAndReset(t *testing.T) {
	h := newHarness(t)
	admin := h.token(keyAdmin)
	h.addFault(t, control.FaultRuleInput{Operation: new("get_usage"), DelayMs: new(1500), Count: new(1)})
	var mu sync.Mutex
	var order []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, _ := h.do("GET", "/api/v1/instances/usage", admin, map[string]string{"Service-CRN": crnA1}, "")
		mu.Lock()
		order = append(order, "delayed:"+http.StatusText(resp.StatusCode))
		mu.Unlock()
	}()
	// Wait until the delayed call was seen by its rule, then call around it.
	for deadline := time.Now().Add(5 * time.Second); ; {
		var seen int64
		for _, f := range h.faults(t) {
			seen = f.Seen
		}
		if seen == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the delayed call never reached its rule")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for range 5 {
		resp, _ := h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnA1}, "")
		mu.Lock()
		order = append(order, "other:"+http.StatusText(resp.StatusCode))
		mu.Unlock()
	}
	<-done
	if strings.Join(order, " ") != "other:OK other:OK other:OK other:OK other:OK delayed:OK" {
		t.Fatalf("order of answers: %v", order)
	}

	h.addFault(t, control.FaultRuleInput{Reset: new(true), Count: new(1)})
	req, _ := http.NewRequest("GET", h.url+"/api/v1/instance", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Service-CRN", crnA1)
	// A new connection: Go's transport resends a GET itself when a reused one drops.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("a reset answered %d %s", resp.StatusCode, b)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a reset timed out instead of dropping: %v", err)
	}
	for _, f := range h.faults(t) {
		if f.Reset != nil && f.Hits != 1 {
			t.Errorf("the reset rule hit %d calls, want 1", f.Hits)
		}
	}
	// The caller sees the connection close before the server's steps after the fault have
	// run (the audit among them): wait for the event, bounded.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(h.audit.String(), `"reasonCode":0,"reasonType":"Connection dropped"`); {
		if time.Now().After(deadline) {
			t.Fatalf("the dropped call's audit event: %s", h.audit.String())
		}
		time.Sleep(10 * time.Millisecond)
		h.srv.FlushAudit()
	}

	// A caller that gives up during a delay: no answer, audited as dropped, not a failure
	// of the server's.
	h.addFault(t, control.FaultRuleInput{Operation: new("get_account"), DelayMs: new(2000), Count: new(1)})
	short := &http.Client{Timeout: 200 * time.Millisecond}
	req, _ = http.NewRequest("GET", h.url+"/api/v1/accounts/"+acctDemo, nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	if resp, err := short.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a 2 s delay answered a 200 ms client: %d", resp.StatusCode)
	}
	for deadline := time.Now().Add(5 * time.Second); strings.Count(h.audit.String(), `"reasonType":"Connection dropped"`) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned call was not audited as dropped: %s", h.audit.String())
		}
		time.Sleep(20 * time.Millisecond)
		h.srv.FlushAudit()
	}
	if strings.Contains(h.logs.String(), "request failed") {
		t.Errorf("an abandoned call was logged as the server's failure: %s", h.logs.String())
	}
}
