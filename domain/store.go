package domain

import (
	"context"
	"time"
)

// Store keeps the service's state. It is owned here and implemented in a package named
// after its engine (sqlite/, postgres/); internal/storetest is the suite that says what
// implementing it means, run on every engine. An engine keeps state and nothing else:
// the rules a write must satisfy are domain functions it calls inside its transaction
// (see Change), and the HTTP wording of its errors is the server's. Methods return *Error
// with ENOTFOUND, ECONFLICT or EINVALID where the state or a rule decides; any other
// failure is an internal error.
type Store interface {
	// Instance returns the instance with the given CRN (InstanceNotFound if none): a copy
	// the caller may change. It reflects every write that returned before it was called,
	// through any Store on the same database.
	Instance(ctx context.Context, crn string) (*Instance, error)
	// UpdateInstance reads the instance, applies change to it and keeps what change leaves,
	// as one transaction: concurrent updates of one instance, through any Store on the same
	// database, are applied one after the other and none is lost. If change returns an
	// error, nothing is kept and UpdateInstance returns that error.
	UpdateInstance(ctx context.Context, crn string, change Change) (*Instance, error)

	// Instances returns, by CRN, the instances of the accounts and those with the CRNs
	// given (what a principal's policies reach), with their plans' catalog ids.
	Instances(ctx context.Context, accounts, crns []string) ([]CatalogInstance, error)
	// CatalogPlan returns the plan whose catalog id is id (a plan's id where it has none),
	// from any account's configuration, or else, if an instance uses a plan of that id, a
	// plan of that id alone (ENOTFOUND if none).
	CatalogPlan(ctx context.Context, id string) (*PlanConfig, error)

	// Account returns the account with the given id (AccountNotFound if none).
	Account(ctx context.Context, id string) (*Account, error)
	// AccountInstances returns the instances of an account, ordered by CRN.
	AccountInstances(ctx context.Context, accountID string) ([]Instance, error)

	// PrincipalByAPIKey returns the principal owning an API key (ENOTFOUND if none).
	PrincipalByAPIKey(ctx context.Context, apiKey string) (*Principal, error)
	// Identity returns a principal and the policies granted to it (ENOTFOUND if the
	// principal does not exist), as they are now: after a Load through any Store on the
	// same database, it answers the loaded state.
	Identity(ctx context.Context, principalID string) (*Principal, []Policy, error)
	// ReadRequest reads at once what an API request needs before its handler runs: its
	// caller, the instance and account it names, and the live fault rules (RequestQuery).
	// Like every read, it reflects every write that returned before it was called, through
	// any Store on the same database. An engine whose every read is a round trip to a
	// server makes it one.
	ReadRequest(ctx context.Context, q RequestQuery) (*RequestState, error)

	// AppendAudit keeps audit events (each one JSON object, no newline) for listing, in
	// one write, as the batch that id names: appending again a batch whose id is kept keeps
	// nothing, so an append whose outcome an error left unknown (a connection lost during
	// its commit) may be tried again. Events appended through every Store on one database
	// form one list, in the order their appends committed.
	AppendAudit(ctx context.Context, id string, events [][]byte) error
	// PruneAudit drops the oldest audit events, keeping at least the newest keep.
	PruneAudit(ctx context.Context, keep int) error
	// AuditEvents reads one page of the kept audit events, oldest first, from the query's
	// cursor on, filtered by its Match, reading no further than the page needs
	// (PageAudit). The store does not read the events: what they mean is the server's.
	AuditEvents(ctx context.Context, q AuditQuery) (AuditPage, error)

	// AddFault keeps a fault rule (its ID given), after the others; a rule scoped to a
	// fixture that is not kept is FixtureNotFound.
	AddFault(ctx context.Context, r *FaultRule) error
	// Faults lists every kept fault rule, oldest first, with its counts as they are now.
	Faults(ctx context.Context) ([]FaultRule, error)
	// LiveFaults lists the rules that may fire at now, oldest first, to match requests
	// against: its counts need not be current. Once an AddFault,
	// DeleteFault, ClearFaults, Load or spending TakeFault through any Store on the database
	// has returned, it reflects that.
	LiveFaults(ctx context.Context, now time.Time) ([]FaultRule, error)
	// TakeFault counts a request that matched rule id and reports whether the rule fires on
	// it (FaultRule.Take), as one step across every Store on the database, so that a count
	// is exact. A rule deleted or spent meanwhile does not fire.
	TakeFault(ctx context.Context, id string, now time.Time) (bool, error)
	// DeleteFault removes one rule (ENOTFOUND if there is none); ClearFaults every one.
	DeleteFault(ctx context.Context, id string) error
	ClearFaults(ctx context.Context) error

	// AddFixture adds a fixture's state (Fixture.State at now) to the running state and
	// keeps the fixture, in one transaction: nothing if any of its names is taken (a 409
	// naming the field: FirstTaken) or MaxFixtures are kept (TooManyFixtures).
	AddFixture(ctx context.Context, f *Fixture, now time.Time) error
	// Fixtures lists the kept fixtures, oldest first; Fixture reads one (FixtureNotFound).
	Fixtures(ctx context.Context) ([]Fixture, error)
	Fixture(ctx context.Context, id string) (*Fixture, error)
	// DeleteFixture removes a fixture with everything it made (accounts, instances,
	// principals, keys, policies) and the fault rules scoped to it; audit events stay.
	DeleteFixture(ctx context.Context, id string) error
	// ResetFixture puts what a fixture made back as its state at now, in one transaction.
	ResetFixture(ctx context.Context, id string, now time.Time) error

	// Load replaces accounts, instances, principals, API keys and policies with the
	// seed's, in one transaction, and removes every fault rule and fixture. Audit events
	// and the signing key are kept.
	Load(ctx context.Context, s *Seed) error
	// LoadIfEmpty loads the seed if the store holds no account yet and reports whether it
	// did. Of several Stores on one empty database that call it at once, exactly one loads.
	LoadIfEmpty(ctx context.Context, s *Seed) (bool, error)
	// HasAPIKeys reports whether any principal has an API key: without one, nothing can
	// authenticate, and the server says so as it starts.
	HasAPIKeys(ctx context.Context) (bool, error)
	// Setting returns the value kept under name, keeping create's result first if there is
	// none. Of several Stores on one database that call it at once, one value is kept and
	// all return it; it survives restarts and Loads. (The token signing key is one: tokens
	// stay valid across restarts and are accepted by every replica.)
	Setting(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error)
	// Ping checks that the store can be reached.
	Ping(ctx context.Context) error
	Close() error
}

// CatalogInstance is an instance with the catalog id of its plan: the plan's CatalogID in
// its account's configuration, else its PlanID.
type CatalogInstance struct {
	Instance
	PlanCatalogID string
}

// RequestQuery names what an API request reads before its handler runs. Each empty
// field is not read.
type RequestQuery struct {
	PrincipalID string    // the caller, from a verified token
	APIKey      string    // or the caller's API key
	InstanceCRN string    // the instance the request names (its Service-CRN)
	AccountID   string    // the account the request names (a path's {id})
	Now         time.Time // the fault rules read are those live at Now
}

// RequestState is what ReadRequest read. A nil Principal, Instance or Account is one that
// was not asked for or does not exist.
type RequestState struct {
	Principal        *Principal
	Policies         []Policy
	Instance         *Instance
	Account          *Account
	AccountInstances []Instance // the Account's, by CRN
	Faults           []FaultRule
}

// ReadEach is ReadRequest as one read after the other, for an engine whose reads are cheap
// (SQLite, in process).
func ReadEach(ctx context.Context, s Store, q RequestQuery) (*RequestState, error) {
	st := &RequestState{}
	var err error
	switch {
	case q.PrincipalID != "":
		st.Principal, st.Policies, err = s.Identity(ctx, q.PrincipalID)
	case q.APIKey != "":
		if st.Principal, err = s.PrincipalByAPIKey(ctx, q.APIKey); err == nil {
			st.Principal, st.Policies, err = s.Identity(ctx, st.Principal.ID)
		}
	}
	if err = absentIsNil(err); err != nil {
		return nil, err
	}
	if q.InstanceCRN != "" {
		if st.Instance, err = s.Instance(ctx, q.InstanceCRN); absentIsNil(err) != nil {
			return nil, err
		}
	}
	if q.AccountID != "" {
		if st.Account, err = s.Account(ctx, q.AccountID); absentIsNil(err) != nil {
			return nil, err
		}
		if st.Account != nil {
			if st.AccountInstances, err = s.AccountInstances(ctx, q.AccountID); err != nil {
				return nil, err
			}
		}
	}
	if st.Faults, err = s.LiveFaults(ctx, q.Now); err != nil {
		return nil, err
	}
	return st, nil
}

// absentIsNil is err, but nil for a read that found nothing.
func absentIsNil(err error) error {
	if ErrorCode(err) == ENOTFOUND {
		return nil
	}
	return err
}

// Change is a rule applied to an instance inside a store's transaction: it checks the
// instance as stored and changes it, or returns why it may not.
type Change func(in *Instance) error

// At is change made at now: first, an instance whose usage period has ended moves into
// the one that contains now (Instance.RollPeriod). Every change a request makes is made
// so, so that the rollover is written once, under the row's lock, whichever replica's
// request finds it first.
func At(now time.Time, change Change) Change {
	return func(in *Instance) error {
		in.RollPeriod(now)
		return change(in)
	}
}

// RollPeriod is the change that only rolls the usage period (At with nothing more).
func RollPeriod(now time.Time) Change {
	return At(now, func(*Instance) error { return nil })
}

// SetLimit is the change of replace_instance_configuration: a new limit (nil removes
// it), checked with CheckNewLimit against the seconds consumed as stored.
func SetLimit(limit *int64) Change {
	return func(in *Instance) error {
		if err := CheckNewLimit(limit, in.ConsumedSeconds); err != nil {
			return err
		}
		if limit == nil {
			in.InstanceLimitSeconds = nil
			return nil
		}
		v := float64(*limit)
		in.InstanceLimitSeconds = &v
		return nil
	}
}

// AddUsage records consumed seconds, as if jobs ran.
func AddUsage(seconds float64) Change {
	return func(in *Instance) error {
		if err := CheckUsage(seconds); err != nil {
			return err
		}
		in.ConsumedSeconds += seconds
		return nil
	}
}

// SetUsagePeriod replaces the usage period (nil: none) and, if reset is set, zeroes the
// consumed seconds.
func SetUsagePeriod(period *UsagePeriod, reset bool) Change {
	return func(in *Instance) error {
		if err := CheckUsagePeriod(period); err != nil {
			return err
		}
		if period != nil {
			period = &UsagePeriod{Start: KeptTime(period.Start), End: KeptTime(period.End)}
		}
		in.UsagePeriod = period
		if reset {
			in.ConsumedSeconds = 0
		}
		return nil
	}
}

// AdvanceUsagePeriod starts the next period of the same length and zeroes the usage; an
// instance with no period has nothing to advance.
func AdvanceUsagePeriod() Change {
	return func(in *Instance) error {
		if in.UsagePeriod == nil {
			return Errorf(ECONFLICT, "Instance %s has no usage period to advance (its plan has none); set one first.", in.CRN).WithReason("no_usage_period")
		}
		next := in.UsagePeriod.Next()
		in.UsagePeriod = &next
		in.ConsumedSeconds = 0
		return nil
	}
}

// KeptTime is a time as every store keeps it: in UTC, to the microsecond (PostgreSQL's
// precision), so that no engine answers a time another would not.
func KeptTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// CheckUsagePeriod refuses a period that does not end after it starts.
func CheckUsagePeriod(p *UsagePeriod) error {
	if p != nil && !p.End.After(p.Start) {
		return Errorf(EINVALID, "the usage period must end after it starts").WithTarget("field", "usage_period").WithReason("invalid_field")
	}
	return nil
}

// Reasons of the not-found errors a store returns. Which part of a request named the
// missing thing (a header, a parameter, a field) is for the server to say.
const (
	ReasonInstanceNotFound = "instance_not_found"
	ReasonAccountNotFound  = "account_not_found"
)

// InstanceNotFound is a store's answer for a CRN it does not hold.
func InstanceNotFound(crn string) *Error {
	return Errorf(ENOTFOUND, "No instance has the CRN %s.", crn).WithReason(ReasonInstanceNotFound)
}

// AccountNotFound is a store's answer for an account id it does not hold.
func AccountNotFound(id string) *Error {
	return Errorf(ENOTFOUND, "No account has the id %s.", id).WithReason(ReasonAccountNotFound)
}

// APIKeyNotFound is a store's answer for an API key no principal owns.
func APIKeyNotFound() *Error {
	return Errorf(ENOTFOUND, "Provided API key could not be found.")
}

// CatalogEntryNotFound is a store's answer for a catalog id no plan has.
func CatalogEntryNotFound(id string) *Error {
	return Errorf(ENOTFOUND, "No catalog entry has the id %s.", id).WithReason("not_found")
}

// PrincipalNotFound is a store's answer for a principal id it does not hold.
func PrincipalNotFound(id string) *Error {
	return Errorf(ENOTFOUND, "No principal has the id %s.", id)
}
