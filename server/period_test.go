package server_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/oapi-codegen/nullable"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/gen/control"
)

// adminKey authenticates with the demo admin's API key: a token would expire as the tests
// move the clock by months.
var adminKey = map[string]string{"Authorization": "apikey " + keyAdmin}

// with is adminKey's header and more.
func with(more map[string]string) map[string]string {
	h := map[string]string{}
	for _, m := range []map[string]string{adminKey, more} {
		for k, v := range m {
			h[k] = v
		}
	}
	return h
}

// usageOf reads an instance's usage through the API: its period and consumed seconds.
func usageOf(t *testing.T, h *harness, crn string) (start, end time.Time, consumed float64) {
	t.Helper()
	resp, b := h.do("GET", "/api/v1/instances/usage", "", with(map[string]string{"Service-CRN": crn}), "")
	var u struct {
		Period *struct {
			Start time.Time `json:"start_time"`
			End   time.Time `json:"end_time"`
		} `json:"usage_period"`
		Consumed float64 `json:"usage_consumed_seconds"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &u) != nil || u.Period == nil {
		t.Fatalf("usage of %s: %d %s", crn, resp.StatusCode, b)
	}
	return u.Period.Start, u.Period.End, u.Consumed
}

// The demo's period is the current month (usage_period: current_month), whenever the server
// starts. When the clock passes its end, the next request finds the instance in the
// period that contains now, with nothing consumed: across December into January, and
// across several months at once; a period that is not a calendar month rolls by its own
// length.
func TestUsagePeriodsMoveWithTime(t *testing.T) {
	h := newHarness(t)
	now := h.clock.Now()
	start, end, consumed := usageOf(t, h, crnA1)
	if month := domain.MonthOf(now); !start.Equal(month.Start) || !end.Equal(month.End) || consumed != 30 {
		t.Fatalf("the demo instance's period: %v to %v, %v consumed; want the current month %v to %v and the seed's 30", start, end, consumed, month.Start, month.End)
	}

	// December, then past its end into January.
	cc := h.control(t)
	dec := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if r, err := cc.SetUsagePeriodWithResponse(t.Context(), control.UsagePeriodUpdate{Instance: crnA1, UsagePeriod: periodOf(dec, dec.AddDate(0, 1, 0))}); err != nil || r.StatusCode() != 200 {
		t.Fatalf("set December: %v %v", err, r.Status())
	}
	h.clock.Set(time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC))
	if _, _, consumed := usageOf(t, h, crnA1); consumed != 30 {
		t.Fatalf("on December 31st: %v consumed, want 30", consumed)
	}
	h.clock.Set(time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC))
	start, end, consumed = usageOf(t, h, crnA1)
	if !start.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || !end.Equal(time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)) || consumed != 0 {
		t.Fatalf("on January 1st: %v to %v, %v consumed; want January with nothing consumed", start, end, consumed)
	}
	recordUsage(t, h, crnA1, 12)
	// Three months on: April, not February.
	h.clock.Set(time.Date(2027, 4, 10, 0, 0, 0, 0, time.UTC))
	start, _, consumed = usageOf(t, h, crnA1)
	if !start.Equal(time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC)) || consumed != 0 {
		t.Fatalf("three months on: from %v, %v consumed; want April with nothing consumed", start, consumed)
	}

	// Ten days from the 3rd, five periods on: by its own length.
	p0 := time.Date(2027, 4, 3, 0, 0, 0, 0, time.UTC)
	if r, err := cc.SetUsagePeriodWithResponse(t.Context(), control.UsagePeriodUpdate{Instance: crnA1, UsagePeriod: periodOf(p0, p0.AddDate(0, 0, 10))}); err != nil || r.StatusCode() != 200 {
		t.Fatalf("set ten days: %v %v", err, r.Status())
	}
	h.clock.Set(p0.AddDate(0, 0, 52))
	start, end, _ = usageOf(t, h, crnA1)
	if !start.Equal(p0.AddDate(0, 0, 50)) || !end.Equal(p0.AddDate(0, 0, 60)) {
		t.Fatalf("five ten-day periods on: %v to %v", start, end)
	}
}

// A PUT that finds the period ended applies the 409 rule against the new period's usage
// (none), and the rollover, found by many requests at once, is written once: no usage
// recorded after it is lost to a second rollover.
func TestUsagePeriodRollsOnceUnderConcurrency(t *testing.T) {
	h := newHarness(t)
	// 30 consumed: a limit of 20 is refused in this period.
	if resp, b := h.do("PUT", "/api/v1/instances/configuration", "", with(map[string]string{"Service-CRN": crnA1, "Content-Type": "application/json"}), `{"instance_limit": 20}`); resp.StatusCode != 409 {
		t.Fatalf("a limit below the consumed seconds: %d %s", resp.StatusCode, b)
	}
	h.clock.Set(domain.MonthOf(h.clock.Now()).End.Add(time.Hour))
	var wg sync.WaitGroup
	const records = 20
	errs := make(chan error, 2*records)
	for i := range 2 * records {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				resp, b := h.do("POST", "/control/v1/usage", testAdminToken, map[string]string{"Content-Type": "application/json"}, fmt.Sprintf(`{"instance":%q,"seconds":1}`, crnA1))
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("usage record: %d %s", resp.StatusCode, b)
				}
				return
			}
			if resp, b := h.do("GET", "/api/v1/instances/usage", "", with(map[string]string{"Service-CRN": crnA1}), ""); resp.StatusCode != 200 {
				errs <- fmt.Errorf("usage: %d %s", resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, _, consumed := usageOf(t, h, crnA1); consumed != records {
		t.Fatalf("after the rollover and %d records of 1 s: %v consumed", records, consumed)
	}
	if resp, b := h.do("PUT", "/api/v1/instances/configuration", "", with(map[string]string{"Service-CRN": crnA1, "Content-Type": "application/json"}), `{"instance_limit": 20}`); resp.StatusCode != 204 {
		t.Fatalf("the same limit in the new period: %d %s", resp.StatusCode, b)
	}
}

// recordUsage adds seconds to an instance through the control API.
func recordUsage(t *testing.T, h *harness, crn string, seconds float64) {
	t.Helper()
	resp, b := h.do("POST", "/control/v1/usage", testAdminToken, map[string]string{"Content-Type": "application/json"}, fmt.Sprintf(`{"instance":%q,"seconds":%v}`, crn, seconds))
	if resp.StatusCode != 200 {
		t.Fatalf("usage record: %d %s", resp.StatusCode, b)
	}
}

func periodOf(start, end time.Time) nullable.Nullable[control.Period] {
	return nullable.NewNullableWithValue(control.Period{StartTime: start, EndTime: end})
}
