package server_test

import (
	"bufio"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/server"
)

type auditLine struct {
	Action    string                   `json:"action"`
	Outcome   string                   `json:"outcome"`
	Severity  string                   `json:"severity"`
	Reason    struct{ ReasonCode int } `json:"reason"`
	Initiator struct {
		ID   string `json:"id"`
		Host struct {
			Address string `json:"address"`
			Agent   string `json:"agent"`
		} `json:"host"`
		Credential struct {
			Type string `json:"type"`
		} `json:"credential"`
	} `json:"initiator"`
	Target struct {
		ID      string `json:"id"`
		TypeURI string `json:"typeURI"`
	} `json:"target"`
	EventTime     string `json:"eventTime"`
	CorrelationID string `json:"correlationId"`
	Message       string `json:"message"`
}

// wrongKey is an API key no principal owns.
const wrongKey = "qrdemo-wrong-key-0123456789abcdefghijklmn"

func TestAuditOneEventPerCallAndNoSecrets(t *testing.T) {
	h := newHarness(t)
	tokens := map[string]string{}
	for _, k := range allKeys {
		tokens[k] = h.token(k)
	}
	admin, reader := tokens[keyAdmin], tokens[keyReader]
	js := map[string]string{"Service-CRN": crnA1, "Content-Type": "application/json"}
	calls := []struct {
		method, path, token string
		hdr                 map[string]string
		body                string
		action, outcome     string
		status              int
		initiator           string
	}{
		{"GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnA1}, "", "quantum-computing.instance.read", "success", 200, "IBMid-demo-admin"},
		{"GET", "/api/v1/instance", "", map[string]string{"Service-CRN": crnA1}, "", "quantum-computing.instance.read", "failure", 401, "unknown"},
		{"GET", "/api/v1/instance", "forged.token.value", map[string]string{"Service-CRN": crnA1}, "", "quantum-computing.instance.read", "failure", 401, "unknown"},
		{"GET", "/api/v1/instances/configuration", reader, map[string]string{"Service-CRN": crnA2}, "", "quantum-computing.instance.configuration.read", "failure", 403, "IBMid-demo-reader"},
		{"PUT", "/api/v1/instances/configuration", admin, js, `{"instance_limit": 600}`, "quantum-computing.instance.configuration.update", "success", 204, "IBMid-demo-admin"},
		{"PUT", "/api/v1/instances/configuration", admin, js, `{"instance_limit": 1}`, "quantum-computing.instance.configuration.update", "failure", 409, "IBMid-demo-admin"},
		{"PUT", "/api/v1/instances/configuration", admin, js, `{"instance_limit": "x"}`, "quantum-computing.instance.configuration.update", "failure", 400, "IBMid-demo-admin"},
		{"PUT", "/api/v1/instances/configuration", admin, js, `{"pad":"` + strings.Repeat("x", 1<<20) + `"}`, "quantum-computing.instance.configuration.update", "failure", 413, "unknown"},
		{"GET", "/api/v1/instances/usage", admin, map[string]string{"Service-CRN": crnAMiss}, "", "quantum-computing.instance-usage.read", "failure", 404, "IBMid-demo-admin"},
		{"GET", "/api/v1/instances/usage", admin, map[string]string{"Service-CRN": "crn:bad"}, "", "quantum-computing.instance-usage.read", "failure", 400, "IBMid-demo-admin"},
		{"GET", "/api/v1/accounts/" + acctDemo, admin, nil, "", "quantum-computing.account-configuration.read", "success", 200, "IBMid-demo-admin"},
		{"GET", "/api/v1/accounts/" + acctOther, admin, nil, "", "quantum-computing.account-configuration.read", "failure", 404, "IBMid-demo-admin"},
		// The API key itself in the Authorization header (rows 12 to 14).
		{"GET", "/api/v1/instance", "", map[string]string{"Service-CRN": crnA1, "Authorization": "apikey " + keyAdmin}, "", "quantum-computing.instance.read", "success", 200, "IBMid-demo-admin"},
		{"PUT", "/api/v1/instances/configuration", "", map[string]string{"Service-CRN": crnA1, "Content-Type": "application/json", "Authorization": "apikey " + keyReader}, `{"instance_limit": 700}`, "quantum-computing.instance.configuration.update", "failure", 403, "IBMid-demo-reader"},
		{"GET", "/api/v1/instances/usage", "", map[string]string{"Service-CRN": crnA1, "Authorization": "apikey " + wrongKey}, "", "quantum-computing.instance-usage.read", "failure", 401, "unknown"},
	}
	var bodies []string
	var traces []string
	for _, c := range calls {
		resp, b := h.do(c.method, c.path, c.token, c.hdr, c.body)
		if resp.StatusCode != c.status {
			t.Fatalf("%s %s: %d, want %d: %s", c.method, c.path, resp.StatusCode, c.status, b)
		}
		bodies = append(bodies, string(b))
		traces = append(traces, resp.Header.Get("X-Correlation-ID"))
	}
	// Calls outside the five operations emit nothing.
	h.do("GET", "/healthz", "", nil, "")
	h.do("GET", "/api/v1/unknown", admin, nil, "")

	var events []auditLine
	sc := bufio.NewScanner(strings.NewReader(h.audit.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev auditLine
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit line is not JSON: %v", err)
		}
		events = append(events, ev)
	}
	if len(events) != len(calls) {
		t.Fatalf("%d audit events for %d calls:\n%s", len(events), len(calls), h.audit.String())
	}
	for i, c := range calls {
		ev := events[i]
		if ev.Action != c.action || ev.Outcome != c.outcome || ev.Reason.ReasonCode != c.status || ev.CorrelationID != traces[i] || ev.Initiator.ID != c.initiator {
			t.Errorf("call %d (%s %s %d): event %+v", i, c.method, c.path, c.status, ev)
		}
		if ev.Initiator.Host.Address != "127.0.0.1" || ev.Initiator.Host.Agent == "" || ev.EventTime == "" || ev.Message == "" || ev.Target.ID == "" || ev.Severity == "" {
			t.Errorf("call %d: incomplete event %+v", i, ev)
		}
	}
	if events[0].Target.ID != crnA1 || events[10].Target.ID != "a/"+acctDemo || events[10].Target.TypeURI != "quantum-computing/account" {
		t.Errorf("targets: %q %q %q", events[0].Target.ID, events[10].Target.ID, events[10].Target.TypeURI)
	}
	for i, want := range map[int]string{0: "token", 1: "none", 12: "apikey", 13: "apikey", 14: "apikey"} {
		if got := events[i].Initiator.Credential.Type; got != want {
			t.Errorf("call %d: credential type %q, want %q", i, got, want)
		}
	}
	if events[1].Severity != "critical" || events[0].Severity != "normal" || events[4].Severity != "warning" {
		t.Errorf("severities: %s %s %s", events[1].Severity, events[0].Severity, events[4].Severity)
	}

	// No token and no API key anywhere a person or a log shipper can read.
	h.srv.FlushAudit()
	stored, err := h.store.AuditEvents(t.Context(), domain.AuditQuery{Limit: 1000})
	if err != nil || len(stored.Events) != len(calls) {
		t.Fatalf("kept audit events: %d, %v", len(stored.Events), err)
	}
	var keptJSON strings.Builder
	for _, r := range stored.Events {
		keptJSON.Write(r)
	}
	everything := h.logs.String() + h.audit.String() + strings.Join(bodies, "") + keptJSON.String()
	for k, tok := range tokens {
		if strings.Contains(everything, k) {
			t.Errorf("API key %s… leaked", k[:12])
		}
		if strings.Contains(everything, tok) || strings.Contains(everything, strings.Split(tok, ".")[2]) {
			t.Errorf("token of %s… leaked", k[:12])
		}
	}
	if strings.Contains(everything, wrongKey) {
		t.Error("a wrong API key was repeated")
	}
	if strings.Contains(everything, "forged.token.value") {
		t.Error("a forged token was repeated")
	}
}

// Audit events outlive a store that fails to keep them for a while (a database restart):
// the batch is tried again, as it was and under its id, until it is kept — once, even when a
// try failed after its commit — with one warning in the log, and no event dropped.
func TestAuditSurvivesStoreFailures(t *testing.T) {
	h := newHarness(t)
	admin := h.token(keyAdmin)
	h.srv.FlushAudit()
	h.store.auditFailBefore.Store(3)
	h.store.auditFailAfter.Store(1)
	var traces []string
	for range 5 {
		resp, _ := h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnA1}, "")
		if resp.StatusCode != 200 {
			t.Fatalf("GET: %d", resp.StatusCode)
		}
		traces = append(traces, resp.Header.Get("X-Correlation-ID"))
	}
	var kept map[string]int
	for deadline := time.Now().Add(10 * time.Second); ; {
		// Three tries fail before the store, one after it kept the batch: done when the
		// fifth, which keeps nothing more, has returned and every event is listed.
		tried := h.store.auditTries.Load() >= 5
		h.srv.FlushAudit() // tries a pending batch at once
		page, err := h.store.AuditEvents(t.Context(), domain.AuditQuery{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		kept = map[string]int{}
		for _, raw := range page.Events {
			var ev server.AuditEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			kept[ev.CorrelationID]++
		}
		all := tried
		for _, tr := range traces {
			all = all && kept[tr] > 0
		}
		if all || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tr := range traces {
		if kept[tr] != 1 {
			t.Errorf("the event of request %s is kept %d times, want once", tr, kept[tr])
		}
	}
	for tr, n := range kept {
		if n != 1 {
			t.Errorf("event %s kept %d times", tr, n)
		}
	}
	if n := h.store.auditTries.Load(); n < 5 {
		t.Errorf("%d appends: the failing ones were not tried again", n)
	}
	logs := h.logs.String()
	if n := strings.Count(logs, "audit events not kept yet"); n != 1 || strings.Contains(logs, `"audit events not kept"`) {
		t.Errorf("logs: %d warnings of a failing store, want 1 and no loss: %s", n, logs)
	}
}

// The caller's address in audit events and logs is the socket's unless the request came
// through a trusted proxy: anyone else's X-Forwarded-For is ignored, not recorded.
func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	addressOf := func(h *harness) string {
		t.Helper()
		tok := h.token(keyAdmin)
		resp, _ := h.do("GET", "/api/v1/instance", tok, map[string]string{"Service-CRN": crnA1, "X-Forwarded-For": "1.2.3.4"}, "")
		if resp.StatusCode != 200 {
			t.Fatalf("GET: %d", resp.StatusCode)
		}
		var ev auditLine
		lines := strings.Split(strings.TrimSpace(h.audit.String()), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ev); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(h.logs.String(), "1.2.3.4") != (ev.Initiator.Host.Address == "1.2.3.4") {
			t.Errorf("the log and the audit event disagree on the address: %s", ev.Initiator.Host.Address)
		}
		return ev.Initiator.Host.Address
	}
	if got := addressOf(newHarness(t)); got != "127.0.0.1" {
		t.Errorf("no trusted proxy: the event records %q, want the socket's 127.0.0.1", got)
	}
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	if got := addressOf(newHarness(t, func(c *server.Config) { c.TrustedProxies = []*net.IPNet{loopback} })); got != "1.2.3.4" {
		t.Errorf("through a trusted proxy: the event records %q, want the forwarded 1.2.3.4", got)
	}
}
