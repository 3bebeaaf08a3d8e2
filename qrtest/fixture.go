package qrtest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/qrapi/qrapi/client"
	"github.com/qrapi/qrapi/domain"
)

// Fixture is a test's own state on a server other tests share: the accounts, instances
// and principals the control API made from a seed document, with its principals' API
// keys. Its test deletes it when it ends.
type Fixture struct {
	ID         string
	Accounts   []string            // account ids, in the document's order
	Instances  []string            // instance CRNs, in the document's order
	Principals []string            // principal ids, in the document's order
	Keys       map[string][]string // each principal's API keys
	srv        *Server
}

// Fixture makes a fixture from doc (nil: one account with one instance of plan
// "fixture-plan", and one principal, Administrator of the account) and deletes it when
// the test ends. What doc leaves out (ids, CRNs, keys, policies) the server generates.
func (s *Server) Fixture(t TB, doc *domain.Seed) *Fixture {
	t.Helper()
	if doc == nil {
		doc = &domain.Seed{Accounts: []domain.SeedAccount{{}}, Instances: []domain.SeedInstance{{PlanID: "fixture-plan"}}, Principals: []domain.SeedPrincipal{{}}}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("qrtest: fixture document: %v", err)
	}
	r, err := s.control.CreateFixtureWithBodyWithResponse(context.Background(), "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("qrtest: create fixture: %v", err)
	}
	answered(t, "create fixture", r.StatusCode(), http.StatusCreated, r.Body)
	f := &Fixture{ID: r.JSON201.Id, Accounts: r.JSON201.Accounts, Instances: r.JSON201.Instances, Keys: map[string][]string{}, srv: s}
	for _, p := range r.JSON201.Principals {
		f.Principals = append(f.Principals, p.Id)
		if p.ApiKeys != nil {
			f.Keys[p.Id] = *p.ApiKeys
		}
	}
	t.Cleanup(func() { f.delete(t) })
	return f
}

// Key is the first API key of the fixture's first principal.
func (f *Fixture) Key() string {
	if len(f.Principals) == 0 || len(f.Keys[f.Principals[0]]) == 0 {
		return ""
	}
	return f.Keys[f.Principals[0]][0]
}

// Client returns a client of the API authenticated with Key, on the fixture's first
// instance; opts come after, to act as another principal or on another instance.
func (f *Fixture) Client(t TB, opts ...client.Option) *client.Client {
	t.Helper()
	all := []client.Option{client.WithAPIKey(f.Key())}
	if len(f.Instances) > 0 {
		all = append(all, client.WithCRN(f.Instances[0]))
	}
	return f.srv.Client(t, append(all, opts...)...)
}

// Reset puts the fixture's state back as its document made it; nothing else changes.
func (f *Fixture) Reset(t TB) {
	t.Helper()
	r, err := f.srv.control.ResetFixtureWithResponse(context.Background(), f.ID)
	if err != nil {
		t.Fatalf("qrtest: reset fixture: %v", err)
	}
	answered(t, "reset fixture", r.StatusCode(), http.StatusNoContent, r.Body)
}

// delete removes the fixture; one already gone (a Reset of the server took it) is fine.
func (f *Fixture) delete(t TB) {
	t.Helper()
	r, err := f.srv.control.DeleteFixtureWithResponse(context.Background(), f.ID)
	if err != nil {
		t.Fatalf("qrtest: delete fixture %s: %v", f.ID, err)
	}
	if r.StatusCode() != http.StatusNotFound {
		answered(t, "delete fixture", r.StatusCode(), http.StatusNoContent, r.Body)
	}
}
