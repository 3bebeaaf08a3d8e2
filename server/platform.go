package server

import (
	"context"
	"encoding/base64"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/gen/platform"
	"github.com/qrapi/qrapi/internal/optional"
)

// platformHandlers answers the IBM Cloud lookups of openapi-platform.yaml (Global Search,
// Global Catalog, Resource Controller) from the server's state: a caller sees the
// instances its policies reach, through any action, and no others.
type platformHandlers struct{ s *Server }

var _ platform.StrictServerInterface = platformHandlers{}

// visible reads the instances the caller's policies reach: those of the accounts it holds
// a role on, and the instances it holds one on.
func (h platformHandlers) visible(ctx context.Context) ([]domain.CatalogInstance, error) {
	var accounts, crns []string
	for _, p := range stateFrom(ctx).policies {
		if p.InstanceCRN != "" {
			crns = append(crns, p.InstanceCRN)
		} else {
			accounts = append(accounts, p.AccountID)
		}
	}
	return h.s.store.Instances(ctx, accounts, crns)
}

// searchFields are what a search item may carry, by field name, for one instance.
func searchFields(in *domain.CatalogInstance) map[string]any {
	c, _ := domain.ParseCRN(in.CRN)
	tags := in.Tags
	if tags == nil {
		tags = []string{}
	}
	f := map[string]any{
		"crn": in.CRN, "name": in.Name, "region": c.Region, "tags": tags, "account_id": in.AccountID,
		"service_name": "quantum-computing", "type": "resource-instance", "family": "resource_controller",
		"resource_group_id": "", "service_plan_unique_id": in.PlanCatalogID, "doc": map[string]any{},
	}
	if len(in.Backends) > 0 {
		// The backend allocation, as the service's own extension: Qiskit keeps the items that have one.
		alloc := map[string]any{"backends": in.Backends}
		if in.UsageAllocationSeconds != nil {
			alloc["usage_allocation_seconds"] = *in.UsageAllocationSeconds
		}
		f["doc"] = map[string]any{"extensions": map[string]any{"quantum_computing": alloc}}
	}
	return f
}

// defaultSearchFields are what an item carries when a search names no fields.
var defaultSearchFields = []string{"account_id", "name", "type", "family", "crn"}

// searchTerm is one field:value of a query; value may hold * wildcards.
type searchTerm struct {
	field string
	value *regexp.Regexp
}

// searchable are the fields a query may name.
var searchable = []string{"service_name", "crn", "name", "region", "tags", "resource_group_id", "type"}

// parseQuery reads field:value terms joined by AND (an empty query matches everything).
func parseQuery(q string) ([]searchTerm, error) {
	var terms []searchTerm
	for part := range strings.SplitSeq(q, " AND ") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		field, value, ok := strings.Cut(part, ":")
		field, value = strings.TrimSpace(field), strings.TrimSpace(value)
		quoted := len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"'
		if !ok || !slices.Contains(searchable, field) || (!quoted && strings.ContainsAny(value, " ()")) {
			return nil, domain.Errorf(domain.EINVALID, "query: %q is not understood: give field:value terms joined by AND, on %s.", part, strings.Join(searchable, ", ")).
				WithTarget("field", "query").WithReason("bad_query")
		}
		if quoted {
			value = value[1 : len(value)-1]
		}
		pattern := "^" + strings.ReplaceAll(regexp.QuoteMeta(value), `\*`, ".*") + "$"
		terms = append(terms, searchTerm{field: field, value: regexp.MustCompile(pattern)})
	}
	return terms, nil
}

// matches reports whether an instance's fields match every term.
func matches(f map[string]any, terms []searchTerm) bool {
	for _, t := range terms {
		switch v := f[t.field].(type) {
		case string:
			if !t.value.MatchString(v) {
				return false
			}
		case []string:
			if !slices.ContainsFunc(v, t.value.MatchString) {
				return false
			}
		}
	}
	return true
}

// cursor is the opaque token of a page that ends at a CRN: the next page starts after it.
func cursor(crn string) string { return base64.RawURLEncoding.EncodeToString([]byte(crn)) }

// after is the CRN a cursor names; a token this server did not give is a 400 naming where
// it was given.
func after(token, where string) (string, error) {
	if token == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", domain.Errorf(domain.EINVALID, "%s: not a cursor this server gave.", where).WithTarget("field", where).WithReason("bad_cursor")
	}
	return string(b), nil
}

// page is the items after the cursor's CRN (crnOf names an item's; items are in CRN
// order), at most limit, and the cursor of the next page ("" when none remain).
func page[T any](all []T, crnOf func(T) string, from string, limit int) ([]T, string) {
	i, _ := slices.BinarySearchFunc(all, from, func(it T, crn string) int { return strings.Compare(crnOf(it), crn) })
	if i < len(all) && crnOf(all[i]) == from {
		i++
	}
	rest := all[i:]
	if len(rest) <= limit {
		return rest, ""
	}
	return rest[:limit], cursor(crnOf(rest[limit-1]))
}

// crnOfFields and crnOfInstance name an item's CRN for page.
func crnOfFields(f map[string]any) string            { return f["crn"].(string) }
func crnOfInstance(in domain.CatalogInstance) string { return in.CRN }

// Search answers Global Search: the caller's instances that match the query, a page at a time.
func (h platformHandlers) Search(ctx context.Context, req platform.SearchRequestObject) (platform.SearchResponseObject, error) {
	var body platform.SearchBody
	if req.Body != nil {
		body = *req.Body
	}
	terms, err := parseQuery(optional.Value(body.Query))
	if err != nil {
		return nil, err
	}
	from, err := after(optional.Value(body.SearchCursor), "search_cursor")
	if err != nil {
		return nil, err
	}
	limit := 10
	if req.Params.Limit != nil {
		limit = int(*req.Params.Limit)
	}
	all, err := h.visible(ctx)
	if err != nil {
		return nil, err
	}
	var hits []map[string]any // the fields of each instance that matches
	for i := range all {
		if req.Params.AccountId != nil && all[i].AccountID != *req.Params.AccountId {
			continue
		}
		if f := searchFields(&all[i]); matches(f, terms) {
			hits = append(hits, f)
		}
	}
	fields := defaultSearchFields
	if body.Fields != nil && len(*body.Fields) > 0 {
		fields = *body.Fields
	}
	items, next := page(hits, crnOfFields, from, limit)
	out := platform.ScanResult{Limit: int32(limit), Items: make([]platform.ResultItem, len(items))}
	if next != "" {
		out.SearchCursor = &next
	}
	for i, f := range items {
		item := platform.ResultItem{Crn: crnOfFields(f), AdditionalProperties: map[string]any{}}
		for _, name := range fields {
			if v, ok := f[name]; ok && name != "crn" {
				item.AdditionalProperties[name] = v
			}
		}
		out.Items[i] = item
	}
	return platform.Search200JSONResponse(out), nil
}

// GetCatalogEntry answers Global Catalog: a plan's entry.
func (h platformHandlers) GetCatalogEntry(ctx context.Context, req platform.GetCatalogEntryRequestObject) (platform.GetCatalogEntryResponseObject, error) {
	p, err := h.s.store.CatalogPlan(ctx, req.Id)
	if err != nil {
		return nil, naming(err, "parameter", "id")
	}
	id, name, pricing := p.CatalogID, p.DisplayName, p.PricingType
	if id == "" {
		id = p.PlanID
	}
	if name == "" {
		name = p.PlanID
	}
	if pricing == "" {
		pricing = "paygo"
	}
	active, disabled, origin := true, false, "global_catalog"
	return platform.GetCatalogEntry200JSONResponse{
		Id: id, Name: p.PlanID, Kind: "plan", Active: &active, Disabled: &disabled,
		OverviewUi: map[string]platform.Overview{"en": {DisplayName: name, Description: name, LongDescription: name}},
		Metadata:   platform.CatalogEntryMetadata{Pricing: &platform.CatalogPricing{Origin: &origin, Type: platform.CatalogPricingType(pricing)}},
	}, nil
}

// ListResourceInstances answers Resource Controller: the caller's instances by name or
// plan, a page at a time, next_url naming the next.
func (h platformHandlers) ListResourceInstances(ctx context.Context, req platform.ListResourceInstancesRequestObject) (platform.ListResourceInstancesResponseObject, error) {
	p := req.Params
	from, err := after(optional.Value(p.Start), "start")
	if err != nil {
		return nil, err
	}
	limit := 100
	if p.Limit != nil {
		limit = int(*p.Limit)
	}
	all, err := h.visible(ctx)
	if err != nil {
		return nil, err
	}
	var hits []domain.CatalogInstance
	for _, in := range all {
		c, _ := domain.ParseCRN(in.CRN)
		if (p.Name == nil || in.Name == *p.Name) && (p.Guid == nil || c.Instance == *p.Guid) &&
			(p.ResourcePlanId == nil || in.PlanCatalogID == *p.ResourcePlanId || in.PlanID == *p.ResourcePlanId) &&
			(p.State == nil || *p.State == platform.ListResourceInstancesParamsStateActive) {
			hits = append(hits, in)
		}
	}
	rows, next := page(hits, crnOfInstance, from, limit)
	out := platform.ResourceInstancesList{RowsCount: int64(len(rows)), Resources: make([]platform.ResourceInstance, len(rows))}
	if next != "" {
		q := url.Values{"start": {next}, "limit": {strconv.Itoa(limit)}}
		for k, v := range map[string]*string{"name": p.Name, "guid": p.Guid, "resource_plan_id": p.ResourcePlanId} {
			if v != nil {
				q.Set(k, *v)
			}
		}
		u := "/v2/resource_instances?" + q.Encode()
		out.NextUrl.Set(u)
	} else {
		out.NextUrl.SetNull()
	}
	for i, in := range rows {
		c, _ := domain.ParseCRN(in.CRN)
		out.Resources[i] = platform.ResourceInstance{
			Id: in.CRN, Guid: c.Instance, Crn: in.CRN, Name: in.Name, AccountId: in.AccountID, RegionId: c.Region,
			ResourcePlanId: in.PlanCatalogID, State: "active", Type: "service_instance",
		}
		resourceID, u := "quantum-computing", "/v2/resource_instances/"+c.Instance
		out.Resources[i].ResourceId, out.Resources[i].Url = &resourceID, &u
	}
	return platform.ListResourceInstances200JSONResponse(out), nil
}

// hostPrefixes are the IBM Cloud lookups' hosts, as IBM's Qiskit client derives them from
// its service URL (the URL's host after a service's own name), and the path prefix each
// service has on this server.
var hostPrefixes = []struct{ host, prefix string }{
	{"api.global-search-tagging.", "/global-search"},
	{"globalcatalog.", "/global-catalog"},
	{"resource-controller.", "/resource-controller"},
}

// serviceHosts routes a request made to a lookup's own host to its path on this server:
// Qiskit's client calls http://api.global-search-tagging.<its URL's host>/v3/resources/search,
// not a URL of the user's choosing. (IAM's host needs nothing: /identity/token is served
// at every host.)
func serviceHosts(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		for _, h := range hostPrefixes {
			if strings.HasPrefix(r.Host, h.host) && !strings.HasPrefix(r.URL.Path, h.prefix+"/") {
				r.URL.Path = h.prefix + r.URL.Path
				r.URL.RawPath = ""
				break
			}
		}
		return next(c)
	}
}
