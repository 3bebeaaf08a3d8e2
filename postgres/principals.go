package postgres

import (
	"context"
	"fmt"

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

// Identity returns a principal and its policies in one query, as committed now: no
// replica keeps them, so a reset through any replica holds at once on all.
func (s *Store) Identity(ctx context.Context, id string) (*domain.Principal, []domain.Policy, error) {
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
