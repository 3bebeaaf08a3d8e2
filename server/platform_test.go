package server_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/qrapi/qrapi/gen/platform"
)

// platformClient is the generated client of openapi-platform.yaml on the harness, as a
// principal of the demo (by API key).
func platformClient(t *testing.T, h *harness, key string) *platform.ClientWithResponses {
	t.Helper()
	c, err := platform.NewClientWithResponses(h.url, platform.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "apikey "+key)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// searchAll pages through a search and returns the items' CRNs, and the items.
func searchAll(t *testing.T, c *platform.ClientWithResponses, query string, limit int32, fields ...string) ([]string, []platform.ResultItem) {
	t.Helper()
	var (
		crns   []string
		items  []platform.ResultItem
		cursor *string
	)
	for pages := 0; ; pages++ {
		body := platform.SearchBody{Query: &query, SearchCursor: cursor}
		if len(fields) > 0 {
			body.Fields = &fields
		}
		r, err := c.SearchWithResponse(context.Background(), &platform.SearchParams{Limit: &limit}, body)
		if err != nil || r.JSON200 == nil {
			t.Fatalf("search %q: %v %s", query, err, r.Body)
		}
		for _, it := range r.JSON200.Items {
			crns = append(crns, it.Crn)
			items = append(items, it)
		}
		if len(r.JSON200.Items) > int(limit) || pages > 20 {
			t.Fatalf("search %q: a page of %d items for a limit of %d, or too many pages", query, len(r.JSON200.Items), limit)
		}
		if cursor = r.JSON200.SearchCursor; cursor == nil {
			return crns, items
		}
	}
}

// Global Search answers the instances a caller's policies reach, and no others: the
// reader its one instance, the demo admin the demo account's two, the other account's
// admin only its own; every query form; pages of one; a bad query is a 400.
func TestGlobalSearch(t *testing.T) {
	h := newHarness(t)
	admin, reader, other := platformClient(t, h, keyAdmin), platformClient(t, h, keyReader), platformClient(t, h, keyOther)
	for _, c := range []struct {
		who   string
		c     *platform.ClientWithResponses
		query string
		want  []string
	}{
		{"the reader", reader, "service_name:quantum-computing", []string{crnA1}},
		{"the demo admin", admin, "service_name:quantum-computing", []string{crnA2, crnA1}},
		{"the other admin", other, "service_name:quantum-computing", []string{crnB2, crnB1}},
		{"the demo admin, no query", admin, "", []string{crnA2, crnA1}},
		{"by name with a wildcard", admin, "name:demo-pay*", []string{crnA1}},
		{"by region", other, "service_name:quantum-computing AND region:eu-de", []string{crnB2}},
		{"by tag", admin, "tags:paygo", []string{crnA1}},
		{"by CRN", admin, "crn:" + crnA2, []string{crnA2}},
		{"by type", other, "type:resource-instance AND name:other-*", []string{crnB2, crnB1}},
		{"by resource group", admin, `resource_group_id:""`, []string{crnA2, crnA1}},
		{"nothing", admin, "name:nothing-has-this-name", nil},
	} {
		crns, _ := searchAll(t, c.c, c.query, 1)
		slices.Sort(crns)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(crns, want) {
			t.Errorf("%s, %q: %v, want %v", c.who, c.query, crns, want)
		}
	}
	for _, bad := range []string{"owner:me", "name:a OR name:b", "just words"} {
		q := bad
		r, err := admin.SearchWithResponse(context.Background(), nil, platform.SearchBody{Query: &q})
		if err != nil || r.StatusCode() != 400 || !strings.Contains(string(r.Body), "not understood") {
			t.Errorf("query %q: %v %d %s", bad, err, r.StatusCode(), r.Body)
		}
	}
	// Qiskit's fields: the plan's catalog id, and doc.extensions for an instance with backends.
	_, items := searchAll(t, admin, "service_name:quantum-computing", 100, "crn", "service_plan_unique_id", "name", "doc", "tags")
	for _, it := range items {
		doc, _ := it.AdditionalProperties["doc"].(map[string]any)
		if it.AdditionalProperties["service_plan_unique_id"] == nil || it.AdditionalProperties["name"] == nil || doc["extensions"] == nil {
			t.Errorf("item %s: %v", it.Crn, it.AdditionalProperties)
		}
		if _, ok := it.AdditionalProperties["account_id"]; ok {
			t.Errorf("item %s carries a field not asked for: %v", it.Crn, it.AdditionalProperties)
		}
	}
	h.srv.FlushAudit()
	if !strings.Contains(h.audit.String(), `"action":"global-search-tagging.resource.read"`) {
		t.Error("no audit event of a search")
	}
}

// Global Catalog answers a plan's entry, with its display name and pricing type; an
// unknown id is a 404 in the error container.
func TestGlobalCatalog(t *testing.T) {
	h := newHarness(t)
	c := platformClient(t, h, keyReader)
	for id, want := range map[string][2]string{"plan-id-2": {"Pay-As-You-Go", "paygo"}, "plan-id-3": {"Open", "free"}, "flex-plan-id-1": {"Flex", "subscription"}} {
		r, err := c.GetCatalogEntryWithResponse(context.Background(), id, nil)
		if err != nil || r.JSON200 == nil {
			t.Fatalf("%s: %v %s", id, err, r.Body)
		}
		e := r.JSON200
		if e.Id != id || e.Kind != "plan" || e.OverviewUi["en"].DisplayName != want[0] || e.Metadata.Pricing == nil || string(e.Metadata.Pricing.Type) != want[1] {
			t.Errorf("%s: %s", id, r.Body)
		}
	}
	r, _ := c.GetCatalogEntryWithResponse(context.Background(), "no-such-plan", nil)
	checkError(t, r.HTTPResponse, r.Body, 404, "not_found")
}

// Resource Controller turns an instance's name into its CRN, among the instances the caller
// may see, and pages with next_url.
func TestResourceController(t *testing.T) {
	h := newHarness(t)
	admin, reader := platformClient(t, h, keyAdmin), platformClient(t, h, keyReader)
	name := "demo-paygo"
	r, err := reader.ListResourceInstancesWithResponse(context.Background(), &platform.ListResourceInstancesParams{Name: &name})
	if err != nil || r.JSON200 == nil || r.JSON200.RowsCount != 1 || r.JSON200.Resources[0].Crn != crnA1 || !r.JSON200.NextUrl.IsNull() {
		t.Fatalf("name %s: %v %s", name, err, r.Body)
	}
	other := "other-flex"
	if r, _ := admin.ListResourceInstancesWithResponse(context.Background(), &platform.ListResourceInstancesParams{Name: &other}); r.JSON200 == nil || r.JSON200.RowsCount != 0 {
		t.Fatalf("another account's instance by name: %s", r.Body)
	}
	var crns []string
	limit := int64(1)
	params := &platform.ListResourceInstancesParams{Limit: &limit}
	for range 5 {
		r, err := admin.ListResourceInstancesWithResponse(context.Background(), params)
		if err != nil || r.JSON200 == nil {
			t.Fatalf("page: %v %s", err, r.Body)
		}
		for _, res := range r.JSON200.Resources {
			crns = append(crns, res.Crn)
		}
		if r.JSON200.NextUrl.IsNull() {
			break
		}
		next, _ := url.Parse(r.JSON200.NextUrl.MustGet())
		start := next.Query().Get("start")
		params = &platform.ListResourceInstancesParams{Limit: &limit, Start: &start}
	}
	if !slices.Equal(crns, []string{crnA2, crnA1}) {
		t.Fatalf("pages of one: %v", crns)
	}
}

// What Qiskit's Account.list_instances() does: a search, the catalog entry of each item
// with extensions, then the usage of each CRN found: every one answers.
func TestListInstancesAsQiskitDoes(t *testing.T) {
	h := newHarness(t)
	for _, key := range []string{keyAdmin, keyReader, keyOther} {
		c := platformClient(t, h, key)
		_, items := searchAll(t, c, "service_name:quantum-computing", 100, "crn", "service_plan_unique_id", "name", "doc", "tags")
		if len(items) == 0 {
			t.Fatalf("no instance found with %s", key)
		}
		for _, it := range items {
			plan, _ := it.AdditionalProperties["service_plan_unique_id"].(string)
			if r, err := c.GetCatalogEntryWithResponse(context.Background(), plan, nil); err != nil || r.StatusCode() != 200 {
				t.Errorf("catalog entry %s of %s: %v %d", plan, it.Crn, err, r.StatusCode())
			}
			if st, body := callWithKey(h, "GET", "/api/v1/instances/usage", key, it.Crn, ""); st != 200 {
				t.Errorf("usage of %s found by search: %d %s", it.Crn, st, body)
			}
		}
	}
}

// IBM's Qiskit client derives the lookups' hosts from its service URL's host
// (api.global-search-tagging.<host>, globalcatalog.<host>/api/v1, resource-controller.<host>,
// iam.<host>): a request to such a host reaches the service, with no path prefix.
func TestServiceHosts(t *testing.T) {
	h := newHarness(t)
	call := func(method, host, path, body string, hdr map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		io.Copy(&sb, resp.Body)
		return resp.StatusCode, sb.String()
	}
	st, tok := call("POST", "iam.quantum.localhost", "/identity/token", "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey="+keyReader,
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if st != 200 || !strings.Contains(tok, "access_token") {
		t.Fatalf("IAM at iam.<host>: %d %s", st, tok)
	}
	auth := map[string]string{"Authorization": "apikey " + keyReader, "Content-Type": "application/json"}
	if st, b := call("POST", "api.global-search-tagging.quantum.localhost", "/v3/resources/search?limit=100", `{"query": "service_name:quantum-computing", "fields": ["crn"]}`, auth); st != 200 || !strings.Contains(b, crnA1) {
		t.Errorf("search at its host: %d %s", st, b)
	}
	if st, b := call("GET", "globalcatalog.quantum.localhost:8080", "/api/v1/plan-id-2", "", auth); st != 200 || !strings.Contains(b, "Pay-As-You-Go") {
		t.Errorf("catalog at its host: %d %s", st, b)
	}
	if st, b := call("GET", "resource-controller.quantum.localhost", "/v2/resource_instances?name=demo-paygo", "", auth); st != 200 || !strings.Contains(b, crnA1) {
		t.Errorf("Resource Controller at its host: %d %s", st, b)
	}
	// The API's own host is untouched: /api/v1/... is the Qiskit Runtime API there.
	if st, b := call("GET", "quantum.localhost", "/api/v1/instance", "", map[string]string{"Authorization": "apikey " + keyReader, "Service-CRN": crnA1}); st != 200 {
		t.Errorf("the API at its host: %d %s", st, b)
	}
}

// IAM Policy Management's listing answers the caller's own policies in IAM's shape: the
// reader's Reader on its instance, the admin's Administrator on the account; another
// subject's are a 403, another account's none.
func TestListPolicies(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	reader := platformClient(t, h, keyReader)
	r, err := reader.ListPoliciesWithResponse(ctx, &platform.ListPoliciesParams{AccountId: acctDemo})
	if err != nil || r.JSON200 == nil || len(r.JSON200.Policies) != 1 {
		t.Fatalf("the reader's policies: %v %s", err, r.Body)
	}
	p := r.JSON200.Policies[0]
	attrs := func(a platform.PolicyAttributes) map[string]string {
		m := map[string]string{}
		for _, at := range a.Attributes {
			m[at.Name] = at.Value
		}
		return m
	}
	if p.Roles[0].RoleId != "crn:v1:bluemix:public:iam::::serviceRole:Reader" || attrs(p.Subjects[0])["iam_id"] != "IBMid-demo-reader" ||
		attrs(p.Resources[0])["serviceInstance"] != "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" || attrs(p.Resources[0])["accountId"] != acctDemo ||
		attrs(p.Resources[0])["serviceName"] != "quantum-computing" {
		t.Fatalf("the reader's policy: %s", r.Body)
	}
	again, _ := reader.ListPoliciesWithResponse(ctx, &platform.ListPoliciesParams{AccountId: acctDemo})
	if again.JSON200.Policies[0].Id != p.Id {
		t.Errorf("a policy's id changed between answers: %s, %s", p.Id, again.JSON200.Policies[0].Id)
	}
	admin, _ := platformClient(t, h, keyAdmin).ListPoliciesWithResponse(ctx, &platform.ListPoliciesParams{AccountId: acctDemo})
	if admin.JSON200 == nil || len(admin.JSON200.Policies) != 1 || admin.JSON200.Policies[0].Roles[0].RoleId != "crn:v1:bluemix:public:iam::::role:Administrator" ||
		attrs(admin.JSON200.Policies[0].Resources[0])["serviceInstance"] != "" {
		t.Fatalf("the admin's policies: %s", admin.Body)
	}
	if other, _ := reader.ListPoliciesWithResponse(ctx, &platform.ListPoliciesParams{AccountId: acctOther}); other.JSON200 == nil || len(other.JSON200.Policies) != 0 {
		t.Fatalf("another account: %s", other.Body)
	}
	someone := "IBMid-demo-admin"
	if r, _ := reader.ListPoliciesWithResponse(ctx, &platform.ListPoliciesParams{AccountId: acctDemo, IamId: &someone}); r.StatusCode() != 403 || !strings.Contains(string(r.Body), "Only your own policies") {
		t.Fatalf("another subject's: %d %s", r.StatusCode(), r.Body)
	}
	if r, _ := platform.NewClientWithResponses(h.url); r != nil {
		if anon, _ := r.ListPoliciesWithResponse(ctx, &platform.ListPoliciesParams{AccountId: acctDemo}); anon.StatusCode() != 401 {
			t.Fatalf("no credentials: %d %s", anon.StatusCode(), anon.Body)
		}
	}
}
