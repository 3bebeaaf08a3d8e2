package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
)

// Instances returns the instances of the accounts and those with the CRNs given, by CRN,
// each with its plan's catalog id.
func (s *Store) Instances(ctx context.Context, accounts, crns []string) ([]domain.CatalogInstance, error) {
	var out []domain.CatalogInstance
	err := s.read(ctx, "read instances", func(b *pgx.Batch) {
		b.Queue(`SELECT `+readColumns+`, plan_catalog_id FROM (
				SELECT i.*, coalesce(p.catalog_id, i.plan_id) AS plan_catalog_id
				FROM instances i LEFT JOIN plans p ON p.account_id = i.account_id AND p.plan_id = i.plan_id
				WHERE i.account_id = ANY($1) OR i.crn = ANY($2)) q
			ORDER BY crn COLLATE "C"`, accounts, crns).Query(func(rows pgx.Rows) error {
			var err error
			out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.CatalogInstance, error) {
				var ci domain.CatalogInstance
				in, err := scanInstance(catalogRow{r, &ci.PlanCatalogID})
				if err == nil {
					ci.Instance = *in
				}
				return ci, err
			})
			return err
		})
	})
	return out, err
}

// catalogRow scans an instance's readColumns and then its plan's catalog id.
type catalogRow struct {
	pgx.Row
	catalogID *string
}

func (r catalogRow) Scan(dest ...any) error { return r.Row.Scan(append(dest, r.catalogID)...) }

// CatalogPlan returns a plan by its catalog id, or an instance's plan by its id.
func (s *Store) CatalogPlan(ctx context.Context, id string) (*domain.PlanConfig, error) {
	var (
		p     domain.PlanConfig
		found bool
	)
	err := s.read(ctx, "read catalog plan", func(b *pgx.Batch) {
		b.Queue(`SELECT plan_id, catalog_id, display_name, pricing_type FROM (
				SELECT 0 AS o, plan_id, coalesce(catalog_id, '') AS catalog_id, coalesce(display_name, '') AS display_name, coalesce(pricing_type, '') AS pricing_type
					FROM plans WHERE coalesce(catalog_id, plan_id) = $1
				UNION ALL SELECT 1, plan_id, '', '', '' FROM instances WHERE plan_id = $1) q
			ORDER BY o LIMIT 1`, id).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&p.PlanID, &p.CatalogID, &p.DisplayName, &p.PricingType)
			if noRows(err) {
				return nil
			}
			found = err == nil
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, domain.CatalogEntryNotFound(id)
	}
	return &p, nil
}

func (s *Store) HasAPIKeys(ctx context.Context) (bool, error) {
	var any bool
	return any, s.read(ctx, "read api keys", func(b *pgx.Batch) {
		b.Queue(`SELECT EXISTS (SELECT 1 FROM api_keys)`).QueryRow(func(row pgx.Row) error { return row.Scan(&any) })
	})
}
