// Package sqlite implements domain.Store on an embedded SQLite database
// (modernc.org/sqlite, pure Go), with its schema migrations embedded in the binary.
package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/qrapi/qrapi/domain"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a domain.Store on one SQLite database. Writes go through one connection, so
// read-modify-write transactions never interleave and no update is lost.
type Store struct {
	write *sql.DB
	read  *sql.DB
	stmts sync.Map // query -> *sql.Stmt on read: parsing SQL was a third of a read's cost

	// instances caches committed instances by CRN. Every write goes through this Store,
	// which updates the entry before the write returns, so a read never sees less than
	// what an answered write stored. cacheGen counts writes, so that a read that raced one
	// does not put back what it read before it.
	cacheMu   sync.RWMutex
	instances map[string]*domain.Instance
	cacheGen  uint64

	// writeMu makes a write and its cache update one step: without it, two writes could
	// commit in one order and update the cache in the other.
	writeMu sync.Mutex
}

var _ domain.Store = (*Store)(nil)

// Memory is the path that opens a throwaway in-memory database.
const Memory = ":memory:"

// Open opens (creating if needed) the database at path and brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	s := &Store{instances: map[string]*domain.Instance{}}
	if path == Memory {
		// One connection: each new connection to :memory: would be a new, empty database.
		db, err := sql.Open("sqlite", "file::memory:?_pragma=foreign_keys(1)&_txlock=immediate")
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1)
		s.write, s.read = db, db
	} else {
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"
		w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
		if err != nil {
			return nil, err
		}
		w.SetMaxOpenConns(1)
		r, err := sql.Open("sqlite", dsn)
		if err != nil {
			w.Close()
			return nil, err
		}
		r.SetMaxOpenConns(4)
		s.write, s.read = w, r
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// readStmt returns the read connection's prepared statement for query, made once.
func (s *Store) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.read.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// queryRow runs a one-row read through its prepared statement.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) (*sql.Row, error) {
	st, err := s.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryRowContext(ctx, args...), nil
}

// query runs a read through its prepared statement.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	err := s.write.Close()
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// Ping checks that both connections answer.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return s.write.PingContext(ctx)
}

// migrate applies, in order, the embedded migrations newer than the database's
// user_version, each in its own transaction.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	var version int
	if err := s.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("sqlite: read schema version: %w", err)
	}
	for i, name := range names {
		if i < version {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

const instanceColumns = `crn, account_id, plan_id, backends, usage_allocation_seconds, instance_limit, qctrl_enabled, period_start, period_end, consumed_seconds`

type scanner interface{ Scan(dest ...any) error }

func scanInstance(row scanner) (*domain.Instance, error) {
	var (
		in           domain.Instance
		backends     string
		alloc        sql.NullInt64
		limit        sql.NullFloat64
		qctrl        sql.NullBool
		pStart, pEnd sql.NullString
	)
	if err := row.Scan(&in.CRN, &in.AccountID, &in.PlanID, &backends, &alloc, &limit, &qctrl, &pStart, &pEnd, &in.ConsumedSeconds); err != nil {
		return nil, err
	}
	in.Backends = splitList(backends)
	if alloc.Valid {
		in.UsageAllocationSeconds = &alloc.Int64
	}
	if limit.Valid {
		in.InstanceLimitSeconds = &limit.Float64
	}
	if qctrl.Valid {
		in.QctrlEnabled = &qctrl.Bool
	}
	if pStart.Valid && pEnd.Valid {
		start, err1 := time.Parse(time.RFC3339Nano, pStart.String)
		end, err2 := time.Parse(time.RFC3339Nano, pEnd.String)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("sqlite: instance %s usage period: %w", in.CRN, err)
		}
		in.UsagePeriod = &domain.UsagePeriod{Start: start, End: end}
	}
	return &in, nil
}

func notFoundInstance(crn string) error {
	return domain.Errorf(domain.ENOTFOUND, "No instance has the CRN %s.", crn).WithTarget("header", "Service-CRN").WithReason("instance_not_found")
}

const selectInstance = `SELECT ` + instanceColumns + ` FROM instances WHERE crn = ?`

// Instance returns the instance with the given CRN: a copy the caller may change.
func (s *Store) Instance(ctx context.Context, crn string) (*domain.Instance, error) {
	s.cacheMu.RLock()
	cached, gen := s.instances[crn], s.cacheGen
	s.cacheMu.RUnlock()
	if cached != nil {
		return cached.Clone(), nil
	}
	row, err := s.queryRow(ctx, selectInstance, crn)
	if err != nil {
		return nil, err
	}
	in, err := instanceFrom(row, crn)
	if err != nil {
		return nil, err
	}
	s.cacheMu.Lock()
	if s.cacheGen == gen {
		s.instances[crn] = in.Clone()
	}
	s.cacheMu.Unlock()
	return in, nil
}

// cacheWrite records a committed instance (nil: forget every entry, as after a Load).
func (s *Store) cacheWrite(in *domain.Instance) {
	s.cacheMu.Lock()
	s.cacheGen++
	if in == nil {
		clear(s.instances)
	} else {
		s.instances[in.CRN] = in.Clone()
	}
	s.cacheMu.Unlock()
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) instance(ctx context.Context, q querier, crn string) (*domain.Instance, error) {
	return instanceFrom(q.QueryRowContext(ctx, selectInstance, crn), crn)
}

func instanceFrom(row *sql.Row, crn string) (*domain.Instance, error) {
	in, err := scanInstance(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFoundInstance(crn)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read instance: %w", err)
	}
	return in, nil
}

// update runs fn in a write transaction on the instance and stores what fn leaves in it.
func (s *Store) update(ctx context.Context, crn string, fn func(in *domain.Instance) error) (*domain.Instance, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	in, err := s.instance(ctx, tx, crn)
	if err != nil {
		return nil, err
	}
	if err := fn(in); err != nil {
		return nil, err
	}
	var pStart, pEnd any
	if in.UsagePeriod != nil {
		pStart, pEnd = in.UsagePeriod.Start.UTC().Format(time.RFC3339Nano), in.UsagePeriod.End.UTC().Format(time.RFC3339Nano)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE instances SET instance_limit = ?, period_start = ?, period_end = ?, consumed_seconds = ? WHERE crn = ?`,
		in.InstanceLimitSeconds, pStart, pEnd, in.ConsumedSeconds, crn); err != nil {
		return nil, fmt.Errorf("sqlite: update instance: %w", err)
	}
	if err := tx.Commit(); err != nil {
		s.cacheWrite(nil) // the outcome is unknown: read it again
		return nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	s.cacheWrite(in)
	return in, nil
}

// SetInstanceLimit sets or removes the limit, checking it against the consumed seconds
// in the same transaction.
func (s *Store) SetInstanceLimit(ctx context.Context, crn string, limit *int64) error {
	_, err := s.update(ctx, crn, func(in *domain.Instance) error {
		if err := domain.CheckNewLimit(limit, in.ConsumedSeconds); err != nil {
			return err
		}
		if limit == nil {
			in.InstanceLimitSeconds = nil
		} else {
			v := float64(*limit)
			in.InstanceLimitSeconds = &v
		}
		return nil
	})
	return err
}

// RecordUsage adds consumed seconds.
func (s *Store) RecordUsage(ctx context.Context, crn string, seconds float64) (*domain.Instance, error) {
	if err := domain.CheckUsage(seconds); err != nil {
		return nil, err
	}
	return s.update(ctx, crn, func(in *domain.Instance) error {
		in.ConsumedSeconds += seconds
		return nil
	})
}

// SetUsagePeriod replaces the usage period, optionally zeroing the consumed seconds.
func (s *Store) SetUsagePeriod(ctx context.Context, crn string, period *domain.UsagePeriod, reset bool) (*domain.Instance, error) {
	if period != nil && !period.End.After(period.Start) {
		return nil, domain.Errorf(domain.EINVALID, "the usage period must end after it starts").WithReason("invalid_field")
	}
	return s.update(ctx, crn, func(in *domain.Instance) error {
		in.UsagePeriod = period
		if reset {
			in.ConsumedSeconds = 0
		}
		return nil
	})
}

// Account returns an account with its stored plans, in their stored order.
func (s *Store) Account(ctx context.Context, id string) (*domain.Account, error) {
	acct := &domain.Account{ID: id}
	row, err := s.queryRow(ctx, `SELECT configured FROM accounts WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	err = row.Scan(&acct.Configured)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.Errorf(domain.ENOTFOUND, "No account has the id %s.", id).WithTarget("parameter", "id").WithReason("account_not_found")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read account: %w", err)
	}
	rows, err := s.query(ctx, `SELECT plan_id, usage_allocation_seconds, usage_limit_seconds, backends, max_ttl, active_ttl, interactive_ttl, start_time, end_time
		FROM plans WHERE account_id = ? ORDER BY position`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read plans: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p                                 domain.PlanConfig
			backends                          string
			alloc, limit, maxT, active, inter sql.NullInt64
			start, end                        sql.NullString
		)
		if err := rows.Scan(&p.PlanID, &alloc, &limit, &backends, &maxT, &active, &inter, &start, &end); err != nil {
			return nil, fmt.Errorf("sqlite: read plan: %w", err)
		}
		if err := json.Unmarshal([]byte(backends), &p.Backends); err != nil {
			return nil, fmt.Errorf("sqlite: plan backends: %w", err)
		}
		p.UsageAllocationSeconds, p.UsageLimitSeconds = nullInt(alloc), nullInt(limit)
		p.MaxTTL, p.ActiveTTL, p.InteractiveTTL = nullInt(maxT), nullInt(active), nullInt(inter)
		if p.StartTime, err = nullTime(start); err != nil {
			return nil, err
		}
		if p.EndTime, err = nullTime(end); err != nil {
			return nil, err
		}
		acct.Plans = append(acct.Plans, p)
	}
	return acct, rows.Err()
}

func nullInt(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	return &v.Int64
}

func nullTime(v sql.NullString) (*time.Time, error) {
	if !v.Valid {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v.String)
	if err != nil {
		return nil, fmt.Errorf("sqlite: time %q: %w", v.String, err)
	}
	return &t, nil
}

func timeOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// AccountInstances returns the instances of an account, by CRN.
func (s *Store) AccountInstances(ctx context.Context, accountID string) ([]domain.Instance, error) {
	rows, err := s.query(ctx, `SELECT `+instanceColumns+` FROM instances WHERE account_id = ? ORDER BY crn`, accountID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read instances: %w", err)
	}
	defer rows.Close()
	var out []domain.Instance
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *in)
	}
	return out, rows.Err()
}

// PrincipalByAPIKey finds the principal owning an API key, by the key's hash.
func (s *Store) PrincipalByAPIKey(ctx context.Context, apiKey string) (*domain.Principal, error) {
	var id string
	err := s.read.QueryRowContext(ctx, `SELECT principal_id FROM api_keys WHERE hash = ?`, domain.HashAPIKey(apiKey)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.Errorf(domain.ENOTFOUND, "Provided API key could not be found.")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read api key: %w", err)
	}
	return s.Principal(ctx, id)
}

// Principal returns a principal by id.
func (s *Store) Principal(ctx context.Context, id string) (*domain.Principal, error) {
	p := &domain.Principal{ID: id}
	row, err := s.queryRow(ctx, `SELECT type, name, account_id FROM principals WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	err = row.Scan(&p.Type, &p.Name, &p.AccountID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.Errorf(domain.ENOTFOUND, "No principal has the id %s.", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read principal: %w", err)
	}
	return p, nil
}

// Policies returns a principal's policies.
func (s *Store) Policies(ctx context.Context, principalID string) ([]domain.Policy, error) {
	rows, err := s.query(ctx, `SELECT role, account_id, instance_crn FROM policies WHERE principal_id = ?`, principalID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read policies: %w", err)
	}
	defer rows.Close()
	var out []domain.Policy
	for rows.Next() {
		p := domain.Policy{PrincipalID: principalID}
		if err := rows.Scan(&p.Role, &p.AccountID, &p.InstanceCRN); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// AppendAudit keeps audit events as one row of JSON lines: one insert for the whole
// batch, where a row per event cost 6 µs an event in CPU bursts that showed in latency.
func (s *Store) AppendAudit(ctx context.Context, events [][]byte) error {
	if len(events) == 0 {
		return nil
	}
	size := len(events)
	for _, e := range events {
		size += len(e)
	}
	blob := make([]byte, 0, size)
	for i, e := range events {
		if i > 0 {
			blob = append(blob, '\n')
		}
		blob = append(blob, e...)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_, err := s.write.ExecContext(ctx, `INSERT INTO audit_batches (last_seq, events)
		VALUES (coalesce((SELECT max(last_seq) FROM audit_batches), 0) + ?, ?)`, len(events), blob)
	if err != nil {
		return fmt.Errorf("sqlite: keep audit events: %w", err)
	}
	return nil
}

// PruneAudit deletes the oldest rows of audit events, keeping at least the newest keep.
func (s *Store) PruneAudit(ctx context.Context, keep int) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	// A row can go when all its events are older than the newest keep.
	_, err := s.write.ExecContext(ctx, `DELETE FROM audit_batches WHERE last_seq <= (SELECT max(last_seq) FROM audit_batches) - ?`, keep)
	if err != nil {
		return fmt.Errorf("sqlite: prune audit events: %w", err)
	}
	return nil
}

// AuditEvents returns every kept audit event, oldest first.
func (s *Store) AuditEvents(ctx context.Context) ([][]byte, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT events FROM audit_batches ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list audit events: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var blob []byte
		if err := rows.Scan(&blob); err != nil {
			return nil, err
		}
		out = append(out, bytes.Split(blob, []byte{'\n'})...)
	}
	return out, rows.Err()
}

// Empty reports whether no account is stored.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&n); err != nil {
		return false, fmt.Errorf("sqlite: count accounts: %w", err)
	}
	return n == 0, nil
}

// Load replaces accounts, instances, principals, keys and policies with the seed's, in one
// transaction. Audit events and the signing key are kept.
func (s *Store) Load(ctx context.Context, seed *domain.Seed) error {
	st, err := seed.State()
	if err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	for _, t := range []string{"policies", "api_keys", "principals", "instances", "plans", "accounts"} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t); err != nil {
			return fmt.Errorf("sqlite: clear %s: %w", t, err)
		}
	}
	exec := func(q string, args ...any) {
		if err == nil {
			_, err = tx.ExecContext(ctx, q, args...)
		}
	}
	for _, a := range st.Accounts {
		exec(`INSERT INTO accounts (id, configured) VALUES (?, ?)`, a.ID, a.Configured)
		for i, p := range a.Plans {
			b, _ := json.Marshal(p.Backends)
			exec(`INSERT INTO plans (account_id, position, plan_id, usage_allocation_seconds, usage_limit_seconds, backends, max_ttl, active_ttl, interactive_ttl, start_time, end_time)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, i, p.PlanID, p.UsageAllocationSeconds, p.UsageLimitSeconds, string(b),
				p.MaxTTL, p.ActiveTTL, p.InteractiveTTL, timeOrNil(p.StartTime), timeOrNil(p.EndTime))
		}
	}
	for _, in := range st.Instances {
		b := joinList(in.Backends)
		var pStart, pEnd any
		if in.UsagePeriod != nil {
			pStart, pEnd = timeOrNil(&in.UsagePeriod.Start), timeOrNil(&in.UsagePeriod.End)
		}
		exec(`INSERT INTO instances (`+instanceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			in.CRN, in.AccountID, in.PlanID, b, in.UsageAllocationSeconds, in.InstanceLimitSeconds, in.QctrlEnabled, pStart, pEnd, in.ConsumedSeconds)
	}
	for _, p := range st.Principals {
		exec(`INSERT INTO principals (id, type, name, account_id) VALUES (?, ?, ?, ?)`, p.ID, string(p.Type), p.Name, p.AccountID)
	}
	for hash, id := range st.APIKeyHash {
		exec(`INSERT INTO api_keys (hash, principal_id) VALUES (?, ?)`, hash, id)
	}
	for _, p := range st.Policies {
		exec(`INSERT INTO policies (principal_id, role, account_id, instance_crn) VALUES (?, ?, ?, ?)`, p.PrincipalID, string(p.Role), p.AccountID, p.InstanceCRN)
	}
	if err != nil {
		return fmt.Errorf("sqlite: load seed: %w", err)
	}
	err = tx.Commit()
	s.cacheWrite(nil)
	return err
}

// SigningKey returns the token signing key, making and keeping one on first use.
func (s *Store) SigningKey(ctx context.Context) ([]byte, error) {
	var key []byte
	err := s.write.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'token_signing_key'`).Scan(&key)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: read signing key: %w", err)
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if _, err := s.write.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('token_signing_key', ?) ON CONFLICT(name) DO NOTHING`, key); err != nil {
		return nil, fmt.Errorf("sqlite: keep signing key: %w", err)
	}
	return s.SigningKey(ctx)
}

// Backend lists are kept one name a line: names match ^.*$, so they hold no newline, and
// splitting a line is much cheaper than decoding JSON on every instance read.
func joinList(names []string) string { return strings.Join(names, "\n") }

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, "\n")
}
