package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/oapi-codegen/nullable"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/gen/control"
	"github.com/qrapi/qrapi/server"
)

func (h *harness) control(t *testing.T) *control.ClientWithResponses {
	t.Helper()
	c, err := control.NewClientWithResponses(h.url+"/control", control.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+testAdminToken)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestControlAPI(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	cc := h.control(t)
	admin := h.token(keyAdmin)

	r, err := cc.RecordUsageWithResponse(ctx, control.UsageRecord{Instance: crnA2, Seconds: 50})
	if err != nil || r.StatusCode() != 200 || r.JSON200.UsageConsumedSeconds != 62 {
		t.Fatalf("record usage: %v %d %s", err, r.StatusCode(), r.Body)
	}
	// The API sees it: 62 consumed of a 60 limit.
	resp, b := h.do("GET", "/api/v1/instances/usage", admin, map[string]string{"Service-CRN": crnA2}, "")
	var u map[string]any
	json.Unmarshal(b, &u)
	if resp.StatusCode != 200 || u["usage_consumed_seconds"] != 62.0 || u["usage_limit_reached"] != true {
		t.Fatalf("usage after recording: %s", b)
	}
	// An unknown instance: the 404 names the body's field that named it, not a header.
	resp, b = h.do("POST", "/control/v1/usage", testAdminToken, map[string]string{"Content-Type": "application/json"}, `{"instance":"`+crnAMiss+`","seconds":1}`)
	if ec := checkError(t, resp, b, 404, "instance_not_found"); ec.Errors[0].Target == nil || *ec.Errors[0].Target != (struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}{"field", "instance"}) {
		t.Fatalf("unknown instance: the error names %+v, want the field instance: %s", ec.Errors[0].Target, b)
	}
	resp, b = h.do("POST", "/control/v1/usage", testAdminToken, map[string]string{"Content-Type": "application/json"}, `{"instance":"x","seconds":-1}`)
	checkError(t, resp, b, 400, "invalid_field")

	// Advance A1's period (the demo's is the current month): the next month, usage zeroed.
	ar, _ := cc.AdvanceUsagePeriodWithResponse(ctx, control.InstanceRef{Instance: crnA1})
	if ar.StatusCode() != 200 || ar.JSON200.UsageConsumedSeconds != 0 || !ar.JSON200.UsagePeriod.MustGet().StartTime.Equal(domain.MonthOf(h.clock.Now()).End) {
		t.Fatalf("advance: %d %s", ar.StatusCode(), ar.Body)
	}
	if ar, _ := cc.AdvanceUsagePeriodWithResponse(ctx, control.InstanceRef{Instance: crnA2}); ar.StatusCode() != 409 {
		t.Fatalf("advancing a period-less instance: %d", ar.StatusCode())
	}
	sr, _ := cc.SetUsagePeriodWithResponse(ctx, control.UsagePeriodUpdate{Instance: crnA1, UsagePeriod: nullNullable()})
	if sr.StatusCode() != 200 || !sr.JSON200.UsagePeriod.IsNull() {
		t.Fatalf("set period null: %d %s", sr.StatusCode(), sr.Body)
	}

	// Reset brings the seed back.
	if rr, _ := cc.ResetStateWithResponse(ctx); rr.StatusCode() != 204 {
		t.Fatalf("reset: %d", rr.StatusCode())
	}
	_, b = h.do("GET", "/api/v1/instances/usage", admin, map[string]string{"Service-CRN": crnA2}, "")
	json.Unmarshal(b, &u)
	if u["usage_consumed_seconds"] != 12.0 {
		t.Fatalf("after reset: %s", b)
	}

	// Audit events, filtered.
	h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnB1}, "")
	failure := control.ListAuditEventsParamsOutcome("failure")
	action := "quantum-computing.instance.read"
	lr, _ := cc.ListAuditEventsWithResponse(ctx, &control.ListAuditEventsParams{Action: &action, Outcome: &failure})
	if lr.StatusCode() != 200 || len(lr.JSON200.Events) != 1 || lr.JSON200.Events[0].Target["id"] != crnB1 {
		t.Fatalf("audit events: %d %s", lr.StatusCode(), lr.Body)
	}
	all, _ := cc.ListAuditEventsWithResponse(ctx, nil)
	if len(all.JSON200.Events) != 3 {
		t.Fatalf("all events: %s", all.Body)
	}

	// Without the admin token: 401; a server started without one has no control API.
	resp, b = h.do("POST", "/control/v1/reset", admin, nil, "")
	checkError(t, resp, b, 401, "unauthorized")
	off := newHarness(t, func(c *server.Config) { c.AdminToken = "" })
	resp, b = off.do("POST", "/control/v1/reset", testAdminToken, nil, "")
	checkError(t, resp, b, 404, "not_found")
}

func nullNullable() nullable.Nullable[control.Period] {
	return nullable.NewNullNullable[control.Period]()
}

// Concurrent PUTs and recorded usage on one instance: no update is lost and the 409 rule
// holds for every PUT.
func TestConcurrentLimitsAndUsage(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	cc := h.control(t)
	admin := h.token(keyAdmin)
	const (
		recorders = 8
		records   = 25
		putters   = 8
		puts      = 25
	)
	var wg sync.WaitGroup
	type putResult struct {
		limit, consumedBefore float64
		status                int
	}
	results := make(chan putResult, putters*puts)
	consumed := func() float64 {
		in, err := h.store.Instance(ctx, crnA1)
		if err != nil {
			t.Error(err)
			return 0
		}
		return in.ConsumedSeconds
	}
	for g := range recorders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range records {
				if r, err := cc.RecordUsageWithResponse(ctx, control.UsageRecord{Instance: crnA1, Seconds: 1}); err != nil || r.StatusCode() != 200 {
					t.Errorf("recorder %d: %v", g, err)
					return
				}
			}
		}()
	}
	for g := range putters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range puts {
				limit := 30 + 2*(g*puts+i) // 30 to 428; A1 starts at 30 consumed and ends at 230
				before := consumed()
				resp, b := h.do("PUT", "/api/v1/instances/configuration", admin, map[string]string{"Service-CRN": crnA1, "Content-Type": "application/json"}, fmt.Sprintf(`{"instance_limit": %d}`, limit))
				if resp.StatusCode != 204 && resp.StatusCode != 409 {
					t.Errorf("PUT %d: %d %s", limit, resp.StatusCode, b)
				}
				results <- putResult{float64(limit), before, resp.StatusCode}
			}
		}()
	}
	wg.Wait()
	close(results)
	final, err := h.store.Instance(ctx, crnA1)
	if err != nil {
		t.Fatal(err)
	}
	if want := 30.0 + recorders*records; final.ConsumedSeconds != want {
		t.Fatalf("consumed %v, want %v: recorded usage was lost", final.ConsumedSeconds, want)
	}
	var accepted []float64
	n409 := 0
	for r := range results {
		switch r.status {
		case 204:
			// Checked against the consumed seconds at commit, which were at least those before.
			if r.limit < r.consumedBefore {
				t.Errorf("limit %v accepted with %v already consumed", r.limit, r.consumedBefore)
			}
			accepted = append(accepted, r.limit)
		case 409:
			n409++
			if r.limit >= final.ConsumedSeconds {
				t.Errorf("limit %v refused although only %v were ever consumed", r.limit, final.ConsumedSeconds)
			}
		}
	}
	sort.Float64s(accepted)
	if len(accepted) == 0 || final.InstanceLimitSeconds == nil {
		t.Fatal("no PUT was accepted")
	}
	found := false
	for _, a := range accepted {
		found = found || a == *final.InstanceLimitSeconds
	}
	if !found {
		t.Fatalf("final limit %v is none of the accepted PUTs", *final.InstanceLimitSeconds)
	}
	t.Logf("%d PUTs accepted, %d refused with 409", len(accepted), n409)
}

// The database keeps only the newest audit events it is told to; the sink keeps all.
func TestAuditRetention(t *testing.T) {
	h := newHarness(t, func(c *server.Config) { c.AuditKeep = 5 })
	admin := h.token(keyAdmin)
	for range 12 {
		h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnA1}, "")
		h.srv.FlushAudit() // one batch per call, so pruning runs as it would over time
	}
	lr, _ := h.control(t).ListAuditEventsWithResponse(context.Background(), nil)
	if lr.StatusCode() != 200 || len(lr.JSON200.Events) != 5 {
		t.Fatalf("kept %d events, want the newest 5: %s", len(lr.JSON200.Events), lr.Body)
	}
	if n := strings.Count(h.audit.String(), "\n"); n != 12 {
		t.Fatalf("the sink has %d events, want all 12", n)
	}
}

// The audit listing pages: each full page's next_cursor starts the next one, filters apply
// before the limit, the pages together are the whole filtered list once, and a cursor this
// server did not give is a 400 naming it.
func TestAuditEventsPageWithACursor(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	admin := h.token(keyAdmin)
	for i := range 7 {
		crn := crnA1
		if i%2 == 1 {
			crn = crnB1 // another account's instance: a 403, outcome failure
		}
		h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crn}, "")
		h.srv.FlushAudit() // batches of one and two events, so pages cut across batches
	}
	cc := h.control(t)
	var traces []string
	var cursor *string
	limit := int32(2)
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("the cursor never ends")
		}
		lr, err := cc.ListAuditEventsWithResponse(ctx, &control.ListAuditEventsParams{Limit: &limit, Cursor: cursor})
		if err != nil || lr.StatusCode() != 200 {
			t.Fatalf("page %d: %v %s", pages, err, lr.Body)
		}
		for _, ev := range lr.JSON200.Events {
			traces = append(traces, ev.CorrelationId)
		}
		if lr.JSON200.NextCursor == nil {
			if len(lr.JSON200.Events) == int(limit) {
				t.Fatalf("a full page without next_cursor: %s", lr.Body)
			}
			break
		}
		cursor = lr.JSON200.NextCursor
	}
	all, _ := cc.ListAuditEventsWithResponse(ctx, nil)
	var want []string
	for _, ev := range all.JSON200.Events {
		want = append(want, ev.CorrelationId)
	}
	if len(want) != 7 || !slices.Equal(traces, want) {
		t.Fatalf("paged by 2: %q, want the 7 of one listing %q", traces, want)
	}
	// Filtered: the 3 failures, 2 then 1.
	failure := control.ListAuditEventsParamsOutcome("failure")
	p1, _ := cc.ListAuditEventsWithResponse(ctx, &control.ListAuditEventsParams{Outcome: &failure, Limit: &limit})
	if p1.StatusCode() != 200 || len(p1.JSON200.Events) != 2 || p1.JSON200.NextCursor == nil {
		t.Fatalf("failures, page 1: %s", p1.Body)
	}
	p2, _ := cc.ListAuditEventsWithResponse(ctx, &control.ListAuditEventsParams{Outcome: &failure, Limit: &limit, Cursor: p1.JSON200.NextCursor})
	if p2.StatusCode() != 200 || len(p2.JSON200.Events) != 1 || p2.JSON200.NextCursor != nil || p2.JSON200.Events[0].Outcome != "failure" {
		t.Fatalf("failures, page 2: %s", p2.Body)
	}
	resp, b := h.do("GET", "/control/v1/audit-events?cursor=abc", testAdminToken, nil, "")
	if ec := checkError(t, resp, b, 400, ""); ec.Errors[0].Target == nil || ec.Errors[0].Target.Name != "cursor" {
		t.Fatalf("a bad cursor: %s", b)
	}
}

// last_cursor tails the audit events: a page, filtered or not, gives the last event it
// read past, and that cursor reads exactly the events kept after it.
func TestAuditEventsLastCursorTails(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	admin := h.token(keyAdmin)
	cc := h.control(t)
	first, _ := cc.ListAuditEventsWithResponse(ctx, nil)
	if first.StatusCode() != 200 || first.JSON200.LastCursor != "0" || len(first.JSON200.Events) != 0 {
		t.Fatalf("no events yet: %s", first.Body)
	}
	for range 3 {
		h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnA1}, "")
	}
	h.srv.FlushAudit()
	failure := control.ListAuditEventsParamsOutcome("failure")
	none, _ := cc.ListAuditEventsWithResponse(ctx, &control.ListAuditEventsParams{Outcome: &failure})
	if none.StatusCode() != 200 || len(none.JSON200.Events) != 0 || none.JSON200.LastCursor != "3" {
		t.Fatalf("a filter that matches none still reads past 3 events: %s", none.Body)
	}
	h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnB1}, "") // a 403
	h.srv.FlushAudit()
	tail, _ := cc.ListAuditEventsWithResponse(ctx, &control.ListAuditEventsParams{Cursor: &none.JSON200.LastCursor})
	if tail.StatusCode() != 200 || len(tail.JSON200.Events) != 1 || tail.JSON200.Events[0].Outcome != "failure" || tail.JSON200.LastCursor != "4" {
		t.Fatalf("the tail after 3: %s", tail.Body)
	}
	again, _ := cc.ListAuditEventsWithResponse(ctx, &control.ListAuditEventsParams{Cursor: &tail.JSON200.LastCursor})
	if again.StatusCode() != 200 || len(again.JSON200.Events) != 0 || again.JSON200.LastCursor != "4" {
		t.Fatalf("nothing new after 4: %s", again.Body)
	}
}
