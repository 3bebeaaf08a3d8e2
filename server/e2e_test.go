package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oapi-codegen/nullable"

	"github.com/qrapi/qrapi/gen"
)

// pageExample reads a JSON example of the reference pages (spec/testdata/examples).
func pageExample(t *testing.T, name string) any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "spec", "testdata", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func jsonEqual(t *testing.T, got []byte, want any) {
	t.Helper()
	var g any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("body\n got %s\nwant %s", gb, wb)
	}
}

func TestGetInstance(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	other, admin, reader := h.token(keyOther), h.token(keyAdmin), h.token(keyReader)

	// 200: the instance example of the page, exactly.
	r, err := h.client.GetInstanceWithResponse(ctx, &gen.GetInstanceParams{ServiceCRN: crnB1}, bearer(other))
	if err != nil || r.StatusCode() != 200 || r.JSON200 == nil {
		t.Fatalf("get_instance: %v %d %s", err, r.StatusCode(), r.Body)
	}
	jsonEqual(t, r.Body, pageExample(t, "000_get_instance_200.json"))
	if r.HTTPResponse.Header.Get("IBM-API-Version") != "2025-05-01" {
		t.Errorf("IBM-API-Version %q", r.HTTPResponse.Header.Get("IBM-API-Version"))
	}
	// The older page's deprecated flag is served where set.
	r, _ = h.client.GetInstanceWithResponse(ctx, &gen.GetInstanceParams{ServiceCRN: crnB2}, bearer(other))
	if r.StatusCode() != 200 || r.JSON200.QctrlEnabled == nil || !*r.JSON200.QctrlEnabled { //nolint:staticcheck
		t.Fatalf("qctrl_enabled not served: %s", r.Body)
	}
	// No limit: both limit fields absent.
	r, _ = h.client.GetInstanceWithResponse(ctx, &gen.GetInstanceParams{ServiceCRN: crnA1}, bearer(admin))
	if r.StatusCode() != 200 || strings.Contains(string(r.Body), "instance_limit") {
		t.Fatalf("no limit set, yet: %s", r.Body)
	}

	r, _ = h.client.GetInstanceWithResponse(ctx, &gen.GetInstanceParams{ServiceCRN: "crn:v1:not-an-instance"}, bearer(admin))
	checkError(t, r.HTTPResponse, r.Body, 400, "invalid_header")
	r, _ = h.client.GetInstanceWithResponse(ctx, &gen.GetInstanceParams{ServiceCRN: crnA1})
	checkError(t, r.HTTPResponse, r.Body, 401, "unauthorized")
	r, _ = h.client.GetInstanceWithResponse(ctx, &gen.GetInstanceParams{ServiceCRN: crnA2}, bearer(reader))
	checkError(t, r.HTTPResponse, r.Body, 403, "forbidden")
	r, _ = h.client.GetInstanceWithResponse(ctx, &gen.GetInstanceParams{ServiceCRN: crnAMiss}, bearer(admin))
	if ec := checkError(t, r.HTTPResponse, r.Body, 404, "instance_not_found"); ec.Errors[0].Target == nil || ec.Errors[0].Target.Type != "header" || ec.Errors[0].Target.Name != "Service-CRN" {
		t.Fatalf("an unknown instance's 404 names %+v, want the header Service-CRN", ec.Errors[0].Target)
	}
	h.store.fail.Store(true)
	r, _ = h.client.GetInstanceWithResponse(ctx, &gen.GetInstanceParams{ServiceCRN: crnA1}, bearer(admin))
	ec := checkError(t, r.HTTPResponse, r.Body, 500, "internal")
	if strings.Contains(string(r.Body), "disk on fire") || !strings.Contains(h.logs.String(), "disk on fire") {
		t.Fatalf("the cause of a 500 must be logged, not answered: %s", r.Body)
	}
	if !strings.Contains(h.logs.String(), ec.Trace) {
		t.Fatal("the 500's trace id is not in the log")
	}
}

func TestGetInstanceConfiguration(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	admin, reader, other := h.token(keyAdmin), h.token(keyReader), h.token(keyOther)
	r, _ := h.client.GetInstanceConfigurationWithResponse(ctx, &gen.GetInstanceConfigurationParams{ServiceCRN: crnA2}, bearer(admin))
	if r.StatusCode() != 200 {
		t.Fatalf("%d %s", r.StatusCode(), r.Body)
	}
	jsonEqual(t, r.Body, map[string]any{"instance_limit": 60})
	r, _ = h.client.GetInstanceConfigurationWithResponse(ctx, &gen.GetInstanceConfigurationParams{ServiceCRN: crnA1}, bearer(admin))
	jsonEqual(t, r.Body, map[string]any{}) // no limit set
	r, _ = h.client.GetInstanceConfigurationWithResponse(ctx, &gen.GetInstanceConfigurationParams{ServiceCRN: crnB1}, bearer(other))
	jsonEqual(t, r.Body, map[string]any{"instance_limit": 60.7})

	r, _ = h.client.GetInstanceConfigurationWithResponse(ctx, &gen.GetInstanceConfigurationParams{ServiceCRN: crnA1}, bearer(admin), header("IBM-API-Version", "2025-1-1"))
	checkError(t, r.HTTPResponse, r.Body, 400, "invalid_header")
	r, _ = h.client.GetInstanceConfigurationWithResponse(ctx, &gen.GetInstanceConfigurationParams{ServiceCRN: crnA1}, bearer("not.a.token"))
	checkError(t, r.HTTPResponse, r.Body, 401, "unauthorized")
	r, _ = h.client.GetInstanceConfigurationWithResponse(ctx, &gen.GetInstanceConfigurationParams{ServiceCRN: crnA1}, bearer(other))
	checkError(t, r.HTTPResponse, r.Body, 403, "forbidden")
	r, _ = h.client.GetInstanceConfigurationWithResponse(ctx, &gen.GetInstanceConfigurationParams{ServiceCRN: crnAMiss}, bearer(admin))
	checkError(t, r.HTTPResponse, r.Body, 404, "")
	r, _ = h.client.GetInstanceConfigurationWithResponse(ctx, &gen.GetInstanceConfigurationParams{ServiceCRN: crnA1}, bearer(reader))
	if r.StatusCode() != 200 {
		t.Fatalf("a Reader of the instance reads its configuration: %d", r.StatusCode())
	}
	h.store.fail.Store(true)
	r, _ = h.client.GetInstanceConfigurationWithResponse(ctx, &gen.GetInstanceConfigurationParams{ServiceCRN: crnA1}, bearer(admin))
	checkError(t, r.HTTPResponse, r.Body, 500, "internal")
}

func TestReplaceInstanceConfiguration(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	admin, reader := h.token(keyAdmin), h.token(keyReader)
	put := func(crn string, v nullable.Nullable[int32], edit ...gen.RequestEditorFn) *gen.ReplaceInstanceConfigurationResponse {
		t.Helper()
		r, err := h.client.ReplaceInstanceConfigurationWithResponse(ctx, &gen.ReplaceInstanceConfigurationParams{ServiceCRN: crn},
			gen.InstanceConfigurationUpdate{InstanceLimit: v}, edit...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	limit := func() string {
		r, _ := h.client.GetInstanceConfigurationWithResponse(ctx, &gen.GetInstanceConfigurationParams{ServiceCRN: crnA1}, bearer(admin))
		return string(r.Body)
	}

	r := put(crnA1, nullable.NewNullableWithValue[int32](3600), bearer(admin))
	if r.StatusCode() != 204 || len(r.Body) != 0 {
		t.Fatalf("set: %d %s", r.StatusCode(), r.Body)
	}
	if got := limit(); got != `{"instance_limit":3600}`+"\n" {
		t.Fatalf("after set: %s", got)
	}
	gi, _ := h.client.GetInstanceWithResponse(ctx, &gen.GetInstanceParams{ServiceCRN: crnA1}, bearer(admin))
	if *gi.JSON200.InstanceLimitSeconds != "3600" || *gi.JSON200.InstanceLimit != 3600 { //nolint:staticcheck
		t.Fatalf("get_instance after set: %s", gi.Body)
	}
	r = put(crnA1, nullable.NewNullNullable[int32](), bearer(admin))
	if r.StatusCode() != 204 {
		t.Fatalf("remove: %d %s", r.StatusCode(), r.Body)
	}
	if got := limit(); got != "{}\n" {
		t.Fatalf("after null: %s", got)
	}

	// 409: A1 consumed 30 seconds; a limit of 29 is refused and changes nothing.
	put(crnA1, nullable.NewNullableWithValue[int32](500), bearer(admin))
	r = put(crnA1, nullable.NewNullableWithValue[int32](29), bearer(admin))
	ec := checkError(t, r.HTTPResponse, r.Body, 409, "usage_exceeds_limit")
	if r.JSON409 == nil || !strings.Contains(ec.Errors[0].Message, "30") {
		t.Fatalf("409 should say what was consumed: %s", r.Body)
	}
	if got := limit(); got != `{"instance_limit":500}`+"\n" {
		t.Fatalf("a 409 changed the limit: %s", got)
	}
	if r := put(crnA1, nullable.NewNullableWithValue[int32](30), bearer(admin)); r.StatusCode() != 204 {
		t.Fatalf("a limit equal to the consumed seconds is allowed: %d", r.StatusCode())
	}

	// 400: every malformed body names instance_limit, and changes nothing.
	for name, body := range map[string]string{
		"missing body":   "",
		"not JSON":       "instance_limit=5",
		"wrong type":     `{"instance_limit":"60"}`,
		"zero":           `{"instance_limit":0}`,
		"negative":       `{"instance_limit":-1}`,
		"past int32":     `{"instance_limit":2147483648}`,
		"fraction":       `{"instance_limit":1.5}`,
		"missing field":  `{}`,
		"array":          `[1]`,
		"truncated JSON": `{"instance_limit":`,
		"field misspelt": `{"instance_limt":5}`,
	} {
		t.Run(name, func(t *testing.T) {
			r, err := h.client.ReplaceInstanceConfigurationWithBodyWithResponse(ctx, &gen.ReplaceInstanceConfigurationParams{ServiceCRN: crnA1}, "application/json", strings.NewReader(body), bearer(admin))
			if err != nil {
				t.Fatal(err)
			}
			ec := checkError(t, r.HTTPResponse, r.Body, 400, "")
			if r.JSON400 == nil {
				t.Fatal("the generated client did not parse the 400")
			}
			if !strings.Contains(ec.Errors[0].Message, "instance_limit") {
				t.Fatalf("message does not name the field: %s", r.Body)
			}
			if got := limit(); got != `{"instance_limit":30}`+"\n" {
				t.Fatalf("a 400 changed the limit: %s", got)
			}
		})
	}
	resp, b := h.do("PUT", "/api/v1/instances/configuration", admin, map[string]string{"Service-CRN": crnA1, "Content-Type": "text/plain"}, `{"instance_limit":5}`)
	checkError(t, resp, b, 400, "invalid_body")

	r = put(crnA1, nullable.NewNullableWithValue[int32](100))
	checkError(t, r.HTTPResponse, r.Body, 401, "unauthorized")
	r = put(crnA1, nullable.NewNullableWithValue[int32](100), bearer(reader))
	checkError(t, r.HTTPResponse, r.Body, 403, "forbidden")
	r = put(crnAMiss, nullable.NewNullableWithValue[int32](100), bearer(admin))
	checkError(t, r.HTTPResponse, r.Body, 404, "instance_not_found")
	big := `{"instance_limit":5,"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	r, err := h.client.ReplaceInstanceConfigurationWithBodyWithResponse(ctx, &gen.ReplaceInstanceConfigurationParams{ServiceCRN: crnA1}, "application/json", strings.NewReader(big), bearer(admin))
	if err != nil {
		t.Fatal(err)
	}
	checkError(t, r.HTTPResponse, r.Body, http.StatusRequestEntityTooLarge, "payload_too_large")
	if r.JSON413 == nil {
		t.Fatal("the generated client did not parse the 413")
	}
	h.store.fail.Store(true)
	r = put(crnA1, nullable.NewNullableWithValue[int32](100), bearer(admin))
	checkError(t, r.HTTPResponse, r.Body, 500, "internal")
}

func TestGetUsage(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	admin, reader, other := h.token(keyAdmin), h.token(keyReader), h.token(keyOther)
	r, _ := h.client.GetUsageWithResponse(ctx, &gen.GetUsageParams{ServiceCRN: crnA2}, bearer(admin))
	if r.StatusCode() != 200 {
		t.Fatalf("%d %s", r.StatusCode(), r.Body)
	}
	// The page's usage example, with the instance's CRN as instance_id and the plan's id;
	// usage_limit_reached follows from the numbers (12 < 60), where the page shows true.
	want := pageExample(t, "000_get_usage_200.json").(map[string]any)
	want["instance_id"], want["plan_id"], want["usage_limit_reached"] = crnA2, "plan-id-3", false
	jsonEqual(t, r.Body, want)
	if !r.JSON200.UsagePeriod.IsNull() {
		t.Fatal("usage_period should be null")
	}
	r, _ = h.client.GetUsageWithResponse(ctx, &gen.GetUsageParams{ServiceCRN: crnA1}, bearer(reader))
	if r.StatusCode() != 200 || r.JSON200.UsagePeriod.MustGet().StartTime == nil || *r.JSON200.UsageLimitSeconds != 140 {
		t.Fatalf("usage with a period: %s", r.Body)
	}
	// usage_limit_seconds is in whole seconds, as get_instance rounds instance_limit_seconds
	// (the page's example instance, limit 60.7, shows "61" there): limit − consumed is what
	// IBM's Qiskit client computes as the remaining seconds, a whole number here.
	for _, c := range []struct {
		crn, token       string
		limit, remaining float64
	}{{crnA1, admin, 140, 110}, {crnA2, admin, 60, 48}, {crnB1, other, 61, 61}, {crnB2, other, 100, 95}} {
		r, _ := h.client.GetUsageWithResponse(ctx, &gen.GetUsageParams{ServiceCRN: c.crn}, bearer(c.token))
		if r.StatusCode() != 200 || r.JSON200.UsageLimitSeconds == nil || *r.JSON200.UsageLimitSeconds != c.limit ||
			*r.JSON200.UsageLimitSeconds-r.JSON200.UsageConsumedSeconds != c.remaining {
			t.Fatalf("%s: usage %s, want limit %v and %v remaining", c.crn, r.Body, c.limit, c.remaining)
		}
	}
	// No limit and no allocation: usage_limit_reached is omitted.
	r, _ = h.client.GetUsageWithResponse(ctx, &gen.GetUsageParams{ServiceCRN: crnB2}, bearer(other))
	if r.StatusCode() != 200 || *r.JSON200.UsageLimitSeconds != 100 {
		t.Fatalf("%s", r.Body)
	}

	r, _ = h.client.GetUsageWithResponse(ctx, &gen.GetUsageParams{ServiceCRN: "crn:v1:bluemix:public:cloud-object-storage:global:a/x:y::"}, bearer(admin))
	checkError(t, r.HTTPResponse, r.Body, 400, "invalid_header")
	r, _ = h.client.GetUsageWithResponse(ctx, &gen.GetUsageParams{ServiceCRN: crnA1})
	checkError(t, r.HTTPResponse, r.Body, 401, "unauthorized")
	r, _ = h.client.GetUsageWithResponse(ctx, &gen.GetUsageParams{ServiceCRN: crnB1}, bearer(admin))
	checkError(t, r.HTTPResponse, r.Body, 403, "forbidden")
	r, _ = h.client.GetUsageWithResponse(ctx, &gen.GetUsageParams{ServiceCRN: crnAMiss}, bearer(admin))
	checkError(t, r.HTTPResponse, r.Body, 404, "instance_not_found")
	h.store.fail.Store(true)
	r, _ = h.client.GetUsageWithResponse(ctx, &gen.GetUsageParams{ServiceCRN: crnA1}, bearer(admin))
	checkError(t, r.HTTPResponse, r.Body, 500, "internal")
}

func TestGetAccount(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	admin, viewer, reader, other := h.token(keyAdmin), h.token(keyViewer), h.token(keyReader), h.token(keyOther)

	// 200: the Accounts page's example, exactly.
	r, _ := h.client.GetAccountWithResponse(ctx, acctDemo, nil, bearer(admin))
	if r.StatusCode() != 200 {
		t.Fatalf("%d %s", r.StatusCode(), r.Body)
	}
	jsonEqual(t, r.Body, pageExample(t, "002_get_account_200.json"))
	if r, _ := h.client.GetAccountWithResponse(ctx, acctDemo, nil, bearer(viewer)); r.StatusCode() != 200 {
		t.Fatalf("a Viewer of the account reads it: %d", r.StatusCode())
	}
	// No stored configuration: the default one, a plan per plan the instances use.
	r, _ = h.client.GetAccountWithResponse(ctx, acctOther, nil, bearer(other))
	jsonEqual(t, r.Body, map[string]any{"plans": []any{map[string]any{
		"plan_id": "flex-plan-id-1", "backends": []any{"ibm_backend", "ibm_backend_eu"},
		"max_ttl": 28800, "active_ttl": 28800, "interactive_ttl": 60,
	}}})

	// plan_id (IBM's published document): only that plan, of a stored configuration or a
	// default one; a plan the account lacks gives an empty list; an empty or too long one is
	// a 400 that names it.
	plan := func(id string) *gen.GetAccountParams { return &gen.GetAccountParams{PlanId: &id} }
	r, _ = h.client.GetAccountWithResponse(ctx, acctDemo, plan("plan-id-2"), bearer(admin))
	all := pageExample(t, "002_get_account_200.json").(map[string]any)["plans"].([]any)
	var want2 []any
	for _, p := range all {
		if p.(map[string]any)["plan_id"] == "plan-id-2" {
			want2 = append(want2, p)
		}
	}
	if r.StatusCode() != 200 || len(want2) != 1 {
		t.Fatalf("plan_id of a stored configuration: %d %s", r.StatusCode(), r.Body)
	}
	jsonEqual(t, r.Body, map[string]any{"plans": want2})
	r, _ = h.client.GetAccountWithResponse(ctx, acctOther, plan("flex-plan-id-1"), bearer(other))
	jsonEqual(t, r.Body, map[string]any{"plans": []any{map[string]any{
		"plan_id": "flex-plan-id-1", "backends": []any{"ibm_backend", "ibm_backend_eu"},
		"max_ttl": 28800, "active_ttl": 28800, "interactive_ttl": 60,
	}}})
	for _, acct := range []struct{ id, token string }{{acctDemo, admin}, {acctOther, other}} {
		r, _ = h.client.GetAccountWithResponse(ctx, acct.id, plan("no-such-plan"), bearer(acct.token))
		if r.StatusCode() != 200 {
			t.Fatalf("a plan %s lacks: %d %s", acct.id, r.StatusCode(), r.Body)
		}
		jsonEqual(t, r.Body, map[string]any{"plans": []any{}})
	}
	for _, bad := range []string{"", strings.Repeat("p", 65)} {
		resp, b := h.do("GET", "/api/v1/accounts/"+acctDemo+"?plan_id="+bad, admin, nil, "")
		if ec := checkError(t, resp, b, 400, "invalid_parameter"); ec.Errors[0].Target == nil || ec.Errors[0].Target.Name != "plan_id" {
			t.Fatalf("plan_id %q: %s", bad, b)
		}
	}

	r, _ = h.client.GetAccountWithResponse(ctx, "a$b", nil, bearer(admin))
	checkError(t, r.HTTPResponse, r.Body, 400, "invalid_parameter")
	r, _ = h.client.GetAccountWithResponse(ctx, strings.Repeat("a", 65), nil, bearer(admin))
	checkError(t, r.HTTPResponse, r.Body, 400, "invalid_parameter")
	r, _ = h.client.GetAccountWithResponse(ctx, acctDemo, nil)
	checkError(t, r.HTTPResponse, r.Body, 401, "unauthorized")
	// 404, the same answer whether the account is missing or just not the caller's.
	missing, _ := h.client.GetAccountWithResponse(ctx, "0000000000000000000000000000dead", nil, bearer(admin))
	denied, _ := h.client.GetAccountWithResponse(ctx, acctOther, nil, bearer(admin))
	readerDenied, _ := h.client.GetAccountWithResponse(ctx, acctDemo, nil, bearer(reader))
	for _, r := range []*gen.GetAccountResponse{missing, denied, readerDenied} {
		checkError(t, r.HTTPResponse, r.Body, 404, "account_not_found")
	}
	if strings.ReplaceAll(missing.JSON404.Errors[0].Message, "0000000000000000000000000000dead", "X") != strings.ReplaceAll(denied.JSON404.Errors[0].Message, acctOther, "X") {
		t.Fatalf("a denial reads differently from a missing account: %q vs %q", missing.JSON404.Errors[0].Message, denied.JSON404.Errors[0].Message)
	}
	h.store.fail.Store(true)
	r, _ = h.client.GetAccountWithResponse(ctx, acctDemo, nil, bearer(admin))
	checkError(t, r.HTTPResponse, r.Body, 500, "internal")
}

func TestAPIVersionHeader(t *testing.T) {
	h := newHarness(t)
	admin := h.token(keyAdmin)
	for sent, want := range map[string]string{
		"":           "2025-05-01",
		"2024-01-01": "2024-01-01",
		"2024-06-30": "2024-01-01",
		"2026-02-14": "2026-02-01",
		"2026-03-15": "2026-03-15",
		"2030-01-01": "2026-04-15",
	} {
		hdr := map[string]string{"Service-CRN": crnA1}
		if sent != "" {
			hdr["IBM-API-Version"] = sent
		}
		resp, b := h.do("GET", "/api/v1/instance", admin, hdr, "")
		if resp.StatusCode != 200 || resp.Header.Get("IBM-API-Version") != want {
			t.Errorf("IBM-API-Version %q: status %d, answered as %q, want %q: %s", sent, resp.StatusCode, resp.Header.Get("IBM-API-Version"), want, b)
		}
	}
	for sent, code := range map[string]string{"2023-12-31": "unsupported_api_version", "2025-13-01": "invalid_header", "yesterday": "invalid_header"} {
		resp, b := h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnA1, "IBM-API-Version": sent}, "")
		ec := checkError(t, resp, b, 400, code)
		if code == "unsupported_api_version" && !strings.Contains(ec.Errors[0].Message, "2026-04-15") {
			t.Errorf("the message should list the supported versions: %s", b)
		}
	}
}

func TestEveryErrorIsTheErrorContainer(t *testing.T) {
	h := newHarness(t)
	admin := h.token(keyAdmin)
	resp, b := h.do("GET", "/api/v1/nothing-here", admin, nil, "")
	checkError(t, resp, b, 404, "not_found")
	resp, b = h.do("GET", "/elsewhere", "", nil, "")
	checkError(t, resp, b, 404, "not_found")
	resp, b = h.do("DELETE", "/api/v1/instance", admin, nil, "")
	checkError(t, resp, b, 405, "method_not_allowed")
	if resp.Header.Get("Allow") != "GET" {
		t.Errorf("Allow %q", resp.Header.Get("Allow"))
	}
	resp, b = h.do("POST", "/api/v1/instances/configuration", admin, nil, "")
	checkError(t, resp, b, 405, "method_not_allowed")
	if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "PUT") {
		t.Errorf("Allow %q", allow)
	}
	resp, b = h.do("GET", "/api/v1/instance", "", nil, "")
	checkError(t, resp, b, 401, "unauthorized")
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("a 401 should say which scheme (WWW-Authenticate)")
	}
	// A missing Service-CRN is named.
	resp, b = h.do("GET", "/api/v1/instance", admin, nil, "")
	ec := checkError(t, resp, b, 400, "invalid_header")
	if ec.Errors[0].Target == nil || ec.Errors[0].Target.Name != "Service-CRN" {
		t.Errorf("target: %s", b)
	}
}

// What the document refuses is refused and what it accepts is accepted: data after the
// JSON value and a field named twice are 400s that say so (and change nothing); a number
// the document's validation accepts as an integer sets that integer; one no integer holds
// stays a 400 that names the field.
func TestBodyJSONEdges(t *testing.T) {
	h := newHarness(t)
	admin := h.token(keyAdmin)
	js := map[string]string{"Service-CRN": crnA1, "Content-Type": "application/json"}
	limit := func() string {
		_, b := h.do("GET", "/api/v1/instances/configuration", admin, map[string]string{"Service-CRN": crnA1}, "")
		return strings.TrimSpace(string(b))
	}
	if resp, b := h.do("PUT", "/api/v1/instances/configuration", admin, js, `{"instance_limit": 500}`); resp.StatusCode != 204 {
		t.Fatalf("setup: %d %s", resp.StatusCode, b)
	}
	for _, c := range []struct {
		body, target, says string
	}{
		{`{"instance_limit": 100}garbage`, "body", "after its JSON value"},
		{`{"instance_limit": 100} {"instance_limit": 200}`, "body", "after its JSON value"},
		{`{"instance_limit": 100, "instance_limit": 200}`, "instance_limit", "twice"},
		{`{"instance_limit": 1e400}`, "instance_limit", "instance_limit"},
	} {
		resp, b := h.do("PUT", "/api/v1/instances/configuration", admin, js, c.body)
		ec := checkError(t, resp, b, 400, "")
		if ec.Errors[0].Target == nil || ec.Errors[0].Target.Name != c.target || !strings.Contains(ec.Errors[0].Message, c.says) {
			t.Errorf("%s: %s, want a 400 naming %s that says %q", c.body, b, c.target, c.says)
		}
		if got := limit(); got != `{"instance_limit":500}` {
			t.Fatalf("%s changed the limit: %s", c.body, got)
		}
	}
	for body, want := range map[string]string{
		`{"instance_limit": 3600.0}`:   `{"instance_limit":3600}`,
		`{"instance_limit": 1e3}`:      `{"instance_limit":1000}`,
		`{"instance_limit": 4.5E1}`:    `{"instance_limit":45}`,
		"{\"instance_limit\": 77}\n  ": `{"instance_limit":77}`,
	} {
		resp, b := h.do("PUT", "/api/v1/instances/configuration", admin, js, body)
		if resp.StatusCode != 204 {
			t.Errorf("%s: %d %s, want 204", body, resp.StatusCode, b)
			continue
		}
		if got := limit(); got != want {
			t.Errorf("%s set %s, want %s", body, got, want)
		}
	}
	// Not whole: refused by the document's integer type, naming the field.
	resp, b := h.do("PUT", "/api/v1/instances/configuration", admin, js, `{"instance_limit": 36.5}`)
	if ec := checkError(t, resp, b, 400, ""); ec.Errors[0].Target == nil || ec.Errors[0].Target.Name != "instance_limit" {
		t.Errorf("36.5: %s", b)
	}
}
