package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/gen/control"
	"github.com/qrapi/qrapi/seed"
)

// CreateFixture adds a seed document, in JSON or YAML, to the running state as a fixture.
// The answer is the only place its API keys are shown; the log names the fixture only.
func (h controlHandlers) CreateFixture(ctx context.Context, req control.CreateFixtureRequestObject) (control.CreateFixtureResponseObject, error) {
	var (
		doc []byte
		err error
	)
	if req.JSONBody != nil {
		doc, err = json.Marshal(req.JSONBody) // validated against the document's schema
	} else {
		doc, err = io.ReadAll(req.Body)
	}
	if err != nil {
		return nil, err
	}
	sd, err := seed.ParseDocument(doc)
	if err != nil {
		return nil, err
	}
	now := h.s.now()
	f, keys, err := domain.NewFixture(sd, now)
	if err != nil {
		return nil, err
	}
	if err := h.s.store.AddFixture(ctx, f, now); err != nil {
		return nil, err
	}
	out := fixtureOut(f)
	for i := range out.Principals {
		k := keys[out.Principals[i].Id]
		out.Principals[i].ApiKeys = &k
	}
	h.s.log.InfoContext(ctx, "fixture created", slog.String("fixture", f.ID), slog.Int("accounts", len(out.Accounts)),
		slog.Int("instances", len(out.Instances)), slog.Int("principals", len(out.Principals)))
	return control.CreateFixture201JSONResponse(out), nil
}

// ListFixtures lists the fixtures, without keys.
func (h controlHandlers) ListFixtures(ctx context.Context, _ control.ListFixturesRequestObject) (control.ListFixturesResponseObject, error) {
	fs, err := h.s.store.Fixtures(ctx)
	if err != nil {
		return nil, err
	}
	out := control.FixtureList{Fixtures: make([]control.Fixture, len(fs))}
	for i := range fs {
		out.Fixtures[i] = fixtureOut(&fs[i])
	}
	return control.ListFixtures200JSONResponse(out), nil
}

// GetFixture shows one fixture, without keys.
func (h controlHandlers) GetFixture(ctx context.Context, req control.GetFixtureRequestObject) (control.GetFixtureResponseObject, error) {
	f, err := h.s.store.Fixture(ctx, req.Id)
	if err != nil {
		return nil, naming(err, "parameter", "id")
	}
	return control.GetFixture200JSONResponse(fixtureOut(f)), nil
}

// DeleteFixture removes a fixture and everything it made.
func (h controlHandlers) DeleteFixture(ctx context.Context, req control.DeleteFixtureRequestObject) (control.DeleteFixtureResponseObject, error) {
	if err := h.s.store.DeleteFixture(ctx, req.Id); err != nil {
		return nil, naming(err, "parameter", "id")
	}
	h.s.log.InfoContext(ctx, "fixture deleted", slog.String("fixture", req.Id))
	return control.DeleteFixture204Response{}, nil
}

// ResetFixture puts a fixture's state back as its document made it.
func (h controlHandlers) ResetFixture(ctx context.Context, req control.ResetFixtureRequestObject) (control.ResetFixtureResponseObject, error) {
	if err := h.s.store.ResetFixture(ctx, req.Id, h.s.now()); err != nil {
		return nil, naming(err, "parameter", "id")
	}
	return control.ResetFixture204Response{}, nil
}

// fixtureOut is a fixture as the control API shows it, without keys.
func fixtureOut(f *domain.Fixture) control.Fixture {
	accounts, instances, principals := f.Summary()
	out := control.Fixture{Id: f.ID, CreatedAt: f.CreatedAt, Accounts: accounts, Instances: instances, Principals: make([]control.FixturePrincipal, len(principals))}
	if out.Accounts == nil {
		out.Accounts = []string{}
	}
	if out.Instances == nil {
		out.Instances = []string{}
	}
	for i, p := range principals {
		out.Principals[i] = control.FixturePrincipal{Id: p.ID, Type: control.FixturePrincipalType(p.Type), Name: p.Name, Account: p.AccountID}
	}
	return out
}
