package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/oapi-codegen/nullable"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/gen/control"
)

// controlHandlers implements the control API (openapi-control.yaml): usage as if jobs
// ran, usage periods as if time passed, a reset to the seed, and the audit events.
type controlHandlers struct{ s *Server }

var _ control.StrictServerInterface = controlHandlers{}

func instanceState(in *domain.Instance) control.InstanceState {
	out := control.InstanceState{Instance: in.CRN, PlanId: in.PlanID, UsageConsumedSeconds: in.ConsumedSeconds, InstanceLimit: in.InstanceLimitSeconds}
	if limit, ok := in.UsageLimit(); ok {
		out.UsageLimitSeconds = &limit
	}
	if p := in.UsagePeriod; p != nil {
		out.UsagePeriod = nullable.NewNullableWithValue(control.Period{StartTime: p.Start, EndTime: p.End})
	} else {
		out.UsagePeriod = nullable.NewNullNullable[control.Period]()
	}
	return out
}

// RecordUsage adds consumed seconds to an instance.
func (h controlHandlers) RecordUsage(ctx context.Context, req control.RecordUsageRequestObject) (control.RecordUsageResponseObject, error) {
	in, err := h.s.update(ctx, req.Body.Instance, domain.AddUsage(req.Body.Seconds))
	if err != nil {
		return nil, naming(err, "field", "instance")
	}
	return control.RecordUsage200JSONResponse(instanceState(in)), nil
}

// SetUsagePeriod replaces an instance's usage period.
func (h controlHandlers) SetUsagePeriod(ctx context.Context, req control.SetUsagePeriodRequestObject) (control.SetUsagePeriodResponseObject, error) {
	var period *domain.UsagePeriod
	if req.Body.UsagePeriod.IsSpecified() && !req.Body.UsagePeriod.IsNull() {
		p := req.Body.UsagePeriod.MustGet()
		period = &domain.UsagePeriod{Start: p.StartTime.UTC(), End: p.EndTime.UTC()}
	}
	reset := req.Body.ResetConsumed != nil && *req.Body.ResetConsumed
	in, err := h.s.update(ctx, req.Body.Instance, domain.SetUsagePeriod(period, reset))
	if err != nil {
		return nil, naming(err, "field", "instance")
	}
	return control.SetUsagePeriod200JSONResponse(instanceState(in)), nil
}

// AdvanceUsagePeriod starts the next period of the same length and zeroes the usage.
func (h controlHandlers) AdvanceUsagePeriod(ctx context.Context, req control.AdvanceUsagePeriodRequestObject) (control.AdvanceUsagePeriodResponseObject, error) {
	in, err := h.s.update(ctx, req.Body.Instance, domain.AdvanceUsagePeriod())
	if err != nil {
		return nil, naming(err, "field", "instance")
	}
	return control.AdvanceUsagePeriod200JSONResponse(instanceState(in)), nil
}

// ResetState loads the seed again.
func (h controlHandlers) ResetState(ctx context.Context, _ control.ResetStateRequestObject) (control.ResetStateResponseObject, error) {
	if h.s.seed == nil {
		return nil, domain.Errorf(domain.ECONFLICT, "The server was started without --seed: there is nothing to reset to.").WithReason("no_seed")
	}
	if err := h.s.store.Load(ctx, h.s.seed.At(h.s.now())); err != nil {
		return nil, err
	}
	return control.ResetState204Response{}, nil
}

// ListAuditEvents lists one page of the kept audit events, oldest first. The filters go
// to the store as a match function, so it reads only as far as the page needs.
func (h controlHandlers) ListAuditEvents(ctx context.Context, req control.ListAuditEventsRequestObject) (control.ListAuditEventsResponseObject, error) {
	h.s.auditor.Flush()
	p := req.Params
	q := domain.AuditQuery{Limit: 100}
	if p.Limit != nil {
		q.Limit = int(*p.Limit)
	}
	if p.Cursor != nil {
		after, err := strconv.ParseInt(*p.Cursor, 10, 64)
		if err != nil {
			return nil, domain.Errorf(domain.EINVALID, "cursor: not a cursor this server gave.").WithTarget("parameter", "cursor")
		}
		q.After = after
	}
	match := func(want *string, got string) bool { return want == nil || *want == got }
	var owned map[string]bool // the fixture's ids, with ?fixture=
	if p.Fixture != nil {
		f, err := h.s.store.Fixture(ctx, *p.Fixture)
		if err != nil {
			return nil, naming(err, "parameter", "fixture")
		}
		owned = f.Owned()
	}
	if p.Action != nil || p.Outcome != nil || p.Initiator != nil || p.Target != nil || p.CorrelationId != nil || p.Since != nil || owned != nil {
		q.Match = func(line []byte) bool {
			var ev auditFilterFields
			if json.Unmarshal(line, &ev) != nil {
				return false
			}
			if !match(p.Action, ev.Action) || (p.Outcome != nil && string(*p.Outcome) != ev.Outcome) || !match(p.Initiator, ev.Initiator.ID) ||
				!match(p.Target, ev.Target.ID) || !match(p.CorrelationId, ev.CorrelationID) {
				return false
			}
			if owned != nil && !owned[ev.Target.ID] && !owned[ev.Initiator.ID] {
				return false
			}
			if p.Since != nil {
				t, err := time.Parse(auditTimeLayout, ev.EventTime)
				return err == nil && !t.Before(*p.Since)
			}
			return true
		}
	}
	page, err := h.s.store.AuditEvents(ctx, q)
	if err != nil {
		return nil, err
	}
	out := control.AuditEventList{Events: make([]control.AuditEvent, len(page.Events))}
	for i, line := range page.Events {
		if err := json.Unmarshal(line, &out.Events[i]); err != nil {
			return nil, fmt.Errorf("a kept audit event is not JSON: %w", err)
		}
	}
	if page.Next != 0 {
		next := strconv.FormatInt(page.Next, 10)
		out.NextCursor = &next
	}
	out.LastCursor = strconv.FormatInt(page.Last, 10)
	return control.ListAuditEvents200JSONResponse(out), nil
}

// auditFilterFields are the fields of a kept audit event that the listing filters on.
type auditFilterFields struct {
	Action        string `json:"action"`
	Outcome       string `json:"outcome"`
	EventTime     string `json:"eventTime"`
	CorrelationID string `json:"correlationId"`
	Initiator     struct {
		ID string `json:"id"`
	} `json:"initiator"`
	Target struct {
		ID string `json:"id"`
	} `json:"target"`
}
