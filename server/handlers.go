package server

import (
	"context"
	"strconv"

	"github.com/oapi-codegen/nullable"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/gen"
)

// handlers implements the generated strict-server interface: each method translates
// between wire types and domain types and does nothing else. Validation, IAM and audit
// have already run; errors go back to the one place that writes them.
type handlers struct{ s *Server }

var _ gen.StrictServerInterface = handlers{}

// instance is the instance the request names, as authentication read it with the caller.
func (h handlers) instance(ctx context.Context) (*domain.Instance, error) {
	rs := stateFrom(ctx)
	in := rs.read.Instance
	if in == nil || in.CRN != rs.resource.InstanceCRN {
		return nil, naming(domain.InstanceNotFound(rs.resource.InstanceCRN), "header", serviceCRNName)
	}
	if now := h.s.now(); in.PeriodEnded(now) {
		// Its usage period has ended: it is in the one that contains now, written once.
		rolled, err := h.s.store.UpdateInstance(ctx, in.CRN, domain.RollPeriod(now))
		return rolled, naming(err, "header", serviceCRNName)
	}
	return in, nil
}

// update makes a change to an instance at the server's now (domain.At): an instance whose
// usage period has ended is rolled into the current one first.
func (s *Server) update(ctx context.Context, crn string, change domain.Change) (*domain.Instance, error) {
	return s.store.UpdateInstance(ctx, crn, domain.At(s.now(), change))
}

// GetInstance answers get_instance.
func (h handlers) GetInstance(ctx context.Context, _ gen.GetInstanceRequestObject) (gen.GetInstanceResponseObject, error) {
	in, err := h.instance(ctx)
	if err != nil {
		return nil, err
	}
	return gen.GetInstance200JSONResponse{Body: instanceBody(in)}, nil
}

func instanceBody(in *domain.Instance) gen.Instance {
	backends := in.Backends
	plan := in.PlanID
	out := gen.Instance{Backends: &backends, PlanId: &plan, QctrlEnabled: in.QctrlEnabled} //nolint:staticcheck // the deprecated field is part of the API
	if s, ok := in.LimitSecondsString(); ok {
		limit := *in.InstanceLimitSeconds
		out.InstanceLimitSeconds = &s
		out.InstanceLimit = &limit //nolint:staticcheck // the deprecated field is part of the API
	}
	if in.UsageAllocationSeconds != nil {
		s := strconv.FormatInt(*in.UsageAllocationSeconds, 10)
		out.UsageAllocationSeconds = &s
	}
	return out
}

// GetInstanceConfiguration answers get_instance_configuration.
func (h handlers) GetInstanceConfiguration(ctx context.Context, _ gen.GetInstanceConfigurationRequestObject) (gen.GetInstanceConfigurationResponseObject, error) {
	in, err := h.instance(ctx)
	if err != nil {
		return nil, err
	}
	return gen.GetInstanceConfiguration200JSONResponse{Body: gen.InstanceConfiguration{InstanceLimit: in.InstanceLimitSeconds}}, nil
}

// ReplaceInstanceConfiguration answers replace_instance_configuration.
func (h handlers) ReplaceInstanceConfiguration(ctx context.Context, req gen.ReplaceInstanceConfigurationRequestObject) (gen.ReplaceInstanceConfigurationResponseObject, error) {
	limit, err := limitOf(req.Body.InstanceLimit)
	if err != nil {
		return nil, err
	}
	if _, err := h.s.update(ctx, stateFrom(ctx).resource.InstanceCRN, domain.SetLimit(limit)); err != nil {
		return nil, naming(err, "header", serviceCRNName)
	}
	return gen.ReplaceInstanceConfiguration204Response{}, nil
}

// limitOf reads the validated field: null removes the limit; absent cannot pass
// validation, and is refused here too so that no path resets a limit by omission.
func limitOf(v nullable.Nullable[int32]) (*int64, error) {
	if !v.IsSpecified() {
		return nil, domain.Errorf(domain.EINVALID, "Field instance_limit is required: an integer from 1, or null to remove the limit.").
			WithTarget("field", "instance_limit").WithReason("invalid_field")
	}
	if v.IsNull() {
		return nil, nil
	}
	n := int64(v.MustGet())
	return &n, nil
}

// GetUsage answers get_usage.
func (h handlers) GetUsage(ctx context.Context, _ gen.GetUsageRequestObject) (gen.GetUsageResponseObject, error) {
	in, err := h.instance(ctx)
	if err != nil {
		return nil, err
	}
	out := gen.InstanceUsage{InstanceId: in.CRN, PlanId: in.PlanID, UsageConsumedSeconds: in.ConsumedSeconds}
	if p := in.UsagePeriod; p != nil {
		start, end := p.Start, p.End
		out.UsagePeriod = nullable.NewNullableWithValue(gen.UsagePeriod{StartTime: &start, EndTime: &end})
	} else {
		out.UsagePeriod = nullable.NewNullNullable[gen.UsagePeriod]()
	}
	if limit, ok := in.UsageLimit(); ok {
		out.UsageLimitSeconds = &limit
	}
	if in.UsageAllocationSeconds != nil {
		a := float64(*in.UsageAllocationSeconds)
		out.UsageAllocationSeconds = &a
	}
	if reached, ok := in.LimitReached(); ok {
		out.UsageLimitReached = &reached
	}
	return gen.GetUsage200JSONResponse{Body: out}, nil
}

// GetAccount answers get_account.
func (h handlers) GetAccount(ctx context.Context, req gen.GetAccountRequestObject) (gen.GetAccountResponseObject, error) {
	read := stateFrom(ctx).read // read with the caller
	if read.Account == nil || read.Account.ID != req.Id {
		return nil, accountNotFound(req.Id) // the same answer as a denial
	}
	plans := domain.AccountConfiguration(*read.Account, read.AccountInstances, h.s.ttlDefaults)
	out := gen.AccountConfiguration{Plans: make([]gen.AccountPlan, 0, len(plans))}
	for _, p := range plans {
		if req.Params.PlanId != nil && p.PlanID != *req.Params.PlanId {
			continue // plan_id: only that plan's configuration
		}
		out.Plans = append(out.Plans, gen.AccountPlan{
			PlanId:                  p.PlanID,
			Backends:                p.Backends,
			UsageAllocationSeconds:  int32p(p.UsageAllocationSeconds),
			UsageLimitSeconds:       int32p(p.UsageLimitSeconds),
			UnallocatedUsageSeconds: int32p(p.UnallocatedUsageSeconds),
			MaxTtl:                  int32p(p.MaxTTL),
			ActiveTtl:               int32p(p.ActiveTTL),
			InteractiveTtl:          int32p(p.InteractiveTTL),
			StartTime:               p.StartTime,
			EndTime:                 p.EndTime,
		})
	}
	return gen.GetAccount200JSONResponse{Body: out}, nil
}

func int32p(v *int64) *int32 {
	if v == nil {
		return nil
	}
	n := int32(min(max(*v, 0), domain.MaxInstanceLimit))
	return &n
}
