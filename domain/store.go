package domain

import (
	"context"
	"time"
)

// Store keeps the service's state. It is owned here and implemented in a package named
// after its engine (sqlite/). Methods return *Error with ENOTFOUND or ECONFLICT where the
// state decides; any other failure is an internal error.
type Store interface {
	// Instance returns the instance with the given CRN.
	Instance(ctx context.Context, crn string) (*Instance, error)
	// SetInstanceLimit sets (or, with nil, removes) an instance's limit, atomically with
	// the CheckNewLimit rule against the consumed seconds.
	SetInstanceLimit(ctx context.Context, crn string, limit *int64) error
	// RecordUsage adds consumed seconds to an instance's current period, atomically.
	RecordUsage(ctx context.Context, crn string, seconds float64) (*Instance, error)
	// SetUsagePeriod replaces an instance's usage period (nil: none) and, if reset is set,
	// zeroes its consumed seconds.
	SetUsagePeriod(ctx context.Context, crn string, period *UsagePeriod, reset bool) (*Instance, error)

	// Account returns the account with the given id.
	Account(ctx context.Context, id string) (*Account, error)
	// AccountInstances returns the instances of an account.
	AccountInstances(ctx context.Context, accountID string) ([]Instance, error)

	// PrincipalByAPIKey returns the principal owning an API key (ENOTFOUND if none).
	PrincipalByAPIKey(ctx context.Context, apiKey string) (*Principal, error)
	// Principal returns the principal with the given id.
	Principal(ctx context.Context, id string) (*Principal, error)
	// Policies returns the policies granted to a principal.
	Policies(ctx context.Context, principalID string) ([]Policy, error)

	// AppendAudit keeps audit events for listing, in one transaction.
	AppendAudit(ctx context.Context, evs []AuditRecord) error
	// PruneAudit drops all but the newest keep audit events.
	PruneAudit(ctx context.Context, keep int) error
	// AuditEvents lists kept audit events, oldest first, matching the filter.
	AuditEvents(ctx context.Context, f AuditFilter) ([]AuditRecord, error)

	// Load replaces the whole state with the seed's.
	Load(ctx context.Context, s *Seed) error
	// Empty reports whether the store holds no accounts yet.
	Empty(ctx context.Context) (bool, error)
	// SigningKey returns the key that signs access tokens, made on first use and kept, so
	// tokens stay valid across restarts.
	SigningKey(ctx context.Context) ([]byte, error)
	// Ping checks that the store can be reached.
	Ping(ctx context.Context) error
	Close() error
}

// AuditRecord is one kept audit event: the fields to filter on and the event as JSON.
type AuditRecord struct {
	ID            int64
	Time          time.Time
	Action        string
	Outcome       string
	InitiatorID   string
	TargetCRN     string
	CorrelationID string
	JSON          []byte
}

// AuditFilter selects audit events; empty fields match everything.
type AuditFilter struct {
	Action        string
	Outcome       string
	InitiatorID   string
	TargetCRN     string
	CorrelationID string
	Since         time.Time
	Limit         int
}
