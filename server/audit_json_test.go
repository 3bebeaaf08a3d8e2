package server

import (
	"encoding/json"
	"testing"
)

// AppendJSON writes exactly what encoding/json writes, for ordinary and hostile values.
func TestAuditEventAppendJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "plain", `quote " and \ backslash`, "new\nline\ttab\r\b\f", "ctl \x00\x01\x1f", "<script>&amp;</script>", "ünïcödé ✓ 量子", "bad utf8 \xff\xfe", "line sep \u2028 para \u2029", "curl/8.0 (x86_64) \"agent\""}
	for i, s := range strs {
		ev := &AuditEvent{
			Action: "quantum-computing.instance.read", Outcome: "failure",
			Reason:   AuditReason{ReasonCode: 400 + i, ReasonType: s, ReasonForFailure: s},
			Severity: "warning",
			Initiator: AuditInitiator{ID: s, TypeURI: "service/security/account/user", Name: s,
				Host: AuditHost{Address: "127.0.0.1", Agent: s}, Credential: AuditCredential{Type: "token"}},
			Target:   AuditTarget{ID: s, TypeURI: "quantum-computing/instance"},
			Observer: AuditObserver{Name: "ActivityTracker"}, EventTime: "2026-11-24T12:00:00.000+0000",
			CorrelationID: s, Message: "Qiskit Runtime: " + s, DataEvent: i%2 == 0,
		}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("value %q:\n got %s\nwant %s", s, got, want)
		}
		// Empty optional fields are omitted, as with omitempty.
		ev.Initiator.Name, ev.Reason.ReasonForFailure = "", ""
		want, _ = json.Marshal(ev)
		if got := ev.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("omitted fields, value %q:\n got %s\nwant %s", s, got, want)
		}
	}
}
