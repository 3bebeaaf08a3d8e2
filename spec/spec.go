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
)

// Vendor extensions that every operation carries.
const (
	ExtIAMActions  = "x-iam-actions"
	ExtAuditEvents = "x-audit-events"
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
	return newDocument(t, false)
}

// New validates t and indexes its operations. Every operation must name its IAM actions
// and audit events: the server cannot enforce or record what the document does not say.
func New(t *openapi3.T) (*Document, error) { return newDocument(t, true) }

func newDocument(t *openapi3.T, iam bool) (*Document, error) {
	if err := t.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
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
			if iam {
				var err error
				if o.IAMActions, err = stringList(op, ExtIAMActions); err != nil {
					return nil, err
				}
				if o.AuditEvents, err = stringList(op, ExtAuditEvents); err != nil {
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

// Operation returns the operation with the given operationId, or nil.
func (d *Document) Operation(id string) *Operation { return d.byID[id] }

func stringList(op *openapi3.Operation, ext string) ([]string, error) {
	raw, ok := op.Extensions[ext]
	if !ok {
		return nil, fmt.Errorf("spec: operation %s has no %s", op.OperationID, ext)
	}
	items, ok := raw.([]any)
	if !ok || len(items) == 0 {
		return nil, fmt.Errorf("spec: operation %s: %s must be a non-empty list of strings", op.OperationID, ext)
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("spec: operation %s: %s must be a non-empty list of strings", op.OperationID, ext)
		}
		out = append(out, s)
	}
	return out, nil
}
