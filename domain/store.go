package domain

import "context"

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

	// AppendAudit keeps audit events (each one JSON object, no newline) for listing, in
	// one write.
	AppendAudit(ctx context.Context, events [][]byte) error
	// PruneAudit drops the oldest audit events, keeping at least the newest keep.
	PruneAudit(ctx context.Context, keep int) error
	// AuditEvents lists the kept audit events, oldest first. The store does not read
	// them: what they mean, and filtering by it, is the server's.
	AuditEvents(ctx context.Context) ([][]byte, error)

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
