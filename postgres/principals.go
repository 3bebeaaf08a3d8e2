package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
)

// A principal and its policies, one row per policy (one row, its policy columns null, for
// a principal with none), found by id or by the hash of one of its API keys.
const (
	identityColumns = `SELECT p.id, p.type, p.name, p.account_id, coalesce(p.fixture_id, ''), pol.role, pol.account_id, pol.instance_crn `
	identityByID    = identityColumns + `FROM principals p LEFT JOIN policies pol ON pol.principal_id = p.id WHERE p.id = $1 ORDER BY pol.id`
	identityByKey   = identityColumns + `FROM api_keys k JOIN principals p ON p.id = k.principal_id
		LEFT JOIN policies pol ON pol.principal_id = p.id WHERE k.hash = $1 ORDER BY pol.id`
)

// queueIdentity queues the read of a principal and its policies (identityByID or
// identityByKey): *p is left nil if there is none.
func queueIdentity(b *pgx.Batch, query, arg string, p **domain.Principal, policies *[]domain.Policy) {
	b.Queue(query, arg).Query(func(rows pgx.Rows) error {
		*p, *policies = nil, nil
		for rows.Next() {
			var (
				q                  domain.Principal
				role, account, crn *string
			)
			if err := rows.Scan(&q.ID, &q.Type, &q.Name, &q.AccountID, &q.FixtureID, &role, &account, &crn); err != nil {
				return err
			}
			if *p == nil {
				*p = &q
			}
			if role != nil {
				*policies = append(*policies, domain.Policy{PrincipalID: q.ID, Role: domain.Role(*role), AccountID: *account, InstanceCRN: *crn})
			}
		}
		return rows.Err()
	})
}

// readIdentity reads a principal and its policies in one round trip.
func (s *Store) readIdentity(ctx context.Context, query, arg string) (*domain.Principal, []domain.Policy, error) {
	var (
		p        *domain.Principal
		policies []domain.Policy
	)
	err := s.read(ctx, "read principal", func(b *pgx.Batch) { queueIdentity(b, query, arg, &p, &policies) })
	return p, policies, err
}

// PrincipalByAPIKey finds the principal owning an API key, by the key's hash.
func (s *Store) PrincipalByAPIKey(ctx context.Context, apiKey string) (*domain.Principal, error) {
	p, _, err := s.readIdentity(ctx, identityByKey, domain.HashAPIKey(apiKey))
	if err == nil && p == nil {
		return nil, domain.APIKeyNotFound()
	}
	return p, err
}

// Identity returns a principal and its policies, as committed now.
func (s *Store) Identity(ctx context.Context, id string) (*domain.Principal, []domain.Policy, error) {
	p, policies, err := s.readIdentity(ctx, identityByID, id)
	if err == nil && p == nil {
		return nil, nil, domain.PrincipalNotFound(id)
	}
	return p, policies, err
}
