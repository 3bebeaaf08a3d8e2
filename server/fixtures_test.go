package server_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/qrapi/qrapi/gen/control"
)

var jsonBody = map[string]string{"Content-Type": "application/json"}

// createFixture makes a fixture from a JSON or YAML document (by its content type) and
// returns it, failing the test unless the answer is a 201.
func createFixture(t *testing.T, h *harness, contentType, doc string) control.Fixture {
	t.Helper()
	resp, b := h.do("POST", "/control/v1/fixtures", testAdminToken, map[string]string{"Content-Type": contentType}, doc)
	if resp.StatusCode != 201 {
		t.Fatalf("create fixture: %d %s", resp.StatusCode, b)
	}
	var f control.Fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// keyOf is a fixture principal's first API key, as the creating answer showed it.
func keyOf(t *testing.T, f control.Fixture, i int) string {
	t.Helper()
	if i >= len(f.Principals) || f.Principals[i].ApiKeys == nil || len(*f.Principals[i].ApiKeys) == 0 {
		t.Fatalf("principal %d of fixture %s has no key: %+v", i, f.Id, f.Principals)
	}
	return (*f.Principals[i].ApiKeys)[0]
}

// callWithKey calls the API with an API key.
func callWithKey(h *harness, method, path, key, crn, body string) (int, string) {
	hdr := map[string]string{"Authorization": "apikey " + key}
	if crn != "" {
		hdr["Service-CRN"] = crn
	}
	if body != "" {
		hdr["Content-Type"] = "application/json"
	}
	resp, b := h.do(method, path, "", hdr, body)
	return resp.StatusCode, string(b)
}

var (
	accountIDForm = regexp.MustCompile(`^[0-9a-f]{32}$`)
	apiKeyForm    = regexp.MustCompile(`^[A-Za-z0-9_-]{44}$`)
)

// A fixture made from a document that gives nothing but a plan: its account id, its
// instance's CRN (us-east, under that account), its principal and its key are generated,
// and the key reaches the fixture's instance and account. Two fixtures, one made in YAML
// in another region, are made concurrently: each one's key is refused on the other's
// instance (403) and account (404, as any account one may not read). Listing and reading
// them shows no key, and no key reaches the log or an audit event.
func TestFixturesAreIsolated(t *testing.T) {
	h := newHarness(t)
	var (
		a, b control.Fixture
		wg   sync.WaitGroup
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		a = createFixture(t, h, "application/json", `{"accounts": [{}], "instances": [{"plan_id": "plan-a", "usage_consumed_seconds": 5}], "principals": [{}]}`)
	}()
	go func() {
		defer wg.Done()
		b = createFixture(t, h, "application/yaml", "region: eu-de\naccounts: [{}]\ninstances:\n  - plan_id: plan-b\n    usage_period: current_month\nprincipals:\n  - type: serviceid\n")
	}()
	wg.Wait()
	if a.Id == b.Id || len(a.Accounts) != 1 || !accountIDForm.MatchString(a.Accounts[0]) || len(a.Instances) != 1 ||
		!strings.HasPrefix(a.Instances[0], "crn:v1:bluemix:public:quantum-computing:us-east:a/"+a.Accounts[0]+":") ||
		!strings.HasPrefix(b.Instances[0], "crn:v1:bluemix:public:quantum-computing:eu-de:a/"+b.Accounts[0]+":") {
		t.Fatalf("fixtures: %+v\n%+v", a, b)
	}
	keyA, keyB := keyOf(t, a, 0), keyOf(t, b, 0)
	if !apiKeyForm.MatchString(keyA) || !strings.HasPrefix(a.Principals[0].Id, "IBMid-") || !strings.HasPrefix(b.Principals[0].Id, "iam-ServiceId-") {
		t.Fatalf("generated principal %s with key %q, principal %s", a.Principals[0].Id, keyA, b.Principals[0].Id)
	}
	if st, body := callWithKey(h, "GET", "/api/v1/instances/usage", keyA, a.Instances[0], ""); st != 200 || !strings.Contains(body, `"usage_consumed_seconds":5`) {
		t.Fatalf("A's key on A's instance: %d %s", st, body)
	}
	if st, body := callWithKey(h, "GET", "/api/v1/accounts/"+a.Accounts[0], keyA, "", ""); st != 200 || !strings.Contains(body, `"plan_id":"plan-a"`) {
		t.Fatalf("A's key on A's account: %d %s", st, body)
	}
	for _, c := range []struct {
		key, crn, account string
	}{{keyA, b.Instances[0], b.Accounts[0]}, {keyB, a.Instances[0], a.Accounts[0]}} {
		if st, body := callWithKey(h, "GET", "/api/v1/instance", c.key, c.crn, ""); st != 403 {
			t.Errorf("a key on the other fixture's instance: %d %s", st, body)
		}
		if st, body := callWithKey(h, "GET", "/api/v1/accounts/"+c.account, c.key, "", ""); st != 404 {
			t.Errorf("a key on the other fixture's account: %d %s", st, body)
		}
		if st, body := callWithKey(h, "GET", "/api/v1/instance", c.key, crnA1, ""); st != 403 {
			t.Errorf("a fixture's key on the demo's instance: %d %s", st, body)
		}
	}
	// The demo's own keys do not reach a fixture either.
	if st, body := callWithKey(h, "GET", "/api/v1/instance", keyAdmin, a.Instances[0], ""); st != 403 {
		t.Errorf("the demo admin on a fixture's instance: %d %s", st, body)
	}

	resp, list := h.do("GET", "/control/v1/fixtures", testAdminToken, nil, "")
	_, one := h.do("GET", "/control/v1/fixtures/"+a.Id, testAdminToken, nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(list), a.Id) || !strings.Contains(string(list), b.Id) || !strings.Contains(string(one), a.Principals[0].Id) {
		t.Fatalf("list %d %s; one %s", resp.StatusCode, list, one)
	}
	h.srv.FlushAudit()
	for name, text := range map[string]string{"the listing": string(list), "the fixture": string(one), "the log": h.logs.String(), "the audit log": h.audit.String()} {
		if strings.Contains(text, keyA) || strings.Contains(text, keyB) || strings.Contains(text, "api_keys") {
			t.Errorf("%s shows an API key", name)
		}
	}
	// The audit listing of a fixture: the calls on its instance and account, and by its principal.
	_, events := h.do("GET", "/control/v1/audit-events?fixture="+a.Id, testAdminToken, nil, "")
	var el control.AuditEventList
	json.Unmarshal(events, &el)
	// A's five calls (on its instance and account, on B's, on the demo's), and the three
	// calls on A's instance or account by others (B's principal twice, the demo admin).
	if len(el.Events) != 8 {
		t.Errorf("%d events of fixture A, want 8: %s", len(el.Events), events)
	}
	byA := 0
	for _, ev := range el.Events {
		if ev.Initiator["id"] == a.Principals[0].Id {
			byA++
		} else if id := ev.Target["id"]; id != a.Instances[0] && id != "a/"+a.Accounts[0] {
			t.Errorf("an event of fixture A neither by it nor on it: %v on %v", ev.Initiator["id"], id)
		}
	}
	if byA != 5 {
		t.Errorf("%d events by A's principal, want 5", byA)
	}
	_, events = h.do("GET", "/control/v1/audit-events?fixture="+b.Id+"&initiator="+principalDemoAdmin, testAdminToken, nil, "")
	json.Unmarshal(events, &el)
	if len(el.Events) != 0 {
		t.Errorf("the demo admin's calls on fixture B's instance: %d, want 0 (it made none): %s", len(el.Events), events)
	}
	resp, events = h.do("GET", "/control/v1/audit-events?fixture=fx-none", testAdminToken, nil, "")
	if ec := checkError(t, resp, events, 404, "fixture_not_found"); ec.Errors[0].Target == nil || ec.Errors[0].Target.Name != "fixture" {
		t.Errorf("an unknown fixture's events: %s", events)
	}
}

const principalDemoAdmin = "IBMid-demo-admin"

// Every bad document is a 400 that names its field, and nothing of it is kept.
func TestFixtureDocumentErrors(t *testing.T) {
	h := newHarness(t)
	crnElsewhere := "crn:v1:bluemix:public:quantum-computing:us-east:a/someoneelse:11111111-2222-4333-8444-555555555555::"
	thousand := strings.Repeat(`{"plan_id": "p"},`, 1000)
	for _, c := range []struct {
		name, doc, field string
	}{
		{"unknown field", `{"accounts": [{}], "acounts": []}`, "acounts"},
		{"no accounts", `{"instances": [{"plan_id": "p"}]}`, "accounts"},
		{"no plan", `{"accounts": [{}], "instances": [{}]}`, "plan_id"},
		{"a bad account id", `{"accounts": [{"id": "not an id!"}]}`, "accounts.0.id"},
		{"an unknown role", `{"accounts": [{}], "principals": [{"policies": [{"role": "Owner", "account": "x"}]}]}`, "role"},
		{"a short key", `{"accounts": [{}], "principals": [{"api_keys": ["short"]}]}`, "api_keys"},
		{"a bad period", `{"accounts": [{}], "instances": [{"plan_id": "p", "usage_period": "last_month"}]}`, "usage_period"},
		{"an instance's account not in the document", `{"accounts": [{}], "instances": [{"plan_id": "p", "account": "nope"}]}`, "instances[0].account"},
		{"a CRN in another account", `{"accounts": [{}], "instances": [{"plan_id": "p", "crn": "` + crnElsewhere + `"}]}`, "instances[0].crn"},
		{"a principal's account not in the document", `{"accounts": [{}], "principals": [{"account": "nope"}]}`, "principals[0].account"},
		{"a principal twice", `{"accounts": [{}], "principals": [{"id": "IBMid-twice"}, {"id": "IBMid-twice"}]}`, "principals[1].id"},
		{"a policy on nothing", `{"accounts": [{}], "principals": [{"policies": [{"role": "Reader"}]}]}`, "principals[0].policies[0]"},
		{"a limit of zero", `{"accounts": [{}], "instances": [{"plan_id": "p", "instance_limit": 0}]}`, "instances[0].instance_limit"},
		{"a period that ends first", `{"accounts": [{}], "instances": [{"plan_id": "p", "usage_period": {"start_time": "2026-02-01T00:00:00Z", "end_time": "2026-01-01T00:00:00Z"}}]}`, "instances[0].usage_period"},
		{"1,001 instances", `{"accounts": [{}], "instances": [` + thousand + `{"plan_id": "p"}]}`, "instances"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, b := h.do("POST", "/control/v1/fixtures", testAdminToken, jsonBody, c.doc)
			ec := checkError(t, resp, b, 400, "")
			if !strings.Contains(ec.Errors[0].Message, c.field) && (ec.Errors[0].Target == nil || !strings.Contains(ec.Errors[0].Target.Name, c.field)) {
				t.Errorf("the 400 does not name %s: %s", c.field, b)
			}
			if c.name == "1,001 instances" && !strings.Contains(ec.Errors[0].Message, "1000") {
				t.Errorf("the 400 does not name the limit: %s", b)
			}
		})
	}
	if _, b := h.do("GET", "/control/v1/fixtures", testAdminToken, nil, ""); string(b) != `{"fixtures":[]}`+"\n" {
		t.Fatalf("fixtures kept after bad documents: %s", b)
	}
}

// An account id, CRN, principal id or API key that exists already is a 409 naming the
// field, and the document is not kept in part.
func TestFixtureNamesTaken(t *testing.T) {
	h := newHarness(t)
	f := createFixture(t, h, "application/json", `{"accounts": [{"id": "acct-one"}], "instances": [{"plan_id": "p"}], "principals": [{"id": "IBMid-one", "api_keys": ["a-key-of-one-0123456789"]}]}`)
	// A second fixture, whose CRN is the first's in another account.
	takenCRN := fmt.Sprintf(`{"accounts": [{"id": "acct-two"}], "instances": [{"plan_id": "p", "crn": %q}]}`, strings.Replace(f.Instances[0], "a/acct-one:", "a/acct-two:", 1))
	createFixture(t, h, "application/json", takenCRN)
	for _, c := range []struct {
		name, doc, field string
	}{
		{"the demo's account", `{"accounts": [{"id": "` + acctDemo + `"}]}`, "accounts[0].id"},
		{"a fixture's account", `{"accounts": [{}, {"id": "acct-one"}]}`, "accounts[1].id"},
		{"a fixture's CRN, in its account (a CRN names its account)", strings.Replace(takenCRN, `"id": "acct-two"`, `"id": "acct-two-b"}, {"id": "acct-two"`, 1), "accounts[1].id"},
		{"the demo's principal", `{"accounts": [{}], "principals": [{"id": "` + principalDemoAdmin + `"}]}`, "principals[0].id"},
		{"a fixture's key", `{"accounts": [{}], "principals": [{"api_keys": ["a-key-of-one-0123456789"]}]}`, "principals[0].api_keys[0]"},
		{"the demo's key", `{"accounts": [{}], "principals": [{}, {"api_keys": ["` + keyReader + `"]}]}`, "principals[1].api_keys[0]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, b := h.do("POST", "/control/v1/fixtures", testAdminToken, jsonBody, c.doc)
			ec := checkError(t, resp, b, 409, "already_exists")
			if ec.Errors[0].Target == nil || ec.Errors[0].Target.Name != c.field || strings.Contains(string(b), "a-key-of-one") || strings.Contains(string(b), keyReader) {
				t.Errorf("409 for %s: %s", c.field, b)
			}
		})
	}
	_, list := h.do("GET", "/control/v1/fixtures", testAdminToken, nil, "")
	var fl control.FixtureList
	json.Unmarshal(list, &fl)
	if len(fl.Fixtures) != 2 {
		t.Fatalf("%d fixtures kept, want 2: %s", len(fl.Fixtures), list)
	}
	if st, _ := callWithKey(h, "GET", "/api/v1/instance", "a-key-of-one-0123456789", f.Instances[0], ""); st != 200 {
		t.Fatalf("the first fixture's key after the refused ones: %d", st)
	}
}

// Deleting a fixture removes what it made: its key is an unknown key, a token issued to
// its principal is refused with 401, its instance is gone, its scoped fault rule too, and
// its audit events stay. Another fixture is untouched.
func TestFixtureDelete(t *testing.T) {
	h := newHarness(t)
	doc := `{"accounts": [{}], "instances": [{"plan_id": "p"}], "principals": [{}]}`
	f, other := createFixture(t, h, "application/json", doc), createFixture(t, h, "application/json", doc)
	key := keyOf(t, f, 0)
	token := h.token(key)
	if resp, b := h.do("GET", "/api/v1/instance", token, map[string]string{"Service-CRN": f.Instances[0]}, ""); resp.StatusCode != 200 {
		t.Fatalf("before the delete: %d %s", resp.StatusCode, b)
	}
	if resp, b := h.do("POST", "/control/v1/faults", testAdminToken, jsonBody, `{"fixture": "`+f.Id+`", "status": 503}`); resp.StatusCode != 201 {
		t.Fatalf("a rule scoped to the fixture: %d %s", resp.StatusCode, b)
	}
	if resp, b := h.do("DELETE", "/control/v1/fixtures/"+f.Id, testAdminToken, nil, ""); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, b)
	}
	resp, b := h.do("GET", "/api/v1/instance", token, map[string]string{"Service-CRN": f.Instances[0]}, "")
	checkError(t, resp, b, 401, "unauthorized")
	if st, body := callWithKey(h, "GET", "/api/v1/instance", key, f.Instances[0], ""); st != 401 || !strings.Contains(body, "not valid") {
		t.Errorf("the deleted fixture's key: %d %s", st, body)
	}
	resp, b = h.do("POST", "/identity/token", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey="+key)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "BXNIM0415E") {
		t.Errorf("a token for the deleted fixture's key: %d %s", resp.StatusCode, b)
	}
	resp, b = h.do("POST", "/control/v1/usage", testAdminToken, jsonBody, fmt.Sprintf(`{"instance":%q,"seconds":1}`, f.Instances[0]))
	checkError(t, resp, b, 404, "instance_not_found") // the instance is gone
	if _, rules := h.do("GET", "/control/v1/faults", testAdminToken, nil, ""); string(rules) != `{"faults":[]}`+"\n" {
		t.Errorf("the fixture's rule outlived it: %s", rules)
	}
	resp, b = h.do("GET", "/control/v1/fixtures/"+f.Id, testAdminToken, nil, "")
	checkError(t, resp, b, 404, "fixture_not_found")
	resp, b = h.do("DELETE", "/control/v1/fixtures/"+f.Id, testAdminToken, nil, "")
	checkError(t, resp, b, 404, "fixture_not_found")
	resp, b = h.do("POST", "/control/v1/faults", testAdminToken, jsonBody, `{"fixture": "`+f.Id+`", "status": 503}`)
	if ec := checkError(t, resp, b, 404, "fixture_not_found"); ec.Errors[0].Target == nil || ec.Errors[0].Target.Name != "fixture" {
		t.Errorf("a rule for a deleted fixture: %s", b)
	}
	if st, body := callWithKey(h, "GET", "/api/v1/instance", keyOf(t, other, 0), other.Instances[0], ""); st != 200 {
		t.Errorf("the other fixture after the delete: %d %s", st, body)
	}
	h.srv.FlushAudit()
	if _, events := h.do("GET", "/control/v1/audit-events?initiator="+f.Principals[0].Id, testAdminToken, nil, ""); !strings.Contains(string(events), f.Instances[0]) {
		t.Errorf("the deleted fixture's audit events are gone: %s", events)
	}
}

// Resetting a fixture puts its instances, keys and policies back as its document made them,
// and nothing else changes: another fixture's writes and the demo's stay. A reset of the
// whole server removes every fixture.
func TestFixtureReset(t *testing.T) {
	h := newHarness(t)
	doc := `{"accounts": [{}], "instances": [{"plan_id": "p", "instance_limit": 60, "usage_consumed_seconds": 12}], "principals": [{}]}`
	f, other := createFixture(t, h, "application/json", doc), createFixture(t, h, "application/json", doc)
	for _, x := range []control.Fixture{f, other} {
		if st, body := callWithKey(h, "PUT", "/api/v1/instances/configuration", keyOf(t, x, 0), x.Instances[0], `{"instance_limit": 3600}`); st != 204 {
			t.Fatalf("PUT: %d %s", st, body)
		}
		recordUsage(t, h, x.Instances[0], 100)
	}
	if st, body := callWithKey(h, "PUT", "/api/v1/instances/configuration", keyAdmin, crnA2, `{"instance_limit": 3600}`); st != 204 {
		t.Fatalf("PUT on the demo: %d %s", st, body)
	}
	if resp, b := h.do("POST", "/control/v1/fixtures/"+f.Id+"/reset", testAdminToken, nil, ""); resp.StatusCode != 204 {
		t.Fatalf("reset: %d %s", resp.StatusCode, b)
	}
	for _, c := range []struct {
		what, key, crn, want string
	}{
		{"the reset fixture", keyOf(t, f, 0), f.Instances[0], `"instance_limit":60,`},
		{"the other fixture", keyOf(t, other, 0), other.Instances[0], `"instance_limit":3600,`},
		{"the demo", keyAdmin, crnA2, `"instance_limit":3600,`},
	} {
		if st, body := callWithKey(h, "GET", "/api/v1/instance", c.key, c.crn, ""); st != 200 || !strings.Contains(body, c.want) {
			t.Errorf("%s after the fixture's reset: %d %s, want %s", c.what, st, body, c.want)
		}
	}
	if st, body := callWithKey(h, "GET", "/api/v1/instances/usage", keyOf(t, f, 0), f.Instances[0], ""); st != 200 || !strings.Contains(body, `"usage_consumed_seconds":12,`) {
		t.Errorf("the reset fixture's usage: %d %s", st, body)
	}
	resp, b := h.do("POST", "/control/v1/fixtures/fx-none/reset", testAdminToken, nil, "")
	checkError(t, resp, b, 404, "fixture_not_found")

	if resp, b := h.do("POST", "/control/v1/reset", testAdminToken, nil, ""); resp.StatusCode != 204 {
		t.Fatalf("reset: %d %s", resp.StatusCode, b)
	}
	if _, list := h.do("GET", "/control/v1/fixtures", testAdminToken, nil, ""); string(list) != `{"fixtures":[]}`+"\n" {
		t.Errorf("fixtures after a reset of the server: %s", list)
	}
	if st, _ := callWithKey(h, "GET", "/api/v1/instance", keyOf(t, other, 0), other.Instances[0], ""); st != 401 {
		t.Errorf("a fixture's key after a reset of the server: %d", st)
	}
}

// A fault rule scoped to a fixture fires only on calls on its instances or by its
// principals: another test's calls on a shared server are not hit.
func TestFaultRuleScopedToFixture(t *testing.T) {
	h := newHarness(t)
	doc := `{"accounts": [{}], "instances": [{"plan_id": "p"}], "principals": [{}]}`
	f, other := createFixture(t, h, "application/json", doc), createFixture(t, h, "application/json", doc)
	resp, b := h.do("POST", "/control/v1/faults", testAdminToken, jsonBody, `{"fixture": "`+f.Id+`", "status": 503}`)
	if resp.StatusCode != 201 || !strings.Contains(string(b), `"fixture":"`+f.Id+`"`) {
		t.Fatalf("add: %d %s", resp.StatusCode, b)
	}
	for _, c := range []struct {
		what, key, crn string
		status         int
	}{
		{"the fixture's principal on its instance", keyOf(t, f, 0), f.Instances[0], 503},
		{"the other fixture", keyOf(t, other, 0), other.Instances[0], 200},
		{"the demo", keyAdmin, crnA1, 200},
	} {
		if st, body := callWithKey(h, "GET", "/api/v1/instance", c.key, c.crn, ""); st != c.status {
			t.Errorf("%s: %d %s, want %d", c.what, st, body, c.status)
		}
	}
}

// A body a schema requires no field of, sent without its content type, is named as a JSON
// object, not as one "with the fields ,".
func TestBodyWithNoRequiredFieldsNamesItsShape(t *testing.T) {
	h := newHarness(t)
	resp, b := h.do("POST", "/control/v1/faults", testAdminToken, nil, `{"status": 500}`)
	ec := checkError(t, resp, b, 400, "invalid_body")
	if strings.Contains(ec.Errors[0].Message, "fields ,") || !strings.Contains(ec.Errors[0].Message, "a JSON object") {
		t.Fatalf("the message: %s", ec.Errors[0].Message)
	}
}
