package spec_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/oapi-codegen/nullable"

	"github.com/qrapi/qrapi/gen"
	"github.com/qrapi/qrapi/spec"
)

// The generated code is what the server and client build on; these tests pin the
// promises made about it.

func TestStrictServerInterfaceHasTheFiveOperations(t *testing.T) {
	typ := reflect.TypeFor[gen.StrictServerInterface]()
	var got []string
	for i := range typ.NumMethod() {
		got = append(got, typ.Method(i).Name)
	}
	want := []string{"GetAccount", "GetInstance", "GetInstanceConfiguration", "GetUsage", "ReplaceInstanceConfiguration"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("StrictServerInterface methods %v, want %v", got, want)
	}
}

func TestPutBodyTellsNullFromAbsent(t *testing.T) {
	f, ok := reflect.TypeFor[gen.InstanceConfigurationUpdate]().FieldByName("InstanceLimit")
	if !ok || f.Type != reflect.TypeFor[nullable.Nullable[int32]]() {
		t.Fatalf("InstanceConfigurationUpdate.InstanceLimit is %v, want nullable.Nullable[int32]", f.Type)
	}
	var null, absent, set gen.InstanceConfigurationUpdate
	for body, into := range map[string]*gen.InstanceConfigurationUpdate{`{"instance_limit":null}`: &null, `{}`: &absent, `{"instance_limit":60}`: &set} {
		if err := jsonUnmarshal(body, into); err != nil {
			t.Fatal(err)
		}
	}
	if !null.InstanceLimit.IsNull() || absent.InstanceLimit.IsSpecified() || set.InstanceLimit.MustGet() != 60 {
		t.Fatalf("null=%v absent=%v set=%v", null, absent, set)
	}
}

func parseGen(t *testing.T, file string) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "gen", file), nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDeprecatedFieldsCarryDeprecatedComments(t *testing.T) {
	f := parseGen(t, "models.gen.go")
	want := map[string]bool{"InstanceLimit": false, "QctrlEnabled": false}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Instance" {
			return true
		}
		for _, fld := range ts.Type.(*ast.StructType).Fields.List {
			name := fld.Names[0].Name
			deprecated := fld.Doc != nil && strings.Contains(fld.Doc.Text(), "\nDeprecated: ")
			if _, ok := want[name]; ok {
				want[name] = deprecated
			} else if deprecated {
				t.Errorf("Instance.%s is marked deprecated, the page does not", name)
			}
		}
		return false
	})
	for name, ok := range want {
		if !ok {
			t.Errorf("Instance.%s has no // Deprecated comment", name)
		}
	}
}

// For every status code of every operation in the document, the strict server has a typed
// response object: <Operation><code>JSONResponse, or <Operation><code>Response for no body.
func TestEveryStatusCodeHasATypedResponse(t *testing.T) {
	f := parseGen(t, "server.gen.go")
	types := map[string]bool{}
	for _, d := range f.Decls {
		if gd, ok := d.(*ast.GenDecl); ok {
			for _, s := range gd.Specs {
				if ts, ok := s.(*ast.TypeSpec); ok {
					types[ts.Name.Name] = true
				}
			}
		}
	}
	d, err := spec.Load()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, op := range d.Operations {
		goName := goOperationName(op.ID)
		for code := range op.Operation.Responses.Map() {
			n++
			if !types[goName+code+"JSONResponse"] && !types[goName+code+"Response"] {
				t.Errorf("%s %s: no typed response object %s%sJSONResponse", op.ID, code, goName, code)
			}
		}
	}
	if n < 30 {
		t.Errorf("checked %d status codes, expected the document's 31", n)
	}
}

func goOperationName(id string) string {
	var b strings.Builder
	for _, part := range strings.Split(id, "_") {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}
