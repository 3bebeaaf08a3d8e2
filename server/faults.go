package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/gen/control"
	"github.com/qrapi/qrapi/internal/optional"
)

// reasonInjected is the error container's code of an injected answer.
const reasonInjected = "injected_fault"

// injectFault applies the control API's fault rules to an API call. It runs after
// authentication and IAM (a call they refuse is refused, never faulted) and before the
// handler: the first live rule that matches the call and fires on it (the store decides,
// so counts are exact across replicas) delays it, answers its status, or drops the
// connection. The control API itself is never faulted.
func (s *Server) injectFault(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rs := stateOf(c)
		op := rs.op()
		if op == nil || len(op.IAMActions) == 0 {
			return next(c)
		}
		ctx := c.Request().Context()
		now := s.now()
		var rules []domain.FaultRule
		if rs.read != nil {
			rules = rs.read.Faults // read with the caller
		} else {
			var err error
			if rules, err = s.store.LiveFaults(ctx, now); err != nil {
				return err
			}
		}
		if len(rules) == 0 {
			return next(c)
		}
		q := domain.FaultRequest{Operation: op.ID, Instance: c.Request().Header.Get(headerServiceCRN)}
		if rs.principal != nil {
			q.Principal, q.PrincipalFixture = rs.principal.ID, rs.principal.FixtureID
		}
		if rs.read != nil && rs.read.Instance != nil {
			q.InstanceFixture = rs.read.Instance.FixtureID
		}
		for i := range rules {
			r := &rules[i]
			if !r.Matches(q) {
				continue
			}
			fired, err := s.store.TakeFault(ctx, r.ID, now)
			if err != nil {
				return err
			}
			if fired {
				return s.applyFault(c, rs, r, next)
			}
		}
		return next(c)
	}
}

// applyFault does what a rule that fired says: wait (holding only this request), then
// drop the connection, answer the rule's status, or go on to the real answer.
func (s *Server) applyFault(c echo.Context, rs *reqState, r *domain.FaultRule, next echo.HandlerFunc) error {
	rs.fault = r
	if r.DelayMS > 0 {
		t := time.NewTimer(time.Duration(r.DelayMS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.Request().Context().Done():
			rs.dropped = true // the caller left during the delay: there is no one to answer
			return nil
		}
	}
	switch {
	case r.Reset:
		conn, _, err := http.NewResponseController(c.Response()).Hijack()
		if err != nil {
			return fmt.Errorf("fault rule %s: cannot drop the connection: %w", r.ID, err)
		}
		rs.dropped = true
		return conn.Close()
	case r.Status != 0:
		if r.RetryAfterSeconds != nil {
			c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(*r.RetryAfterSeconds))
		}
		return &injectedFault{status: r.Status, err: domain.Errorf(domain.EINTERNAL,
			"This answer (%d %s) was injected by fault rule %s of the reference server's control API.", r.Status, http.StatusText(r.Status), r.ID).WithReason(reasonInjected)}
	}
	return next(c)
}

// injectedFault is an answer a fault rule injected: its status, and the error it shows.
type injectedFault struct {
	status int
	err    *domain.Error
}

func (f *injectedFault) Error() string { return f.err.Error() }
func (f *injectedFault) Unwrap() error { return f.err }

// injectedStatus is the status an injected fault answers, if err is one.
func injectedStatus(err error) (int, bool) {
	var f *injectedFault
	if errors.As(err, &f) {
		return f.status, true
	}
	return 0, false
}

// AddFault keeps a fault rule; an operation the API does not have is a 400 naming it.
func (h controlHandlers) AddFault(ctx context.Context, req control.AddFaultRequestObject) (control.AddFaultResponseObject, error) {
	b := req.Body
	r := &domain.FaultRule{ID: uuid.NewString(), CreatedAt: domain.KeptTime(h.s.now()),
		Operation: optional.Value(b.Operation), Instance: optional.Value(b.Instance), Principal: optional.Value(b.Principal), Fixture: optional.Value(b.Fixture),
		Status: optional.Value(b.Status), RetryAfterSeconds: b.RetryAfterSeconds, DelayMS: optional.Value(b.DelayMs), Reset: optional.Value(b.Reset),
		Count: optional.Value(b.Count), Probability: b.Probability, Seed: b.Seed}
	if b.ExpiresAt != nil {
		t := domain.KeptTime(*b.ExpiresAt)
		r.ExpiresAt = &t
	}
	if r.Operation != "" {
		if op := h.s.doc.Operation(r.Operation); op == nil || len(op.IAMActions) == 0 {
			var ids []string
			for _, op := range h.s.doc.Operations {
				ids = append(ids, op.ID)
			}
			return nil, domain.Errorf(domain.EINVALID, "operation: the API has no operation %q; it has %s.", r.Operation, strings.Join(ids, ", ")).
				WithTarget("field", "operation").WithReason("invalid_field")
		}
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := h.s.store.AddFault(ctx, r); err != nil {
		return nil, err
	}
	h.s.log.InfoContext(ctx, "fault rule added", slog.String("rule", r.ID), slog.String("operation", r.Operation), slog.Int("status", r.Status),
		slog.Int("delay_ms", r.DelayMS), slog.Bool("reset", r.Reset), slog.Int("count", r.Count))
	return control.AddFault201JSONResponse(faultOut(r, h.s.now())), nil
}

// ListFaults lists every rule with its counts.
func (h controlHandlers) ListFaults(ctx context.Context, _ control.ListFaultsRequestObject) (control.ListFaultsResponseObject, error) {
	rules, err := h.s.store.Faults(ctx)
	if err != nil {
		return nil, err
	}
	now := h.s.now()
	out := control.FaultRuleList{Faults: make([]control.FaultRule, len(rules))}
	for i := range rules {
		out.Faults[i] = faultOut(&rules[i], now)
	}
	return control.ListFaults200JSONResponse(out), nil
}

// DeleteFault removes one rule.
func (h controlHandlers) DeleteFault(ctx context.Context, req control.DeleteFaultRequestObject) (control.DeleteFaultResponseObject, error) {
	if err := h.s.store.DeleteFault(ctx, req.Id); err != nil {
		return nil, naming(err, "parameter", "id")
	}
	h.s.log.InfoContext(ctx, "fault rule removed", slog.String("rule", req.Id))
	return control.DeleteFault204Response{}, nil
}

// ClearFaults removes every rule.
func (h controlHandlers) ClearFaults(ctx context.Context, _ control.ClearFaultsRequestObject) (control.ClearFaultsResponseObject, error) {
	if err := h.s.store.ClearFaults(ctx); err != nil {
		return nil, err
	}
	h.s.log.InfoContext(ctx, "fault rules cleared")
	return control.ClearFaults204Response{}, nil
}

func faultOut(r *domain.FaultRule, now time.Time) control.FaultRule {
	out := control.FaultRule{Id: r.ID, CreatedAt: r.CreatedAt, Seen: r.Seen, Hits: r.Hits, Live: r.Live(now),
		RetryAfterSeconds: r.RetryAfterSeconds, Probability: r.Probability, Seed: r.Seed, ExpiresAt: r.ExpiresAt}
	out.Operation, out.Instance, out.Principal = optional.NonZero(r.Operation), optional.NonZero(r.Instance), optional.NonZero(r.Principal)
	out.Fixture = optional.NonZero(r.Fixture)
	out.Status, out.DelayMs, out.Count = optional.NonZero(r.Status), optional.NonZero(r.DelayMS), optional.NonZero(r.Count)
	out.Reset = optional.NonZero(r.Reset)
	return out
}
