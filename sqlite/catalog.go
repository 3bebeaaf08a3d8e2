package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/qrapi/qrapi/domain"
)

// Instances returns the instances of the accounts and those with the CRNs given, by CRN,
// each with its plan's catalog id.
func (s *Store) Instances(ctx context.Context, accounts, crns []string) ([]domain.CatalogInstance, error) {
	if len(accounts)+len(crns) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(accounts)+len(crns))
	for _, a := range accounts {
		args = append(args, a)
	}
	for _, c := range crns {
		args = append(args, c)
	}
	in := func(n int) string { return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")" }
	rows, err := s.read.QueryContext(ctx, `SELECT `+readColumns+`, plan_catalog_id FROM (
			SELECT i.*, coalesce(p.catalog_id, i.plan_id) AS plan_catalog_id
			FROM instances i LEFT JOIN plans p ON p.account_id = i.account_id AND p.plan_id = i.plan_id
			WHERE i.account_id IN `+in(len(accounts))+` OR i.crn IN `+in(len(crns))+`)
		ORDER BY crn`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read instances: %w", err)
	}
	defer rows.Close()
	var out []domain.CatalogInstance
	for rows.Next() {
		var ci domain.CatalogInstance
		in, err := scanInstance(catalogRow{rows, &ci.PlanCatalogID})
		if err != nil {
			return nil, fmt.Errorf("sqlite: read instance: %w", err)
		}
		ci.Instance = *in
		out = append(out, ci)
	}
	return out, rows.Err()
}

// catalogRow scans an instance's readColumns and then its plan's catalog id.
type catalogRow struct {
	scanner
	catalogID *string
}

func (r catalogRow) Scan(dest ...any) error { return r.scanner.Scan(append(dest, r.catalogID)...) }

// CatalogPlan returns a plan by its catalog id, or an instance's plan by its id.
func (s *Store) CatalogPlan(ctx context.Context, id string) (*domain.PlanConfig, error) {
	var p domain.PlanConfig
	err := s.read.QueryRowContext(ctx, `SELECT plan_id, catalog_id, display_name, pricing_type FROM (
			SELECT 0 AS o, plan_id, coalesce(catalog_id, '') AS catalog_id, coalesce(display_name, '') AS display_name, coalesce(pricing_type, '') AS pricing_type
				FROM plans WHERE coalesce(catalog_id, plan_id) = ?1
			UNION ALL SELECT 1, plan_id, '', '', '' FROM instances WHERE plan_id = ?1)
		ORDER BY o LIMIT 1`, id).Scan(&p.PlanID, &p.CatalogID, &p.DisplayName, &p.PricingType)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.CatalogEntryNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read catalog plan: %w", err)
	}
	return &p, nil
}

func (s *Store) HasAPIKeys(ctx context.Context) (bool, error) {
	var any bool
	if err := s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys)`).Scan(&any); err != nil {
		return false, fmt.Errorf("sqlite: read api keys: %w", err)
	}
	return any, nil
}
