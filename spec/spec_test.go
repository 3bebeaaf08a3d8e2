package spec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/spec"
)

// The file on disk, not only the embedded copy: a stale `make generate` shows up here too.
func loadFile(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(filepath.Join("..", "openapi.yaml"))
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	return doc
}

func TestDocumentIsValidWithExamples(t *testing.T) {
	doc := loadFile(t)
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
}

func TestEmbeddedDocumentMatchesFile(t *testing.T) {
	file := loadFile(t)
	d, err := spec.Load()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(file)
	b, _ := json.Marshal(d.T)
	if !bytes.Equal(a, b) {
		t.Fatal("the document embedded in gen/ differs from openapi.yaml: run `make generate`")
	}
}

func TestOperationsAreThePagesFive(t *testing.T) {
	d, err := spec.Load()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		method, path, iam, tag string
		codes                  []string
	}{
		"get_instance":                   {"GET", "/v1/instance", "quantum-computing.instance.read", "Instances", []string{"200", "400", "401", "403", "404", "429", "500", "503"}},
		"get_instance_configuration":     {"GET", "/v1/instances/configuration", "quantum-computing.instance.configuration.read", "Instances", []string{"200", "400", "401", "403", "404", "429", "500", "503"}},
		"replace_instance_configuration": {"PUT", "/v1/instances/configuration", "quantum-computing.instance.configuration.update", "Instances", []string{"204", "400", "401", "403", "404", "409", "413", "429", "500", "503"}},
		"get_usage":                      {"GET", "/v1/instances/usage", "quantum-computing.instance-usage.read", "Instances", []string{"200", "400", "401", "403", "404", "429", "500", "503"}},
		"get_account":                    {"GET", "/v1/accounts/{id}", "quantum-computing.account-configuration.read", "Accounts", []string{"200", "400", "401", "404", "429", "500", "503"}},
	}
	if len(d.Operations) != len(want) {
		t.Fatalf("document has %d operations, want %d", len(d.Operations), len(want))
	}
	for id, w := range want {
		op := d.Operation(id)
		if op == nil {
			t.Errorf("no operation %s", id)
			continue
		}
		if op.Method != w.method || op.Path != w.path {
			t.Errorf("%s at %s %s, want %s %s", id, op.Method, op.Path, w.method, w.path)
		}
		// The page names one action and one event, and they are the same string.
		if !reflect.DeepEqual(op.IAMActions, []string{w.iam}) || !reflect.DeepEqual(op.AuditEvents, []string{w.iam}) {
			t.Errorf("%s: iam %v audit %v, want [%s]", id, op.IAMActions, op.AuditEvents, w.iam)
		}
		if !reflect.DeepEqual(op.Operation.Tags, []string{w.tag}) {
			t.Errorf("%s: tags %v, want [%s]", id, op.Operation.Tags, w.tag)
		}
		var codes []string
		for c := range op.Operation.Responses.Map() {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		if !reflect.DeepEqual(codes, w.codes) {
			t.Errorf("%s: status codes %v, want %v", id, codes, w.codes)
		}
		// Any IBM Cloud API may answer 429 and 503 (the API Handbook), with Retry-After.
		for _, c := range []string{"429", "503"} {
			if r := op.Operation.Responses.Value(c); r == nil || r.Value.Headers["Retry-After"] == nil {
				t.Errorf("%s: %s does not declare Retry-After", id, c)
			}
		}
	}
}

// Every operation: IAM actions, audit events, bearer security, and the error container
// on every error answer.
func TestEveryOperationIsComplete(t *testing.T) {
	doc := loadFile(t)
	errSchema := doc.Components.Schemas["ErrorContainer"]
	if errSchema == nil {
		t.Fatal("no ErrorContainer schema")
	}
	n := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			n++
			name := method + " " + path
			// IBM's own form, exactly: the action and the event of the operation, each once.
			id := op.OperationID
			want := map[string]any{
				spec.ExtIAMActions:  map[string]any{"actions": []any{map[string]any{"name": pageAction[id]}}},
				spec.ExtAuditEvents: map[string]any{"events": []any{map[string]any{"name": pageAction[id]}}},
			}
			for ext, w := range want {
				if got := op.Extensions[ext]; !reflect.DeepEqual(got, w) || pageAction[id] == "" {
					t.Errorf("%s: %s is %v, want %v", name, ext, got, w)
				}
			}
			sec := op.Security
			if sec == nil {
				sec = &doc.Security
			}
			if len(*sec) == 0 {
				t.Errorf("%s: no security requirement", name)
			}
			// Either credential, each alone: a bearer token or an API key.
			if len(*sec) != 2 || len((*sec)[0]) != 1 || len((*sec)[1]) != 1 || (*sec)[0]["IAMBearer"] == nil || (*sec)[1]["IAMApiKey"] == nil {
				t.Errorf("%s: security %v, want IAMBearer or IAMApiKey", name, *sec)
			}
			for code, ref := range op.Responses.Map() {
				if code[0] == '2' {
					continue
				}
				mt := ref.Value.Content.Get("application/json")
				if mt == nil || mt.Schema == nil || mt.Schema.Value != errSchema.Value {
					t.Errorf("%s %s: error answer is not the ErrorContainer", name, code)
				}
				if ref.Value.Headers["X-Correlation-ID"] == nil {
					t.Errorf("%s %s: no X-Correlation-ID header", name, code)
				}
			}
		}
	}
	if n != 5 {
		t.Errorf("walked %d operations, want 5", n)
	}
}

// pageAction is the IAM action and Activity Tracker event of each operation, as the
// reference pages name them.
var pageAction = map[string]string{
	"get_instance":                   domain.ActionInstanceRead,
	"get_instance_configuration":     domain.ActionConfigurationRead,
	"replace_instance_configuration": domain.ActionConfigurationUpdate,
	"get_usage":                      domain.ActionUsageRead,
	"get_account":                    domain.ActionAccountConfigurationRd,
}

func TestTheMissingExtensionIsRefused(t *testing.T) {
	doc := loadFile(t)
	delete(doc.Paths.Find("/v1/instance").Get.Extensions, spec.ExtIAMActions)
	if _, err := spec.New(doc); err == nil || !strings.Contains(err.Error(), "get_instance has no x-ibm-permissions") {
		t.Fatalf("New accepted an operation without x-ibm-permissions: %v", err)
	}
	doc = loadFile(t)
	doc.Paths.Find("/v1/instance").Get.Extensions[spec.ExtIAMActions] = []any{"quantum-computing.instance.read"}
	if _, err := spec.New(doc); err == nil || !strings.Contains(err.Error(), "must be {actions: [{name:") {
		t.Fatalf("New accepted x-ibm-permissions not in IBM's form: %v", err)
	}
}

// Every action the document requires is granted by some role; a misspelt one is caught.
func TestEveryActionIsGrantedByARole(t *testing.T) {
	d, err := spec.New(loadFile(t))
	if err != nil {
		t.Fatal(err)
	}
	if bad := d.Ungranted(domain.Granted); len(bad) != 0 {
		t.Fatalf("actions no role grants: %v", bad)
	}
	doc := loadFile(t)
	doc.Paths.Find("/v1/instance").Get.Extensions[spec.ExtIAMActions] = map[string]any{"actions": []any{map[string]any{"name": "quantum-computing.instance.reed"}}}
	d, err = spec.New(doc)
	if err != nil {
		t.Fatal(err)
	}
	if bad := d.Ungranted(domain.Granted); len(bad) != 1 || bad[0] != `operation get_instance requires IAM action "quantum-computing.instance.reed"` {
		t.Fatalf("a misspelt action was not caught: %v", bad)
	}
}

// Every JSON example on the three pages, copied to testdata/examples (file names start
// with the page's number), validates against its schema; and documents that break the
// pages' rules do not.
func TestPageExamplesValidate(t *testing.T) {
	doc := loadFile(t)
	schema := func(name string) *openapi3.Schema { return doc.Components.Schemas[name].Value }
	cases := []struct {
		file, schema string
	}{
		{"000_get_instance_200.json", "Instance"},
		{"000_get_instance_configuration_200.json", "InstanceConfiguration"},
		{"000_get_usage_200.json", "InstanceUsage"},
		{"001_get_instance_200.json", "Instance"},
		{"001_get_instance_configuration_200.json", "InstanceConfiguration"},
		{"001_get_usage_200.json", "InstanceUsage"},
		{"002_get_account_200.json", "AccountConfiguration"},
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "examples", "*.json"))
	if len(files) != len(cases) {
		t.Errorf("testdata has %d examples, the table %d", len(files), len(cases))
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "examples", c.file))
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			if err := schema(c.schema).VisitJSON(v); err != nil {
				t.Fatalf("%s does not validate against %s: %v", c.file, c.schema, err)
			}
		})
	}

	bad := []struct {
		name, schema, body string
	}{
		{"usage without instance_id", "InstanceUsage", `{"plan_id":"p","usage_consumed_seconds":1}`},
		{"usage period not an object", "InstanceUsage", `{"instance_id":"i","plan_id":"p","usage_consumed_seconds":1,"usage_period":"x"}`},
		{"limit seconds as a number", "Instance", `{"instance_limit_seconds":61}`},
		{"PUT limit 0", "InstanceConfigurationUpdate", `{"instance_limit":0}`},
		{"PUT limit negative", "InstanceConfigurationUpdate", `{"instance_limit":-5}`},
		{"PUT limit past int32", "InstanceConfigurationUpdate", `{"instance_limit":2147483648}`},
		{"PUT limit fractional", "InstanceConfigurationUpdate", `{"instance_limit":1.5}`},
		{"PUT limit a string", "InstanceConfigurationUpdate", `{"instance_limit":"60"}`},
		{"PUT without the field", "InstanceConfigurationUpdate", `{}`},
		{"account without plans", "AccountConfiguration", `{}`},
		{"plan without backends", "AccountConfiguration", `{"plans":[{"plan_id":"p"}]}`},
		{"negative unallocated", "AccountConfiguration", `{"plans":[{"plan_id":"p","backends":[],"unallocated_usage_seconds":-1}]}`},
		{"error with no errors", "ErrorContainer", `{"trace":"6a0f3bb2-0c4e-4a8d-9d0f-5a3f3e1c2b7d","errors":[]}`},
		{"error code not snake_case", "ErrorContainer", `{"trace":"6a0f3bb2-0c4e-4a8d-9d0f-5a3f3e1c2b7d","errors":[{"code":"NotFound","message":"m"}]}`},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(b.body), &v); err != nil {
				t.Fatal(err)
			}
			if err := schema(b.schema).VisitJSON(v); err == nil {
				t.Fatalf("%s accepted %s", b.schema, b.body)
			}
		})
	}
	good := []struct {
		name, schema, body string
	}{
		{"PUT null removes the limit", "InstanceConfigurationUpdate", `{"instance_limit":null}`},
		{"PUT the int32 maximum", "InstanceConfigurationUpdate", `{"instance_limit":2147483647}`},
		{"usage with a period", "InstanceUsage", `{"instance_id":"i","plan_id":"p","usage_consumed_seconds":1,"usage_period":{"start_time":"2025-05-17T00:00:00Z","end_time":"2025-06-17T00:00:00Z"}}`},
		{"empty configuration", "InstanceConfiguration", `{}`},
		{"no plans", "AccountConfiguration", `{"plans":[]}`},
	}
	for _, g := range good {
		t.Run(g.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(g.body), &v); err != nil {
				t.Fatal(err)
			}
			if err := schema(g.schema).VisitJSON(v); err != nil {
				t.Fatalf("%s refused %s: %v", g.schema, g.body, err)
			}
		})
	}
}
