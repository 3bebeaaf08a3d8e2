package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
)

// ReadRequest reads a request's caller, instance, account and live fault rules as one
// batch: one round trip, its statements prepared once per connection (pgx's statement
// cache).
func (s *Store) ReadRequest(ctx context.Context, q domain.RequestQuery) (*domain.RequestState, error) {
	st := &domain.RequestState{}
	err := s.read(ctx, "read the request's state", func(b *pgx.Batch) {
		switch {
		case q.PrincipalID != "":
			queueIdentity(b, identityByID, q.PrincipalID, &st.Principal, &st.Policies)
		case q.APIKey != "":
			queueIdentity(b, identityByKey, domain.HashAPIKey(q.APIKey), &st.Principal, &st.Policies)
		}
		if q.InstanceCRN != "" {
			queueInstance(b, q.InstanceCRN, &st.Instance)
		}
		if q.AccountID != "" {
			queueAccount(b, q.AccountID, &st.Account)
			queueAccountInstances(b, q.AccountID, &st.AccountInstances)
		}
		queueFaults(b, &st.Faults)
	})
	if err != nil {
		return nil, err
	}
	st.Faults = domain.LiveFaultRules(st.Faults, q.Now)
	if st.Account == nil {
		st.AccountInstances = nil
	}
	return st, nil
}

// read sends the batch of reads that queue makes, in one round trip, and runs their
// callbacks, which set what they read.
func (s *Store) read(ctx context.Context, what string, queue func(*pgx.Batch)) error {
	return dbError(what, s.again(ctx, func() error {
		b := &pgx.Batch{}
		queue(b)
		return s.pool.SendBatch(ctx, b).Close()
	}))
}

// again runs try, which may be tried again (it reads, or writes nothing until it
// succeeds), and if it met a dead connection, runs it once more on a new one: a database
// restart leaves every connection in the pool dead.
func (s *Store) again(ctx context.Context, try func() error) error {
	err := try()
	if err != nil && unavailable(err) && ctx.Err() == nil {
		s.pool.Reset()
		err = try()
	}
	return err
}
