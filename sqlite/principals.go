package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/qrapi/qrapi/domain"
)

// identity is a cached principal with its policies.
type identity struct {
	principal domain.Principal
	policies  []domain.Policy
}

// PrincipalByAPIKey finds the principal owning an API key, by the key's hash.
func (s *Store) PrincipalByAPIKey(ctx context.Context, apiKey string) (*domain.Principal, error) {
	var id string
	row, err := s.queryRow(ctx, `SELECT principal_id FROM api_keys WHERE hash = ?`, domain.HashAPIKey(apiKey))
	if err != nil {
		return nil, err
	}
	err = row.Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.APIKeyNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read api key: %w", err)
	}
	p, _, err := s.Identity(ctx, id)
	return p, err
}

// Identity returns a principal and its policies; principals and policies change only
// through Load, which drops the cache before it returns.
func (s *Store) Identity(ctx context.Context, id string) (*domain.Principal, []domain.Policy, error) {
	s.cacheMu.RLock()
	cached, gen := s.identities[id], s.cacheGen
	s.cacheMu.RUnlock()
	if cached != nil {
		p := cached.principal
		return &p, slices.Clone(cached.policies), nil
	}
	p := domain.Principal{ID: id}
	row, err := s.queryRow(ctx, `SELECT type, name, account_id, coalesce(fixture_id, '') FROM principals WHERE id = ?`, id)
	if err != nil {
		return nil, nil, err
	}
	err = row.Scan(&p.Type, &p.Name, &p.AccountID, &p.FixtureID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, domain.PrincipalNotFound(id)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: read principal: %w", err)
	}
	rows, err := s.query(ctx, `SELECT role, account_id, instance_crn FROM policies WHERE principal_id = ? ORDER BY rowid`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: read policies: %w", err)
	}
	defer rows.Close()
	var policies []domain.Policy
	for rows.Next() {
		pol := domain.Policy{PrincipalID: id}
		if err := rows.Scan(&pol.Role, &pol.AccountID, &pol.InstanceCRN); err != nil {
			return nil, nil, err
		}
		policies = append(policies, pol)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	s.cacheMu.Lock()
	if s.cacheGen == gen {
		if len(s.identities) >= identityCacheSize {
			clear(s.identities)
		}
		s.identities[id] = &identity{principal: p, policies: slices.Clone(policies)}
	}
	s.cacheMu.Unlock()
	return &p, policies, nil
}

// identityCacheSize bounds the memory the identity cache takes.
const identityCacheSize = 4096

// ReadRequest reads a request's state one read after the other: each is in process, and
// mostly from the caches.
func (s *Store) ReadRequest(ctx context.Context, q domain.RequestQuery) (*domain.RequestState, error) {
	return domain.ReadEach(ctx, s, q)
}
