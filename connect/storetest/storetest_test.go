package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	Run(t, func(*testing.T) connect.Store { return connect.NewMemoryStore() })
}

// TestRunChecksPassesCorrectStores: the recorder reports no failure for a
// correct store, neither the MemoryStore nor refStore, the self-contained
// store some broken variants are made from.
func TestRunChecksPassesCorrectStores(t *testing.T) {
	t.Parallel()
	for name, newStore := range map[string]func() connect.Store{
		"MemoryStore": func() connect.Store { return connect.NewMemoryStore() },
		"refStore":    func() connect.Store { return newRefStore(noBug) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, f := range runChecks(newStore) {
				t.Errorf("%s failed:\n%s", f.check, strings.Join(f.msgs, "\n"))
			}
		})
	}
}

// TestObserve: the recorder records a failure, a FailNow ends the check
// there, and a panic is a failure too.
func TestObserve(t *testing.T) {
	t.Parallel()
	newStore := func() connect.Store { return connect.NewMemoryStore() }
	after := false
	f := observe(check{"stops", func(t T, _ connect.Store) {
		assert.True(t, false, "first")
		require.True(t, false, "second")
		after = true
	}}, newStore)
	require.NotNil(t, f)
	assert.Equal(t, "stops", f.check)
	assert.Len(t, f.msgs, 2)
	assert.False(t, after, "FailNow ends the check")

	f = observe(check{"panics", func(T, connect.Store) { panic("boom") }}, newStore)
	require.NotNil(t, f)
	assert.Contains(t, strings.Join(f.msgs, ""), "boom")

	assert.Nil(t, observe(check{"passes", func(t T, s connect.Store) {
		_, err := s.Get(t.Context(), missing)
		assert.ErrorIs(t, err, connect.ErrNoConnection)
	}}, newStore))
}

// TestBrokenStoresFail runs the suite on stores that are correct but for
// one bug each: the suite must catch every one.
func TestBrokenStoresFail(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			failed := runChecks(v.store)
			var names []string
			for _, f := range failed {
				names = append(names, f.check)
			}
			require.NotEmpty(t, names, "no check catches: %s", v.bug)
			t.Logf("%s: caught by %s", v.bug, strings.Join(names, ", "))
			for _, want := range v.caughtBy {
				assert.Contains(t, names, want, "%s is caught by %s", v.bug, want)
			}
		})
	}
}

// variant is a store with one bug.
type variant struct {
	name     string
	bug      string
	store    func() connect.Store
	caughtBy []string // checks that must catch it (among others)
}

func mem() connect.Store { return connect.NewMemoryStore() }

var variants = []variant{
	{
		"update keeps cleared fields", "Update keeps the stored Tokens, RefreshSentAt, LastError and TokenExpiry where rec's are empty (COALESCE)",
		func() connect.Store { return updateCoalesces{mem()} }, []string{"UpdateClearsFields"},
	},
	{
		"update without release drops the lease expiry", "Update without release leaves LeaseOwner but zeroes LeaseUntil",
		func() connect.Store { return newRefStore(updateDropsLeaseExpiry) }, []string{"UpdateKeepsOrReleasesTheLease"},
	},
	{
		"put keeps the refresh marker", "Put over an existing record keeps its RefreshSentAt",
		func() connect.Store { return newRefStore(putKeepsRefreshMarker) }, []string{"PutClearsLeaseAndRefreshMarker"},
	},
	{
		"put keeps the lease", "Put over an existing record keeps its live lease",
		func() connect.Store { return putKeepsLease{mem()} }, []string{"PutClearsLeaseAndRefreshMarker"},
	},
	{
		"put without the version fence", "Put overwrites whatever version is stored",
		func() connect.Store { return putUnfenced{mem()} }, []string{"PutIsFenced", "OneWinnerAmongConcurrentPuts"},
	},
	{
		"put overwrites CreatedAt", "Put over an existing record writes rec's CreatedAt",
		func() connect.Store { return newRefStore(putOverwritesCreatedAt) }, []string{"PutReplaces"},
	},
	{
		"acquire ignores expiry", "Acquire never takes another's lease, even an expired one",
		func() connect.Store { return acquireIgnoresExpiry{mem()} }, []string{"AcquireTakesAnExpiredLease", "OneWinnerAmongConcurrentAcquires"},
	},
	{
		"acquire takes a live lease", "Acquire takes another's live lease",
		func() connect.Store { return acquireTakesLiveLease{mem()} }, []string{"AcquireRelease"},
	},
	{
		"acquire bumps the version", "Acquire adds one to Version",
		func() connect.Store { return acquireBumpsVersion{mem()} }, []string{"AcquireRelease"},
	},
	{
		"acquire returns the record from before", "Acquire returns the record as read before it took the lease",
		func() connect.Store { return acquireReturnsBefore{mem()} }, []string{"AcquireRelease"},
	},
	{
		"claim ignores the version", "Claim takes the lease and starts a refresh whatever version it is given",
		func() connect.Store { return claimIgnoresVersion{mem()} }, []string{"ClaimStartsARefresh"},
	},
	{
		"claim takes a live lease", "Claim takes another's live lease",
		func() connect.Store { return claimTakesLiveLease{mem()} }, []string{"ClaimStartsARefresh"},
	},
	{
		"claim sets no refresh marker", "Claim takes the lease and adds one to Version but leaves RefreshSentAt",
		func() connect.Store { return newRefStore(claimSetsNoMarker) }, []string{"ClaimStartsARefresh"},
	},
	{
		"claim keeps the version", "Claim takes the lease and sets RefreshSentAt but does not add one to Version",
		func() connect.Store { return newRefStore(claimKeepsVersion) }, []string{"ClaimStartsARefresh", "OneWinnerAmongConcurrentClaims"},
	},
	{
		"update without the version fence", "Update writes over whatever version is stored",
		func() connect.Store { return updateUnfenced{mem()} }, []string{"UpdateIsFenced"},
	},
	{
		"update releases another's lease", "Update with release frees the lease whoever holds it",
		func() connect.Store { return updateReleasesAnyLease{mem()} }, []string{"UpdateKeepsOrReleasesTheLease"},
	},
	{
		"update writes CreatedAt", "Update writes rec's CreatedAt",
		func() connect.Store { return newRefStore(updateWritesCreatedAt) }, []string{"UpdateWritesEveryField"},
	},
	{
		"release by anyone", "Release frees the lease whoever asks",
		func() connect.Store { return releaseByAnyone{mem()} }, []string{"AcquireRelease"},
	},
	{
		"list ignores the account", "List lists every account's connections for a query that names one",
		func() connect.Store { return listIgnoresAccount{mem()} }, []string{"List"},
	},
	{
		"list skips the query check", "List of a query that names no account lists every account's",
		func() connect.Store { return listSkipsCheck{mem()} }, []string{"ListChecksTheQuery"},
	},
	{
		"useflow always first", "UseFlow reports every use as the first",
		func() connect.Store { return useFlowAlwaysFirst{mem()} }, []string{"UseFlow", "OneFirstAmongConcurrentUseFlows"},
	},
	{
		"useflow ignores the ttl", "UseFlow remembers every flow for ever",
		func() connect.Store { return useFlowIgnoresTTL{mem()} }, []string{"UseFlowForgetsAfterTTL"},
	},
	{
		"get shares its records", "Get returns the stored record itself, so a caller's change to it is the store's",
		func() connect.Store { return newRefStore(getSharesRecords) }, []string{"RecordsAreCopies"},
	},
	{
		"get sets no read time", "Get returns records with a zero ReadAt",
		func() connect.Store { return getWithoutReadAt{mem()} }, []string{"ReadAtIsSet"},
	}, {
		"update keeps the health", "Update writes every field but Health, FailingSince and KeepAliveAt",
		func() connect.Store { return newRefStore(updateKeepsHealth) }, []string{"UpdateWritesEveryField", "UpdateClearsFields"},
	},
	{
		"put stores no keep-alive", "Put without KeepAliveAt stores none, instead of the store's time",
		func() connect.Store { return newRefStore(putStoresNoKeepAlive) }, []string{"DueDefaults"},
	},
	{
		"due ignores keep-alive", "Due returns active connections whether or not their KeepAliveAt has come",
		func() connect.Store { return newRefStore(dueIgnoresKeepAlive) }, []string{"Due"},
	},
	{
		"due ignores the status", "Due returns connections that are not active",
		func() connect.Store { return newRefStore(dueIgnoresStatus) }, []string{"Due"},
	},
	{
		"due ignores the lease", "Due returns connections whose lease another instance holds",
		func() connect.Store { return newRefStore(dueIgnoresLease) }, []string{"Due"},
	},
	{
		"due unordered", "Due returns the due connections in another order than earliest first",
		func() connect.Store { return newRefStore(dueUnordered) }, []string{"Due"},
	},
	{
		"due ignores the limit", "Due returns every due connection",
		func() connect.Store { return newRefStore(dueIgnoresLimit) }, []string{"Due"},
	},
	{
		"events on every update", "an Update that changes no status, health or account records an event",
		func() connect.Store { return newRefStore(eventsOnEveryUpdate) }, []string{"Events"},
	},
	{
		"events miss grants", "a Put records an event that does not say it stored a grant",
		func() connect.Store { return newRefStore(eventsMissGrants) }, []string{"Events"},
	},
	{
		"count ignores the health", "Count counts failing connections as healthy",
		func() connect.Store { return newRefStore(countIgnoresHealth) }, []string{"Count"},
	},
	{
		"cursor ignores the lease", "TakeCursor gives a cursor another owner holds",
		func() connect.Store { return newRefStore(cursorIgnoresLease) }, []string{"EventCursor"},
	},
}

// Broken wrappers of a MemoryStore: each overrides one method.

type updateCoalesces struct{ connect.Store }

func (s updateCoalesces) Update(ctx context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	cur, err := s.Get(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	w := *rec
	if len(w.Tokens) == 0 {
		w.Tokens = cur.Tokens
	}
	if w.RefreshSentAt.IsZero() {
		w.RefreshSentAt = cur.RefreshSentAt
	}
	if w.LastError == "" {
		w.LastError = cur.LastError
	}
	if w.TokenExpiry.IsZero() {
		w.TokenExpiry = cur.TokenExpiry
	}
	return s.Store.Update(ctx, &w, owner, release)
}

type putKeepsLease struct{ connect.Store }

func (s putKeepsLease) Put(ctx context.Context, rec *connect.Record) (*connect.Record, error) {
	cur, _ := s.Get(ctx, rec.ID)
	stored, err := s.Store.Put(ctx, rec)
	if err != nil || cur == nil || cur.LeaseOwner == "" || !cur.LeaseUntil.After(stored.ReadAt) {
		return stored, err
	}
	// Take the lease back for its holder, until when it was held.
	if held, ok, err := s.Acquire(ctx, rec.ID, cur.LeaseOwner, cur.LeaseUntil.Sub(stored.ReadAt)); err == nil && ok {
		return held, nil
	}
	return stored, nil
}

type putUnfenced struct{ connect.Store }

func (s putUnfenced) Put(ctx context.Context, rec *connect.Record) (*connect.Record, error) {
	w := *rec
	cur, err := s.Get(ctx, rec.ID)
	switch {
	case err == nil:
		w.Version = cur.Version
	case errors.Is(err, connect.ErrNoConnection):
		w.Version = 0
	default:
		return nil, err
	}
	return s.Store.Put(ctx, &w)
}

type acquireIgnoresExpiry struct{ connect.Store }

func (s acquireIgnoresExpiry) Acquire(ctx context.Context, id, owner string, ttl time.Duration) (*connect.Record, bool, error) {
	cur, err := s.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	if cur.LeaseOwner != "" && cur.LeaseOwner != owner {
		return cur, false, nil
	}
	return s.Store.Acquire(ctx, id, owner, ttl)
}

type acquireTakesLiveLease struct{ connect.Store }

func (s acquireTakesLiveLease) Acquire(ctx context.Context, id, owner string, ttl time.Duration) (*connect.Record, bool, error) {
	r, ok, err := s.Store.Acquire(ctx, id, owner, ttl)
	if err != nil || ok {
		return r, ok, err
	}
	if err := s.Release(ctx, id, r.LeaseOwner); err != nil {
		return nil, false, err
	}
	return s.Store.Acquire(ctx, id, owner, ttl)
}

type acquireBumpsVersion struct{ connect.Store }

func (s acquireBumpsVersion) Acquire(ctx context.Context, id, owner string, ttl time.Duration) (*connect.Record, bool, error) {
	r, ok, err := s.Store.Acquire(ctx, id, owner, ttl)
	if err != nil || !ok {
		return r, ok, err
	}
	r, err = s.Update(ctx, r, owner, false) // writes what is there, and one more version
	return r, err == nil, err
}

type acquireReturnsBefore struct{ connect.Store }

func (s acquireReturnsBefore) Acquire(ctx context.Context, id, owner string, ttl time.Duration) (*connect.Record, bool, error) {
	before, err := s.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	_, ok, err := s.Store.Acquire(ctx, id, owner, ttl)
	return before, ok, err
}

type claimIgnoresVersion struct{ connect.Store }

func (s claimIgnoresVersion) Claim(ctx context.Context, id, owner string, _ int64, ttl time.Duration) (*connect.Record, bool, error) {
	cur, err := s.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return s.Store.Claim(ctx, id, owner, cur.Version, ttl)
}

type claimTakesLiveLease struct{ connect.Store }

func (s claimTakesLiveLease) Claim(ctx context.Context, id, owner string, version int64, ttl time.Duration) (*connect.Record, bool, error) {
	r, ok, err := s.Store.Claim(ctx, id, owner, version, ttl)
	if err != nil || ok || r.Version != version {
		return r, ok, err
	}
	if err := s.Release(ctx, id, r.LeaseOwner); err != nil {
		return nil, false, err
	}
	return s.Store.Claim(ctx, id, owner, version, ttl)
}

type updateUnfenced struct{ connect.Store }

func (s updateUnfenced) Update(ctx context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	cur, err := s.Get(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	w := *rec
	w.Version = cur.Version
	return s.Store.Update(ctx, &w, owner, release)
}

type updateReleasesAnyLease struct{ connect.Store }

func (s updateReleasesAnyLease) Update(ctx context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	saved, err := s.Store.Update(ctx, rec, owner, release)
	if err != nil || !release || saved.LeaseOwner == "" {
		return saved, err
	}
	if err := s.Release(ctx, rec.ID, saved.LeaseOwner); err != nil {
		return nil, err
	}
	saved.LeaseOwner, saved.LeaseUntil = "", time.Time{}
	return saved, nil
}

type releaseByAnyone struct{ connect.Store }

func (s releaseByAnyone) Release(ctx context.Context, id, _ string) error {
	cur, err := s.Get(ctx, id)
	if err != nil {
		return nil
	}
	return s.Store.Release(ctx, id, cur.LeaseOwner)
}

type listIgnoresAccount struct{ connect.Store }

func (s listIgnoresAccount) List(ctx context.Context, q connect.Query) ([]connect.Connection, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	q.Account, q.AllAccounts = "", true
	return s.Store.List(ctx, q)
}

type listSkipsCheck struct{ connect.Store }

func (s listSkipsCheck) List(ctx context.Context, q connect.Query) ([]connect.Connection, error) {
	if q.Check() != nil {
		q.Account, q.AllAccounts = "", true
	}
	return s.Store.List(ctx, q)
}

type useFlowAlwaysFirst struct{ connect.Store }

func (s useFlowAlwaysFirst) UseFlow(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	_, err := s.Store.UseFlow(ctx, id, ttl)
	return err == nil, err
}

type useFlowIgnoresTTL struct{ connect.Store }

func (s useFlowIgnoresTTL) UseFlow(ctx context.Context, id string, _ time.Duration) (bool, error) {
	return s.Store.UseFlow(ctx, id, 1000*time.Hour)
}

type getWithoutReadAt struct{ connect.Store }

func (s getWithoutReadAt) Get(ctx context.Context, id string) (*connect.Record, error) {
	r, err := s.Store.Get(ctx, id)
	if r != nil {
		r.ReadAt = time.Time{}
	}
	return r, err
}

// refStore is a self-contained store, correct as MemoryStore is, for the
// bugs a wrapper cannot make (keeping or writing a field it should not):
// each bug is a line or two. Its clock is time.Now in whole
// microseconds, as a SQL store's.
type refStore struct {
	bug     bug
	mu      sync.Mutex
	recs    map[string]*connect.Record
	flows   map[string]time.Time
	events  []connect.Event
	cursors map[string]*refCursor
}

type refCursor struct {
	pos   int64
	owner string
	until time.Time
}

type bug int

const (
	noBug bug = iota
	putKeepsRefreshMarker
	putOverwritesCreatedAt
	updateDropsLeaseExpiry
	updateWritesCreatedAt
	claimSetsNoMarker
	claimKeepsVersion
	getSharesRecords
	updateKeepsHealth
	putStoresNoKeepAlive
	dueIgnoresKeepAlive
	dueIgnoresStatus
	dueIgnoresLease
	dueUnordered
	dueIgnoresLimit
	eventsOnEveryUpdate
	eventsMissGrants
	cursorIgnoresLease
	countIgnoresHealth
)

func newRefStore(b bug) *refStore {
	return &refStore{bug: b, recs: map[string]*connect.Record{}, flows: map[string]time.Time{}, cursors: map[string]*refCursor{}}
}

func (*refStore) now() time.Time { return time.Now().Truncate(time.Microsecond) }

func copyRecord(r *connect.Record, now time.Time) *connect.Record {
	c := *r
	c.Scopes = slices.Clone(r.Scopes)
	c.Tokens = slices.Clone(r.Tokens)
	c.ReadAt = now
	return &c
}

func (s *refStore) lookup(id string) (*connect.Record, error) {
	r, ok := s.recs[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", connect.ErrNoConnection, id)
	}
	return r, nil
}

func (s *refStore) Get(_ context.Context, id string) (*connect.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	if s.bug == getSharesRecords {
		r.ReadAt = s.now()
		return r, nil
	}
	return copyRecord(r, s.now()), nil
}

func (s *refStore) List(_ context.Context, q connect.Query) ([]connect.Connection, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []connect.Connection{}
	for _, r := range s.recs {
		if (q.Account == "" || r.Account == q.Account) && (q.Status == "" || r.Status == q.Status) && r.ID > q.After {
			c := r.Connection
			c.Scopes = slices.Clone(c.Scopes)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b connect.Connection) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(len(out), q.PageSize())], nil
}

func (s *refStore) Put(_ context.Context, rec *connect.Record) (*connect.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, exists := s.recs[rec.ID]
	if exists && old.Version != rec.Version || !exists && rec.Version != 0 {
		return nil, connect.ErrVersionConflict
	}
	n := copyRecord(rec, time.Time{})
	n.Version = rec.Version + 1
	n.LeaseOwner, n.LeaseUntil, n.RefreshSentAt = "", time.Time{}, time.Time{}
	if exists && s.bug != putOverwritesCreatedAt {
		n.CreatedAt = old.CreatedAt
	}
	if exists && s.bug == putKeepsRefreshMarker {
		n.RefreshSentAt = old.RefreshSentAt
	}
	s.defaults(n)
	if s.bug == putStoresNoKeepAlive && rec.KeepAliveAt.IsZero() {
		n.KeepAliveAt = time.Time{}
	}
	if !exists {
		old = nil
	}
	s.record(old, n, s.bug != eventsMissGrants)
	s.recs[rec.ID] = n
	return copyRecord(n, s.now()), nil
}

func leaseFree(r *connect.Record, owner string, now time.Time) bool {
	return r.LeaseOwner == "" || r.LeaseOwner == owner || !r.LeaseUntil.After(now)
}

// take gives owner id's lease for ttl if it is free and r passes may
// (when given), then lets then (when given) change r further.
func (s *refStore) take(id, owner string, ttl time.Duration, may func(r *connect.Record) bool, then func(r *connect.Record, now time.Time)) (*connect.Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(id)
	if err != nil {
		return nil, false, err
	}
	now := s.now()
	if may != nil && !may(r) || !leaseFree(r, owner, now) {
		return copyRecord(r, now), false, nil
	}
	r.LeaseOwner, r.LeaseUntil = owner, now.Add(ttl)
	if then != nil {
		then(r, now)
	}
	return copyRecord(r, now), true, nil
}

func (s *refStore) Acquire(_ context.Context, id, owner string, ttl time.Duration) (*connect.Record, bool, error) {
	return s.take(id, owner, ttl, nil, nil)
}

func (s *refStore) Claim(_ context.Context, id, owner string, version int64, ttl time.Duration) (*connect.Record, bool, error) {
	return s.take(id, owner, ttl, func(r *connect.Record) bool { return r.Version == version }, func(r *connect.Record, now time.Time) {
		if s.bug != claimSetsNoMarker {
			r.RefreshSentAt = now
		}
		if s.bug != claimKeepsVersion {
			r.Version++
		}
	})
}

func (s *refStore) Update(_ context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(rec.ID)
	if err != nil {
		return nil, err
	}
	if r.Version != rec.Version {
		return nil, connect.ErrVersionConflict
	}
	n := copyRecord(rec, time.Time{})
	if s.bug != updateWritesCreatedAt {
		n.CreatedAt = r.CreatedAt
	}
	n.Version = r.Version + 1
	n.LeaseOwner, n.LeaseUntil = r.LeaseOwner, r.LeaseUntil
	switch {
	case release && owner != "" && r.LeaseOwner == owner:
		n.LeaseOwner, n.LeaseUntil = "", time.Time{}
	case !release && s.bug == updateDropsLeaseExpiry:
		n.LeaseUntil = time.Time{}
	}
	if s.bug == updateKeepsHealth {
		n.Health, n.FailingSince, n.KeepAliveAt = r.Health, r.FailingSince, r.KeepAliveAt
	}
	s.defaults(n)
	s.record(r, n, false)
	s.recs[rec.ID] = n
	return copyRecord(n, s.now()), nil
}

// defaults gives a record being written the stored defaults.
func (s *refStore) defaults(r *connect.Record) {
	if r.Health == "" {
		r.Health = connect.HealthOK
	}
	if r.KeepAliveAt.IsZero() {
		r.KeepAliveAt = s.now()
	}
}

func (s *refStore) Due(_ context.Context, limit int) ([]connect.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := []connect.Connection{}
	for _, r := range s.recs {
		switch {
		case r.Status != connect.StatusActive && s.bug != dueIgnoresStatus,
			r.KeepAliveAt.After(now) && s.bug != dueIgnoresKeepAlive,
			r.LeaseOwner != "" && r.LeaseUntil.After(now) && s.bug != dueIgnoresLease:
			continue
		}
		out = append(out, r.Connection)
	}
	slices.SortFunc(out, func(a, b connect.Connection) int {
		if s.bug == dueUnordered {
			return strings.Compare(b.ID, a.ID)
		}
		return cmp.Or(a.KeepAliveAt.Compare(b.KeepAliveAt), strings.Compare(a.ID, b.ID))
	})
	if s.bug == dueIgnoresLimit {
		return out, nil
	}
	return out[:min(len(out), limit)], nil
}

func (s *refStore) record(old, n *connect.Record, grant bool) {
	e := connect.Event{
		Seq: int64(len(s.events)) + 1, ConnectionID: n.ID, Account: n.Account, NewStatus: n.Status, NewHealth: n.Health,
		Grant: grant, Reason: n.LastError, Version: n.Version, At: n.UpdatedAt,
	}
	if old != nil {
		if !grant && s.bug != eventsOnEveryUpdate && old.Status == n.Status && old.Health == n.Health && old.Account == n.Account {
			return
		}
		e.OldAccount, e.OldStatus, e.OldHealth = old.Account, old.Status, old.Health
	}
	s.events = append(s.events, e)
}

func (s *refStore) Count(context.Context) ([]connect.StatusCount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[connect.StatusCount]int64{}
	for _, r := range s.recs {
		k := connect.StatusCount{Status: r.Status, Health: r.Health}
		if s.bug == countIgnoresHealth {
			k.Health = connect.HealthOK
		}
		n[k]++
	}
	var out []connect.StatusCount
	for k, v := range n {
		k.N = v
		out = append(out, k)
	}
	return out, nil
}

func (s *refStore) Events(_ context.Context, after int64, limit int) ([]connect.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []connect.Event
	for _, e := range s.events {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *refStore) TakeCursor(_ context.Context, name, owner string, ttl time.Duration) (int64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cursors[name]
	if c == nil {
		c = &refCursor{}
		s.cursors[name] = c
	}
	now := s.now()
	if c.owner != "" && c.owner != owner && c.until.After(now) && s.bug != cursorIgnoresLease {
		return c.pos, false, nil
	}
	c.owner, c.until = owner, now.Add(ttl)
	return c.pos, true, nil
}

func (s *refStore) MoveCursor(_ context.Context, name, owner string, pos int64, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	c := s.cursors[name]
	if c == nil || owner == "" || c.owner != owner || !c.until.After(now) {
		return connect.ErrCursorLost
	}
	c.pos, c.until = pos, now.Add(ttl)
	return nil
}

func (s *refStore) Release(_ context.Context, id, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.recs[id]; ok && owner != "" && r.LeaseOwner == owner {
		r.LeaseOwner, r.LeaseUntil = "", time.Time{}
	}
	return nil
}

func (s *refStore) UseFlow(_ context.Context, id string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if until, seen := s.flows[id]; seen && until.After(now) {
		return false, nil
	}
	s.flows[id] = now.Add(ttl)
	return true, nil
}
