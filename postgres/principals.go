package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/qrapi/qrapi/domain"
)

// PrincipalByAPIKey finds the principal owning an API key, by the key's hash.
func (s *Store) PrincipalByAPIKey(ctx context.Context, apiKey string) (*domain.Principal, error) {
	var p domain.Principal
	err := s.pool.QueryRow(ctx, `SELECT p.id, p.type, p.name, p.account_id FROM api_keys k JOIN principals p ON p.id = k.principal_id WHERE k.hash = $1`,
		domain.HashAPIKey(apiKey)).Scan(&p.ID, &p.Type, &p.Name, &p.AccountID)
	if noRows(err) {
		return nil, domain.APIKeyNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: read api key: %w", err)
	}
	return &p, nil
}

// Identity returns a principal and its policies in one query, or from this replica's cache
// while the cache protocol allows it: a Load through any replica drops every replica's
// cache before it answers.
func (s *Store) Identity(ctx context.Context, id string) (*domain.Principal, []domain.Policy, error) {
	if p, pols, ok := s.replica.cache.identity(id); ok {
		return p, pols, nil
	}
	gen, cacheable := s.replica.cache.generation()
	p, pols, err := s.readIdentity(ctx, id)
	if err == nil && cacheable {
		s.replica.cache.fillIdentity(gen, &identity{principal: *p, policies: slices.Clone(pols)})
	}
	return p, pols, err
}

func (s *Store) readIdentity(ctx context.Context, id string) (*domain.Principal, []domain.Policy, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.type, p.name, p.account_id, pol.role, pol.account_id, pol.instance_crn
		FROM principals p LEFT JOIN policies pol ON pol.principal_id = p.id WHERE p.id = $1 ORDER BY pol.id`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: read principal: %w", err)
	}
	defer rows.Close()
	var (
		p        *domain.Principal
		policies []domain.Policy
	)
	for rows.Next() {
		var (
			q                  domain.Principal
			role, account, crn *string
		)
		if err := rows.Scan(&q.Type, &q.Name, &q.AccountID, &role, &account, &crn); err != nil {
			return nil, nil, fmt.Errorf("postgres: read principal: %w", err)
		}
		if p == nil {
			q.ID = id
			p = &q
		}
		if role != nil {
			policies = append(policies, domain.Policy{PrincipalID: id, Role: domain.Role(*role), AccountID: *account, InstanceCRN: *crn})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("postgres: read principal: %w", err)
	}
	if p == nil {
		return nil, nil, domain.PrincipalNotFound(id)
	}
	return p, policies, nil
}
