// Package spec loads the embedded openapi.yaml once and reads from it what the rest of
// the program needs at run time: each operation's route, IAM actions and audit events.
// Keeping this in one place is what lets the document stay the single source of truth.
package spec

import (
	"context"
	"fmt"
	"sort"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/qrapi/qrapi/gen"
	"github.com/qrapi/qrapi/gen/control"
	"github.com/qrapi/qrapi/gen/platform"
)

// Vendor extensions that every operation carries.
const (
	ExtIAMActions  = "x-ibm-permissions" // {actions: [{name: …}]}, as IBM's own document
	ExtAuditEvents = "x-ibm-events"      // {events: [{name: …}]}
)

// Operation is one operation of the document, with the facts the server reads at run time.
type Operation struct {
	ID          string // operationId, e.g. get_instance
	Method      string // HTTP method, upper case
	Path        string // document path, e.g. /v1/accounts/{id}
	IAMActions  []string
	AuditEvents []string
	PathItem    *openapi3.PathItem
	Operation   *openapi3.Operation
}

// Document is the loaded, validated openapi.yaml with its operations indexed.
type Document struct {
	T          *openapi3.T
	Operations []*Operation // sorted by Path, then Method
	byID       map[string]*Operation
}

// Load parses the document embedded in package gen and validates it.
func Load() (*Document, error) {
	t, err := gen.GetSwagger()
	if err != nil {
		return nil, fmt.Errorf("spec: load embedded document: %w", err)
	}
	return New(t)
}

// LoadControl parses the control API's document (openapi-control.yaml), whose operations
// are not IBM's and carry no IAM actions or audit events.
func LoadControl() (*Document, error) {
	t, err := control.GetSwagger()
	if err != nil {
		return nil, fmt.Errorf("spec: load embedded control document: %w", err)
	}
	return newDocument(t, false, false)
}

// LoadPlatform parses the document of the IBM Cloud lookups the server answers
// (openapi-platform.yaml), whose operations carry audit events and no IAM actions: what a
// caller sees, their handlers decide from its policies.
func LoadPlatform() (*Document, error) {
	t, err := platform.GetSwagger()
	if err != nil {
		return nil, fmt.Errorf("spec: load embedded platform document: %w", err)
	}
	return newDocument(t, false, true)
}

// New validates t and indexes its operations. Every operation must name its IAM actions
// and audit events: the server cannot enforce or record what the document does not say.
func New(t *openapi3.T) (*Document, error) { return newDocument(t, true, true) }

// newDocument validates t and indexes its operations, requiring of each its IAM actions
// (iam) and its audit events (events).
func newDocument(t *openapi3.T, iam, events bool) (*Document, error) {
	if err := t.Validate(context.Background(), openapi3.EnableExamplesValidation(), openapi3.SetRegexCompiler(CompilePattern)); err != nil {
		return nil, fmt.Errorf("spec: invalid document: %w", err)
	}
	d := &Document{T: t, byID: map[string]*Operation{}}
	for path, item := range t.Paths.Map() {
		for method, op := range item.Operations() {
			o := &Operation{
				ID:        op.OperationID,
				Method:    method,
				Path:      path,
				PathItem:  item,
				Operation: op,
			}
			var err error
			if iam {
				if o.IAMActions, err = namedList(op, ExtIAMActions, "actions"); err != nil {
					return nil, err
				}
			}
			if events {
				if o.AuditEvents, err = namedList(op, ExtAuditEvents, "events"); err != nil {
					return nil, err
				}
			}
			d.Operations = append(d.Operations, o)
			d.byID[o.ID] = o
		}
	}
	sort.Slice(d.Operations, func(i, j int) bool {
		a, b := d.Operations[i], d.Operations[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Method < b.Method
	})
	return d, nil
}

// Ungranted lists, as "operation requires IAM action "…"", every action the document's
// operations require that granted does not grant: each would refuse every call that needs it.
func (d *Document) Ungranted(granted func(action string) bool) []string {
	var out []string
	for _, op := range d.Operations {
		for _, a := range op.IAMActions {
			if !granted(a) {
				out = append(out, fmt.Sprintf("operation %s requires IAM action %q", op.ID, a))
			}
		}
	}
	return out
}

// Operation returns the operation with the given operationId, or nil.
func (d *Document) Operation(id string) *Operation { return d.byID[id] }

// namedList reads IBM's form of an operation's extension: {key: [{name: …}, …]}.
func namedList(op *openapi3.Operation, ext, key string) ([]string, error) {
	raw, ok := op.Extensions[ext]
	if !ok {
		return nil, fmt.Errorf("spec: operation %s has no %s", op.OperationID, ext)
	}
	bad := fmt.Errorf("spec: operation %s: %s must be {%s: [{name: …}, …]} with at least one name", op.OperationID, ext, key)
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, bad
	}
	items, ok := m[key].([]any)
	if !ok || len(items) == 0 {
		return nil, bad
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		entry, ok := it.(map[string]any)
		if !ok {
			return nil, bad
		}
		name, ok := entry["name"].(string)
		if !ok || name == "" {
			return nil, bad
		}
		out = append(out, name)
	}
	return out, nil
}
