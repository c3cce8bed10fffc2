// Package storetest is the conformance suite for [connect.Store]: what
// every store must guarantee for the Manager's refresh coordination to
// hold. Every store in this module passes it; run it on a store of your own
// (DynamoDB, Spanner, ...) from a test:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) connect.Store {
//			return newEmptyStoreForTest(t)
//		})
//	}
//
// newStore must return an empty store each time it is called; the suite
// calls it once per subtest and runs subtests in parallel.
//
// Some checks wait for a lease or a finished flow to expire on the store's
// clock: they keep it for a millisecond and sleep 20 milliseconds of real
// time, so the store's clock must run at real speed.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// base is the suite's clock for the times it writes: whole microseconds,
// which every store keeps exactly.
var base = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

const (
	// live is a lease that outlasts any check.
	live = time.Hour
	// brief is a lease or flow that expires at once; lapse is the real
	// time the suite waits for it to have expired.
	brief = time.Millisecond
	lapse = 20 * time.Millisecond
	// patience bounds the suite's retry loops when the test has no
	// deadline of its own.
	patience = 30 * time.Second
)

// IDs the checks use.
const (
	id1     = "urn:pleo:company:1"
	id2     = "urn:pleo:company:2"
	missing = "urn:pleo:company:missing"
)

func record(id, account string) *connect.Record {
	return &connect.Record{
		Connection: connect.Connection{
			ID: id, Account: account, Status: connect.StatusActive, Scopes: []string{"users:read", "export-jobs:read"},
			CreatedAt: base, UpdatedAt: base, TokenExpiry: base.Add(15 * time.Minute),
			Health: connect.HealthOK, KeepAliveAt: base.Add(24 * time.Hour),
		},
		Tokens: []byte{1, 0, 2, 255, 'x'},
	}
}

// T is what a check needs of its test. *testing.T is one; storetest's own
// tests use a recorder instead, to watch deliberately broken stores fail.
// FailNow must end the goroutine that calls it, as [testing.T.FailNow]
// does; checks call it (through require) only from their own goroutine.
type T interface {
	Helper()
	Errorf(format string, args ...any)
	FailNow()
	Context() context.Context
}

// check is one of the suite's checks: it gets an empty store.
type check struct {
	name string
	fn   func(t T, s connect.Store)
}

// checks is the suite.
var checks = []check{
	{"GetMissing", checkGetMissing},
	{"PutNew", checkPutNew},
	{"PutReplaces", checkPutReplaces},
	{"PutIsFenced", checkPutIsFenced},
	{"PutClearsLeaseAndRefreshMarker", checkPutClears},
	{"RecordsAreCopies", checkRecordsAreCopies},
	{"ReadAtIsSet", checkReadAt},
	{"AcquireRelease", checkAcquireRelease},
	{"AcquireTakesAnExpiredLease", checkAcquireExpired},
	{"ClaimStartsARefresh", checkClaim},
	{"ClaimTakesAnExpiredLease", checkClaimExpired},
	{"UpdateIsFenced", checkUpdateIsFenced},
	{"UpdateWritesEveryField", checkUpdateWritesEveryField},
	{"UpdateClearsFields", checkUpdateClearsFields},
	{"UpdateKeepsOrReleasesTheLease", checkUpdateLease},
	{"List", checkList},
	{"ListChecksTheQuery", checkListChecksTheQuery},
	{"ListPageSize", checkListPageSize},
	{"Due", checkDue},
	{"DueDefaults", checkDueDefaults},
	{"Count", checkCount},
	{"Events", checkEvents},
	{"EventCursor", checkEventCursor},
	{"EventsReadWhileWrittenMissNone", checkConcurrentEvents},
	{"UseFlow", checkUseFlow},
	{"UseFlowForgetsAfterTTL", checkUseFlowExpires},
	{"OneFirstAmongConcurrentUseFlows", checkConcurrentUseFlow},
	{"OneWinnerAmongConcurrentAcquires", checkConcurrentAcquire},
	{"OneWinnerAmongConcurrentClaims", checkConcurrentClaim},
	{"OneWinnerAmongConcurrentPuts", checkConcurrentPut},
	{"ConcurrentClaimUpdateNeverLosesAWrite", checkConcurrentReadModifyWrite},
}

// Run runs the suite against the stores newStore makes.
func Run(t *testing.T, newStore func(t *testing.T) connect.Store) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, newStore(t))
		})
	}
}

// checkTimeout is how long runChecks gives one check; its loops stop
// retrying at the deadline of their context.
const checkTimeout = 3 * time.Second

// failure is a check that failed under runChecks, with what it reported.
type failure struct {
	check string
	msgs  []string
}

// runChecks runs every check in parallel, each on a store newStore makes,
// without failing the caller, and returns the checks that failed, in the
// suite's order.
func runChecks(newStore func() connect.Store) []failure {
	out := make([]*failure, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { out[i] = observe(c, newStore) })
	}
	wg.Wait()
	var failed []failure
	for _, f := range out {
		if f != nil {
			failed = append(failed, *f)
		}
	}
	return failed
}

// observe runs one check with a recorder, and returns its failure or nil.
func observe(c check, newStore func() connect.Store) *failure {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	r := &recorder{ctx: ctx}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				r.Errorf("panic: %v", p)
			}
		}()
		c.fn(r, newStore())
	}()
	select {
	case <-done:
	case <-time.After(checkTimeout + time.Second):
		r.Errorf("did not finish in %v", checkTimeout+time.Second)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.failed {
		return nil
	}
	return &failure{check: c.name, msgs: slices.Clone(r.msgs)}
}

// recorder is a T that records failures instead of reporting them.
type recorder struct {
	ctx    context.Context
	mu     sync.Mutex
	failed bool
	msgs   []string
}

func (r *recorder) Helper()                  {}
func (r *recorder) Context() context.Context { return r.ctx }

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// FailNow marks the check failed and ends its goroutine.
func (r *recorder) FailNow() {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	runtime.Goexit()
}

// deadline is when a check's retry loop gives up.
func deadline(t T) time.Time {
	if d, ok := t.Context().Deadline(); ok {
		return d
	}
	return time.Now().Add(patience)
}

// Helpers. The must ones fail the check at once (they call require, so
// only from the check's own goroutine).

func mustPut(t T, s connect.Store, rec *connect.Record) *connect.Record {
	t.Helper()
	got, err := s.Put(t.Context(), rec)
	require.NoError(t, err, "Put %s version %d", rec.ID, rec.Version)
	require.NotNil(t, got, "Put %s", rec.ID)
	return got
}

func mustGet(t T, s connect.Store, id string) *connect.Record {
	t.Helper()
	got, err := s.Get(t.Context(), id)
	require.NoError(t, err, "Get %s", id)
	require.NotNil(t, got, "Get %s", id)
	return got
}

func mustAcquire(t T, s connect.Store, id, owner string, ttl time.Duration) (*connect.Record, bool) {
	t.Helper()
	got, ok, err := s.Acquire(t.Context(), id, owner, ttl)
	require.NoError(t, err, "Acquire %s for %s", id, owner)
	require.NotNil(t, got, "Acquire %s for %s", id, owner)
	return got, ok
}

func mustClaim(t T, s connect.Store, id, owner string, version int64, ttl time.Duration) (*connect.Record, bool) {
	t.Helper()
	got, ok, err := s.Claim(t.Context(), id, owner, version, ttl)
	require.NoError(t, err, "Claim %s version %d for %s", id, version, owner)
	require.NotNil(t, got, "Claim %s version %d for %s", id, version, owner)
	return got, ok
}

func mustUpdate(t T, s connect.Store, rec *connect.Record, owner string, release bool) *connect.Record {
	t.Helper()
	got, err := s.Update(t.Context(), rec, owner, release)
	require.NoError(t, err, "Update %s version %d by %s (release %v)", rec.ID, rec.Version, owner, release)
	require.NotNil(t, got, "Update %s", rec.ID)
	return got
}

func mustRelease(t T, s connect.Store, id, owner string) {
	t.Helper()
	require.NoError(t, s.Release(t.Context(), id, owner), "Release %s by %s", id, owner)
}

func mustUseFlow(t T, s connect.Store, id string, ttl time.Duration) bool {
	t.Helper()
	first, err := s.UseFlow(t.Context(), id, ttl)
	require.NoError(t, err, "UseFlow %s", id)
	return first
}

// orNil makes an empty slice nil: a store may give either for nothing.
func orNil[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

func assertTime(t T, what string, want, got time.Time) bool {
	t.Helper()
	return assert.True(t, want.Equal(got), "%s: want %v, got %v", what, want, got)
}

// assertConnection asserts that got has every field of want.
func assertConnection(t T, what string, want, got connect.Connection) {
	t.Helper()
	assert.Equal(t, want.ID, got.ID, "%s: ID", what)
	assert.Equal(t, want.Account, got.Account, "%s: Account", what)
	assert.Equal(t, want.Status, got.Status, "%s: Status", what)
	assert.Equal(t, orNil(want.Scopes), orNil(got.Scopes), "%s: Scopes", what)
	assert.Equal(t, want.LastError, got.LastError, "%s: LastError", what)
	assertTime(t, what+": CreatedAt", want.CreatedAt, got.CreatedAt)
	assertTime(t, what+": UpdatedAt", want.UpdatedAt, got.UpdatedAt)
	assertTime(t, what+": TokenExpiry", want.TokenExpiry, got.TokenExpiry)
	assertTime(t, what+": LastRefreshAt", want.LastRefreshAt, got.LastRefreshAt)
	assert.Equal(t, want.Health, got.Health, "%s: Health", what)
	assertTime(t, what+": FailingSince", want.FailingSince, got.FailingSince)
	assertTime(t, what+": KeepAliveAt", want.KeepAliveAt, got.KeepAliveAt)
}

// assertSame asserts that got has want's Connection and Tokens.
func assertSame(t T, what string, want, got *connect.Record) {
	t.Helper()
	if !assert.NotNil(t, got, what) {
		return
	}
	assertConnection(t, what, want.Connection, got.Connection)
	assert.Equal(t, orNil(want.Tokens), orNil(got.Tokens), "%s: Tokens", what)
}

// assertRecord asserts that got is want as stored: every field but ReadAt.
func assertRecord(t T, what string, want, got *connect.Record) {
	t.Helper()
	if !assert.NotNil(t, got, what) {
		return
	}
	assertSame(t, what, want, got)
	assert.Equal(t, want.Version, got.Version, "%s: Version", what)
	assert.Equal(t, want.LeaseOwner, got.LeaseOwner, "%s: LeaseOwner", what)
	assertTime(t, what+": LeaseUntil", want.LeaseUntil, got.LeaseUntil)
	assertTime(t, what+": RefreshSentAt", want.RefreshSentAt, got.RefreshSentAt)
}

// assertStored asserts that the store holds want (every field but ReadAt).
func assertStored(t T, s connect.Store, what string, want *connect.Record) {
	t.Helper()
	assertRecord(t, what+" (as stored)", want, mustGet(t, s, want.ID))
}

// assertFree asserts that nobody holds got's lease.
func assertFree(t T, what string, got *connect.Record) {
	t.Helper()
	assert.Empty(t, got.LeaseOwner, "%s: LeaseOwner", what)
	assert.True(t, got.LeaseUntil.IsZero(), "%s: LeaseUntil is zero, got %v", what, got.LeaseUntil)
}

// assertLease asserts that got's lease is owner's until its ReadAt + ttl.
func assertLease(t T, what string, got *connect.Record, owner string, ttl time.Duration) {
	t.Helper()
	assert.Equal(t, owner, got.LeaseOwner, "%s: LeaseOwner", what)
	assert.False(t, got.ReadAt.IsZero(), "%s: ReadAt is set", what)
	assertTime(t, what+": LeaseUntil is ReadAt + ttl", got.ReadAt.Add(ttl), got.LeaseUntil)
}

func checkGetMissing(t T, s connect.Store) {
	ctx := t.Context()
	_, err := s.Get(ctx, missing)
	assert.ErrorIs(t, err, connect.ErrNoConnection, "Get")
	_, _, err = s.Acquire(ctx, missing, "a", live)
	assert.ErrorIs(t, err, connect.ErrNoConnection, "Acquire")
	for _, v := range []int64{0, 1} {
		_, _, err = s.Claim(ctx, missing, "a", v, live)
		assert.ErrorIs(t, err, connect.ErrNoConnection, "Claim version %d", v)
		rec := record(missing, "acme")
		rec.Version = v
		_, err = s.Update(ctx, rec, "a", true)
		assert.Error(t, err, "Update version %d", v)
		_, err = s.Update(ctx, rec, "a", false)
		assert.Error(t, err, "Update version %d", v)
	}
	assert.NoError(t, s.Release(ctx, missing, "a"), "Release")
	_, err = s.Get(ctx, missing)
	assert.ErrorIs(t, err, connect.ErrNoConnection, "none of them made a record")
	all, err := s.List(ctx, connect.Query{AllAccounts: true})
	assert.NoError(t, err)
	assert.Empty(t, all)
}

func checkPutNew(t T, s connect.Store) {
	rec := record(id1, "acme")
	rec.LastRefreshAt = base.Add(time.Second)
	rec.LastError = "invalid_grant"
	// What Put never takes from rec.
	rec.LeaseOwner, rec.LeaseUntil, rec.RefreshSentAt = "mallory", base.Add(live), base.Add(time.Second)
	stored := mustPut(t, s, rec)
	want := *rec
	want.Version = 1
	want.LeaseOwner, want.LeaseUntil, want.RefreshSentAt = "", time.Time{}, time.Time{}
	assertRecord(t, "Put's record", &want, stored)
	assertStored(t, s, "the new record", &want)

	// A version for an ID that has no record is a conflict, and writes
	// nothing.
	for _, v := range []int64{1, 2} {
		other := record(id2, "acme")
		other.Version = v
		_, err := s.Put(t.Context(), other)
		assert.ErrorIs(t, err, connect.ErrVersionConflict, "Put of a new ID with version %d", v)
		_, err = s.Get(t.Context(), id2)
		assert.ErrorIs(t, err, connect.ErrNoConnection, "the refused Put of version %d wrote nothing", v)
	}

	// Empty and nil values come back empty.
	bare := &connect.Record{Connection: connect.Connection{ID: "urn:pleo:company:3", Status: connect.StatusDisconnected, CreatedAt: base, UpdatedAt: base}}
	stored = mustPut(t, s, bare)
	want = *bare
	want.Version = 1
	// Unset, Health is HealthOK and KeepAliveAt the store's time
	// (DueDefaults checks that time).
	want.Health, want.KeepAliveAt = connect.HealthOK, stored.KeepAliveAt
	assert.False(t, stored.KeepAliveAt.IsZero(), "Put without KeepAliveAt stores the store's time")
	assertRecord(t, "Put's bare record", &want, stored)
	got := mustGet(t, s, bare.ID)
	assertRecord(t, "the bare record", &want, got)
	assert.Empty(t, got.Tokens)
	assert.Empty(t, got.Scopes)
	assert.Empty(t, got.Account)
	assert.True(t, got.TokenExpiry.IsZero(), "TokenExpiry %v", got.TokenExpiry)
	assert.True(t, got.LastRefreshAt.IsZero(), "LastRefreshAt %v", got.LastRefreshAt)
}

func checkPutReplaces(t T, s connect.Store) {
	first := record(id1, "acme")
	first.LastRefreshAt = base.Add(time.Minute)
	first.LastError = "refresh_outcome_unknown"
	mustPut(t, s, first)

	// A new grant that has none of the optional fields clears them.
	cleared := &connect.Record{
		Connection: connect.Connection{
			ID: id1, Account: "acme-2", Status: connect.StatusDisconnected, Scopes: []string{"users:read"},
			CreatedAt: base.Add(time.Hour), UpdatedAt: base.Add(time.Hour),
		},
		Version: 1,
	}
	stored := mustPut(t, s, cleared)
	want := *cleared
	want.CreatedAt = base // kept
	want.Version = 2
	want.Health, want.KeepAliveAt = connect.HealthOK, stored.KeepAliveAt // the defaults
	assert.False(t, stored.KeepAliveAt.IsZero(), "Put without KeepAliveAt stores the store's time")
	assertRecord(t, "Put's record", &want, stored)
	assertStored(t, s, "the replaced record", &want)

	// And one that has them sets them.
	full := record(id1, "acme-3")
	full.Version = 2
	full.Status = connect.StatusReauthorizationRequired
	full.Scopes = []string{"users:read", "expenses:read", "export-jobs:write"}
	full.CreatedAt, full.UpdatedAt = base.Add(2*time.Hour), base.Add(2*time.Hour)
	full.TokenExpiry, full.LastRefreshAt = base.Add(3*time.Hour), base.Add(2*time.Hour+time.Microsecond)
	full.LastError = "invalid_grant"
	full.Tokens = []byte("other")
	full.Health, full.FailingSince, full.KeepAliveAt = connect.HealthFailing, base.Add(-time.Hour), base.Add(5*time.Hour)
	stored = mustPut(t, s, full)
	want = *full
	want.CreatedAt = base
	want.Version = 3
	assertRecord(t, "Put's record", &want, stored)
	assertStored(t, s, "the replaced record", &want)
}

func checkPutIsFenced(t T, s connect.Store) {
	mustPut(t, s, record(id1, "acme"))
	// A lease and a refresh marker that a refused Put must leave.
	claimed, ok := mustClaim(t, s, id1, "a", 1, live)
	require.True(t, ok)
	before := mustGet(t, s, id1)
	for _, v := range []int64{0, 1, 3, 7} {
		rec := record(id1, "globex")
		rec.Tokens = []byte("stale")
		rec.Version = v
		_, err := s.Put(t.Context(), rec)
		assert.ErrorIs(t, err, connect.ErrVersionConflict, "Put with version %d over version %d", v, before.Version)
		assertStored(t, s, fmt.Sprintf("after the refused Put of version %d", v), before)
	}
	// The right version still goes through.
	rec := record(id1, "globex")
	rec.Version = claimed.Version
	stored := mustPut(t, s, rec)
	assert.Equal(t, claimed.Version+1, stored.Version)
	assert.Equal(t, "globex", stored.Account)
}

func checkPutClears(t T, s connect.Store) {
	mustPut(t, s, record(id1, "acme"))
	claimed, ok := mustClaim(t, s, id1, "a", 1, live)
	require.True(t, ok)
	require.False(t, claimed.RefreshSentAt.IsZero(), "Claim sets RefreshSentAt")

	// The company connects again while "a" refreshes the old grant: a new
	// grant, with no lease and no refresh marker of its own.
	again := record(id1, "acme")
	again.Tokens = []byte("new grant")
	again.Version = claimed.Version
	stored := mustPut(t, s, again)
	want := *again
	want.Version = claimed.Version + 1
	assertRecord(t, "Put over a claimed record", &want, stored)
	assertStored(t, s, "Put over a claimed record", &want)

	// "a"'s answer for the old grant is fenced off.
	old := *claimed
	old.Tokens = []byte("old grant refreshed")
	_, err := s.Update(t.Context(), &old, "a", true)
	require.ErrorIs(t, err, connect.ErrVersionConflict, "the old grant's write never overwrites the new one")
	assertStored(t, s, "after the old grant's refused write", &want)
	// And the lease is free for another.
	held, ok := mustAcquire(t, s, id1, "b", live)
	assert.True(t, ok, "the lease Put cleared is free")

	// A Put of a record that carries a lease and a marker (one read back
	// from the store) clears them all the same.
	held, ok = mustClaim(t, s, id1, "b", held.Version, live)
	require.True(t, ok)
	carry := *held
	carry.Tokens = []byte("newer grant")
	stored = mustPut(t, s, &carry)
	want = carry
	want.Version = held.Version + 1
	want.LeaseOwner, want.LeaseUntil, want.RefreshSentAt = "", time.Time{}, time.Time{}
	assertRecord(t, "Put of a record with a lease and a marker", &want, stored)
	assertStored(t, s, "Put of a record with a lease and a marker", &want)
}

func checkRecordsAreCopies(t T, s connect.Store) {
	ctx := t.Context()
	rec := record(id1, "acme")
	stored := mustPut(t, s, rec)
	want := record(id1, "acme")
	want.Version = 1

	// Neither what Put was given nor what it returned is the store's.
	rec.Tokens[0], rec.Scopes[0], rec.Status = 99, "mutated", connect.StatusDisconnected
	stored.Tokens[0], stored.Scopes[0], stored.Account = 98, "mutated", "mutated"
	got := mustGet(t, s, id1)
	assertRecord(t, "after changing Put's argument and result", want, got)

	// Nor what Get returned.
	got.Tokens[0], got.Scopes[0], got.Status, got.LeaseOwner = 97, "mutated", connect.StatusDisconnected, "mallory"
	assertStored(t, s, "after changing Get's result", want)

	// Nor what Acquire, Claim and Update returned.
	held, ok := mustAcquire(t, s, id1, "a", live)
	require.True(t, ok)
	want.LeaseOwner, want.LeaseUntil = "a", held.LeaseUntil
	held.Tokens[0], held.Scopes[0], held.LeaseOwner = 96, "mutated", "mallory"
	assertStored(t, s, "after changing Acquire's result", want)

	claimed, ok := mustClaim(t, s, id1, "a", 1, live)
	require.True(t, ok)
	want.Version, want.LeaseUntil, want.RefreshSentAt = 2, claimed.LeaseUntil, claimed.RefreshSentAt
	claimed.Tokens[0], claimed.Scopes[0], claimed.Version = 95, "mutated", 42
	assertStored(t, s, "after changing Claim's result", want)

	upd := *want
	upd.Tokens, upd.Scopes = []byte("new"), []string{"users:read"}
	saved := mustUpdate(t, s, &upd, "a", false)
	want.Tokens, want.Scopes, want.Version = []byte("new"), []string{"users:read"}, 3
	upd.Tokens[0], upd.Scopes[0] = 'N', "mutated"
	saved.Tokens[0], saved.Scopes[0], saved.Version = 'M', "mutated", 42
	assertStored(t, s, "after changing Update's argument and result", want)

	// Nor what List returned.
	page, err := s.List(ctx, connect.Query{AllAccounts: true})
	require.NoError(t, err)
	require.Len(t, page, 1)
	page[0].Scopes[0], page[0].Account = "mutated", "mutated"
	page, err = s.List(ctx, connect.Query{AllAccounts: true})
	require.NoError(t, err)
	require.Len(t, page, 1)
	assertConnection(t, "after changing List's result", want.Connection, page[0])
}

func checkReadAt(t T, s connect.Store) {
	notZero := func(what string, r *connect.Record) {
		t.Helper()
		assert.False(t, r.ReadAt.IsZero(), "%s returns a record with ReadAt set", what)
	}
	notZero("Put", mustPut(t, s, record(id1, "acme")))
	notZero("Get", mustGet(t, s, id1))

	held, ok := mustAcquire(t, s, id1, "a", live)
	require.True(t, ok)
	notZero("Acquire", held)
	assertLease(t, "Acquire", held, "a", live)
	refused, ok := mustAcquire(t, s, id1, "b", live)
	require.False(t, ok)
	notZero("a refused Acquire", refused)

	const ttl = 45*time.Minute + 3*time.Microsecond
	claimed, ok := mustClaim(t, s, id1, "a", 1, ttl)
	require.True(t, ok)
	notZero("Claim", claimed)
	assertLease(t, "Claim", claimed, "a", ttl)
	assertTime(t, "Claim: RefreshSentAt is ReadAt", claimed.ReadAt, claimed.RefreshSentAt)
	refused, ok = mustClaim(t, s, id1, "b", claimed.Version, ttl)
	require.False(t, ok)
	notZero("a refused Claim", refused)

	notZero("Update", mustUpdate(t, s, claimed, "a", false))
	notZero("Update with release", mustUpdate(t, s, mustGet(t, s, id1), "a", true))
}

func checkAcquireRelease(t T, s connect.Store) {
	mustPut(t, s, record(id1, "acme"))
	// A refresh marker and a version past 1, which Acquire must keep.
	_, ok := mustClaim(t, s, id1, "x", 1, live)
	require.True(t, ok)
	mustRelease(t, s, id1, "x")
	before := mustGet(t, s, id1)
	assertFree(t, "released", before)

	held, ok := mustAcquire(t, s, id1, "a", live)
	require.True(t, ok, "a free lease is taken")
	assertLease(t, "Acquire of a free lease", held, "a", live)
	want := *before
	want.LeaseOwner, want.LeaseUntil = "a", held.LeaseUntil
	assertRecord(t, "Acquire changes nothing but the lease", &want, held)
	assertStored(t, s, "Acquire of a free lease", &want)

	got, ok := mustAcquire(t, s, id1, "b", live)
	assert.False(t, ok, "a live lease is not taken by another")
	assertRecord(t, "a refused Acquire's record says who holds the lease", &want, got)
	assertStored(t, s, "after a refused Acquire", &want)

	again, ok := mustAcquire(t, s, id1, "a", 2*live)
	assert.True(t, ok, "the owner takes its own lease again")
	assertLease(t, "Acquire of one's own lease", again, "a", 2*live)
	want.LeaseUntil = again.LeaseUntil
	assertRecord(t, "Acquire of one's own lease", &want, again)

	mustRelease(t, s, id1, "b")
	mustRelease(t, s, id1, "")
	assertStored(t, s, "only the owner releases", &want)

	mustRelease(t, s, id1, "a")
	want.LeaseOwner, want.LeaseUntil = "", time.Time{}
	assertStored(t, s, "released by its owner", &want)
	mustRelease(t, s, id1, "a")
	assertStored(t, s, "released twice", &want)

	got, ok = mustAcquire(t, s, id1, "b", live)
	assert.True(t, ok, "a released lease is free")
	assertLease(t, "Acquire of a released lease", got, "b", live)
	assert.Equal(t, before.Version, mustGet(t, s, id1).Version, "no Acquire or Release changes Version")
}

func checkAcquireExpired(t T, s connect.Store) {
	mustPut(t, s, record(id1, "acme"))
	held, ok := mustAcquire(t, s, id1, "a", brief)
	require.True(t, ok)
	assertLease(t, "Acquire", held, "a", brief)
	time.Sleep(lapse)

	got, ok := mustAcquire(t, s, id1, "b", live)
	assert.True(t, ok, "an expired lease is taken by another")
	assertLease(t, "Acquire of an expired lease", got, "b", live)
	assert.Equal(t, int64(1), got.Version)

	_, ok = mustAcquire(t, s, id1, "a", live)
	assert.False(t, ok, "the former owner does not take it back")
	mustRelease(t, s, id1, "a")
	assert.Equal(t, "b", mustGet(t, s, id1).LeaseOwner, "the former owner does not release it")
}

func checkClaim(t T, s connect.Store) {
	put := mustPut(t, s, record(id1, "acme"))
	want := *put

	for _, v := range []int64{0, 2, 7} {
		got, ok := mustClaim(t, s, id1, "a", v, live)
		assert.False(t, ok, "Claim with version %d of version 1", v)
		assertRecord(t, fmt.Sprintf("refused Claim of version %d", v), &want, got)
		assertStored(t, s, fmt.Sprintf("after the refused Claim of version %d", v), &want)
	}

	claimed, ok := mustClaim(t, s, id1, "a", 1, live)
	require.True(t, ok, "Claim of a free lease with the right version")
	assertLease(t, "Claim", claimed, "a", live)
	assertTime(t, "Claim: RefreshSentAt is ReadAt", claimed.ReadAt, claimed.RefreshSentAt)
	want.Version, want.LeaseOwner, want.LeaseUntil, want.RefreshSentAt = 2, "a", claimed.LeaseUntil, claimed.ReadAt
	assertRecord(t, "Claim", &want, claimed)
	assertStored(t, s, "Claim", &want)

	got, ok := mustClaim(t, s, id1, "a", 1, live)
	assert.False(t, ok, "the owner's Claim with a stale version")
	assertRecord(t, "refused Claim with a stale version", &want, got)
	assertStored(t, s, "after the refused Claim with a stale version", &want)

	got, ok = mustClaim(t, s, id1, "b", 2, live)
	assert.False(t, ok, "Claim of another's live lease")
	assertRecord(t, "refused Claim of another's lease says who holds it", &want, got)
	assertStored(t, s, "after the refused Claim of another's lease", &want)

	again, ok := mustClaim(t, s, id1, "a", 2, 2*live)
	require.True(t, ok, "Claim of one's own lease")
	assertLease(t, "Claim of one's own lease", again, "a", 2*live)
	assertTime(t, "Claim of one's own lease: RefreshSentAt is ReadAt", again.ReadAt, again.RefreshSentAt)
	want.Version, want.LeaseUntil, want.RefreshSentAt = 3, again.LeaseUntil, again.ReadAt
	assertRecord(t, "Claim of one's own lease", &want, again)
	assertStored(t, s, "Claim of one's own lease", &want)

	mustRelease(t, s, id1, "a")
	got, ok = mustClaim(t, s, id1, "b", 3, live)
	require.True(t, ok, "Claim of a released lease")
	assertLease(t, "Claim of a released lease", got, "b", live)
	assert.Equal(t, int64(4), got.Version)
	assertSame(t, "Claim changes no Connection field nor Tokens", put, got)
}

func checkClaimExpired(t T, s connect.Store) {
	mustPut(t, s, record(id1, "acme"))
	claimed, ok := mustClaim(t, s, id1, "a", 1, brief)
	require.True(t, ok)
	time.Sleep(lapse)

	got, ok := mustClaim(t, s, id1, "b", 1, live)
	assert.False(t, ok, "Claim of an expired lease with a stale version")
	assertRecord(t, "refused Claim of an expired lease", claimed, got)
	assertStored(t, s, "after the refused Claim of an expired lease", claimed)

	got, ok = mustClaim(t, s, id1, "b", 2, live)
	require.True(t, ok, "Claim of an expired lease with the right version")
	assertLease(t, "Claim of an expired lease", got, "b", live)
	assertTime(t, "Claim of an expired lease: RefreshSentAt is ReadAt", got.ReadAt, got.RefreshSentAt)
	assert.Equal(t, int64(3), got.Version)
	assertStored(t, s, "Claim of an expired lease", got)
}

func checkUpdateIsFenced(t T, s connect.Store) {
	put := mustPut(t, s, record(id1, "acme"))
	claimed, ok := mustClaim(t, s, id1, "a", 1, live)
	require.True(t, ok)
	before := mustGet(t, s, id1)

	for _, v := range []int64{0, put.Version, claimed.Version + 1, 9} {
		rec := *claimed
		rec.Version = v
		rec.Tokens, rec.LastError, rec.RefreshSentAt = []byte("stale"), "stale", time.Time{}
		_, err := s.Update(t.Context(), &rec, "a", true)
		assert.ErrorIs(t, err, connect.ErrVersionConflict, "Update of version %d over version %d", v, claimed.Version)
		assertStored(t, s, fmt.Sprintf("after the refused Update of version %d (lease not released either)", v), before)
	}

	rec := *claimed
	rec.Tokens = []byte("new")
	saved := mustUpdate(t, s, &rec, "a", false)
	assert.Equal(t, claimed.Version+1, saved.Version, "Update adds one to Version")
	stale := rec // the version before the write
	stale.Tokens = []byte("stale")
	_, err := s.Update(t.Context(), &stale, "a", true)
	assert.ErrorIs(t, err, connect.ErrVersionConflict, "the version an Update replaced is stale")
	assertStored(t, s, "after the refused stale Update", saved)
}

func checkUpdateWritesEveryField(t T, s connect.Store) {
	first := record(id1, "acme")
	first.LastRefreshAt = base.Add(-time.Hour)
	mustPut(t, s, first)
	claimed, ok := mustClaim(t, s, id1, "a", 1, live)
	require.True(t, ok)

	rec := *claimed
	rec.Account, rec.Status, rec.Scopes = "globex", connect.StatusReauthorizationRequired, []string{"users:read"}
	rec.CreatedAt = base.Add(5 * time.Hour) // never written
	rec.UpdatedAt, rec.TokenExpiry, rec.LastRefreshAt = base.Add(time.Hour), base.Add(2*time.Hour), base.Add(time.Hour+time.Microsecond)
	rec.LastError, rec.Tokens = "invalid_grant", []byte("new tokens")
	rec.RefreshSentAt = base.Add(3 * time.Hour)
	rec.Health, rec.FailingSince, rec.KeepAliveAt = connect.HealthFailing, base.Add(-72*time.Hour), base.Add(90*time.Minute)
	saved := mustUpdate(t, s, &rec, "a", false)
	want := rec
	want.CreatedAt = base
	want.Version = claimed.Version + 1
	assertRecord(t, "Update's record", &want, saved)
	assertStored(t, s, "Update", &want)
}

func checkUpdateClearsFields(t T, s connect.Store) {
	first := record(id1, "acme")
	first.LastRefreshAt, first.LastError = base.Add(time.Minute), "refresh_outcome_unknown"
	first.Health, first.FailingSince = connect.HealthFailing, base.Add(-time.Hour)
	mustPut(t, s, first)
	claimed, ok := mustClaim(t, s, id1, "a", 1, live)
	require.True(t, ok)
	require.False(t, claimed.RefreshSentAt.IsZero())

	// A disconnection: no tokens, no marker, no error, no expiry.
	rec := *claimed
	rec.Status, rec.Scopes, rec.UpdatedAt = connect.StatusDisconnected, nil, base.Add(time.Hour)
	rec.Tokens, rec.RefreshSentAt, rec.LastError, rec.TokenExpiry, rec.LastRefreshAt = nil, time.Time{}, "", time.Time{}, time.Time{}
	rec.Health, rec.FailingSince = connect.HealthOK, time.Time{}
	rec.CreatedAt = time.Time{} // never written
	saved := mustUpdate(t, s, &rec, "a", true)
	want := rec
	want.CreatedAt = base
	want.Version = claimed.Version + 1
	want.LeaseOwner, want.LeaseUntil = "", time.Time{}
	assertRecord(t, "Update's record", &want, saved)
	got := mustGet(t, s, id1)
	assertRecord(t, "Update (as stored)", &want, got)
	assert.Empty(t, got.Tokens, "Tokens are cleared")
	assert.True(t, got.RefreshSentAt.IsZero(), "RefreshSentAt is cleared: %v", got.RefreshSentAt)
	assert.Empty(t, got.LastError, "LastError is cleared")
	assert.True(t, got.TokenExpiry.IsZero(), "TokenExpiry is cleared: %v", got.TokenExpiry)
	assert.True(t, got.LastRefreshAt.IsZero(), "LastRefreshAt is cleared: %v", got.LastRefreshAt)
	assert.True(t, got.FailingSince.IsZero(), "FailingSince is cleared: %v", got.FailingSince)
	assert.Equal(t, connect.HealthOK, got.Health, "Health is written")

	// And sets them again.
	rec = *got
	rec.Status, rec.Scopes = connect.StatusActive, []string{"users:read", "expenses:read"}
	rec.Tokens, rec.RefreshSentAt, rec.LastError = []byte("tokens again"), base.Add(2*time.Hour), "token_endpoint_503"
	rec.TokenExpiry, rec.LastRefreshAt = base.Add(3*time.Hour), base.Add(2*time.Hour)
	saved = mustUpdate(t, s, &rec, "", false)
	want = rec
	want.Version = got.Version + 1
	assertRecord(t, "Update's record", &want, saved)
	assertStored(t, s, "Update", &want)
}

func checkUpdateLease(t T, s connect.Store) {
	mustPut(t, s, record(id1, "acme"))
	held, ok := mustAcquire(t, s, id1, "a", live)
	require.True(t, ok)
	until := held.LeaseUntil

	// Without release, the owner's Update keeps the lease as it is.
	rec := *held
	rec.LastError = "token_endpoint_unavailable"
	saved := mustUpdate(t, s, &rec, "a", false)
	want := rec
	want.Version = held.Version + 1
	assertRecord(t, "Update without release keeps the lease", &want, saved)
	assertStored(t, s, "Update without release keeps the lease", &want)
	_, ok = mustAcquire(t, s, id1, "b", live)
	assert.False(t, ok, "after an Update without release, the lease still holds against another")

	// The lease is never written from rec.
	rec = *saved
	rec.LeaseOwner, rec.LeaseUntil = "mallory", base.Add(100*live)
	saved = mustUpdate(t, s, &rec, "a", false)
	want.Version++
	assertRecord(t, "Update writes no lease from rec", &want, saved)
	assertStored(t, s, "Update writes no lease from rec", &want)

	// Release by another, or by nobody, leaves the lease to its owner.
	for _, other := range []string{"b", ""} {
		rec = *saved
		saved = mustUpdate(t, s, &rec, other, true)
		want.Version++
		assertRecord(t, fmt.Sprintf("Update with release by %q leaves a's lease", other), &want, saved)
		assertStored(t, s, fmt.Sprintf("Update with release by %q leaves a's lease", other), &want)
		_, ok = mustAcquire(t, s, id1, "b", live)
		assert.False(t, ok, "after an Update with release by %q, a's lease still holds", other)
	}
	assertTime(t, "after all that, LeaseUntil", until, mustGet(t, s, id1).LeaseUntil)

	// Release by the owner frees it.
	rec = *saved
	saved = mustUpdate(t, s, &rec, "a", true)
	want.Version++
	want.LeaseOwner, want.LeaseUntil = "", time.Time{}
	assertRecord(t, "Update with release by the owner frees the lease", &want, saved)
	assertStored(t, s, "Update with release by the owner frees the lease", &want)
	got, ok := mustAcquire(t, s, id1, "b", live)
	assert.True(t, ok, "a lease released by Update is free")

	// Without a lease to free, release writes just the same.
	rec = *got
	rec.LastError = ""
	mustRelease(t, s, id1, "b")
	saved = mustUpdate(t, s, &rec, "b", true)
	want.Version++
	want.LastError = ""
	assertRecord(t, "Update with release of a free lease", &want, saved)
	assert.True(t, mustGet(t, s, id1).CreatedAt.Equal(base), "no Update changes CreatedAt")
}

func listIDs(t T, s connect.Store, q connect.Query) []string {
	t.Helper()
	page, err := s.List(t.Context(), q)
	require.NoError(t, err, "List %+v", q)
	out := []string{}
	for _, c := range page {
		out = append(out, c.ID)
	}
	return out
}

func checkList(t T, s connect.Store) {
	var all []string
	for i := range 9 {
		rec := record(fmt.Sprintf("urn:pleo:company:%d", i), []string{"acme", "globex", "initech"}[i%3])
		if i%4 == 0 {
			rec.Status = connect.StatusReauthorizationRequired
		}
		if i == 5 {
			rec.LastError, rec.LastRefreshAt, rec.Scopes = "invalid_grant", base.Add(time.Minute), []string{"users:read"}
		}
		mustPut(t, s, rec)
		all = append(all, rec.ID)
	}
	id := func(i int) string { return fmt.Sprintf("urn:pleo:company:%d", i) }

	assert.Equal(t, all, listIDs(t, s, connect.Query{AllAccounts: true}), "every account's, ordered by ID")
	assert.Equal(t, []string{id(0), id(3), id(6)}, listIDs(t, s, connect.Query{Account: "acme"}))
	assert.Equal(t, []string{id(1), id(4), id(7)}, listIDs(t, s, connect.Query{Account: "globex"}))
	assert.Equal(t, []string{id(0), id(4), id(8)}, listIDs(t, s, connect.Query{AllAccounts: true, Status: connect.StatusReauthorizationRequired}))
	assert.Equal(t, []string{id(0)}, listIDs(t, s, connect.Query{Account: "acme", Status: connect.StatusReauthorizationRequired}))
	assert.Equal(t, []string{id(3), id(6)}, listIDs(t, s, connect.Query{Account: "acme", Status: connect.StatusActive}))
	assert.Empty(t, listIDs(t, s, connect.Query{AllAccounts: true, Status: connect.StatusDisconnected}))
	assert.Empty(t, listIDs(t, s, connect.Query{Account: "nobody"}))
	assert.Equal(t, []string{id(3), id(4)}, listIDs(t, s, connect.Query{AllAccounts: true, After: id(2), Limit: 2}))
	assert.Equal(t, []string{id(6)}, listIDs(t, s, connect.Query{Account: "acme", After: id(3)}))
	assert.Empty(t, listIDs(t, s, connect.Query{AllAccounts: true, After: id(8)}))

	// Page through every account's, two at a time.
	var paged []string
	after := ""
	for range len(all) {
		page := listIDs(t, s, connect.Query{AllAccounts: true, After: after, Limit: 2})
		if len(page) == 0 {
			break
		}
		assert.LessOrEqual(t, len(page), 2)
		paged = append(paged, page...)
		after = page[len(page)-1]
	}
	assert.Equal(t, all, paged, "paging through with After and Limit")

	// Every Connection field comes back as stored.
	page, err := s.List(t.Context(), connect.Query{AllAccounts: true})
	require.NoError(t, err)
	for _, c := range page {
		assertConnection(t, "List", mustGet(t, s, c.ID).Connection, c)
	}
	page, err = s.List(t.Context(), connect.Query{Account: "globex", Limit: 1})
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, "globex", page[0].Account)
	assert.Equal(t, []string{"users:read", "export-jobs:read"}, page[0].Scopes)
}

func checkListChecksTheQuery(t T, s connect.Store) {
	mustPut(t, s, record(id1, "acme"))
	for _, q := range []connect.Query{
		{},
		{Status: connect.StatusActive},
		{After: "urn:pleo:company:0", Limit: 5},
		{Account: "acme", AllAccounts: true},
	} {
		page, err := s.List(t.Context(), q)
		assert.ErrorIs(t, err, connect.ErrInvalidQuery, "List %+v", q)
		assert.Empty(t, page, "List %+v", q)
	}
}

func checkListPageSize(t T, s connect.Store) {
	n := connect.DefaultPageSize + 3
	for i := range n {
		mustPut(t, s, record(fmt.Sprintf("urn:pleo:company:%03d", i), "acme"))
	}
	page := listIDs(t, s, connect.Query{Account: "acme"})
	assert.Len(t, page, connect.DefaultPageSize, "a Query without a Limit selects DefaultPageSize")
	assert.Len(t, listIDs(t, s, connect.Query{AllAccounts: true, Limit: -1}), connect.DefaultPageSize, "nor with a negative one")
	assert.Len(t, listIDs(t, s, connect.Query{Account: "acme", Limit: n + 10}), n)
	if len(page) > 0 {
		assert.Len(t, listIDs(t, s, connect.Query{Account: "acme", After: page[len(page)-1]}), n-len(page))
	}
}

// checkDue: Due returns the active connections whose KeepAliveAt has
// come on the store's clock and whose lease is free or expired, earliest
// first, at most the limit, each with every field as stored.
func checkDue(t T, s connect.Store) {
	id := func(i int) string { return fmt.Sprintf("urn:pleo:company:%d", i) }
	now := time.Now()
	for i, at := range []time.Time{
		base.Add(3 * time.Hour), base.Add(time.Hour), now.Add(time.Hour), base.Add(2 * time.Hour), base, base.Add(4 * time.Hour),
	} {
		rec := record(id(i), "acme")
		rec.KeepAliveAt = at
		switch i {
		case 4:
			rec.Status = connect.StatusReauthorizationRequired // never kept alive
		case 5:
			rec.Health, rec.FailingSince = connect.HealthFailing, base
		}
		mustPut(t, s, rec)
	}
	dueIDs := func(limit int) []string {
		t.Helper()
		page, err := s.Due(t.Context(), limit)
		require.NoError(t, err, "Due %d", limit)
		var ids []string
		for _, c := range page {
			ids = append(ids, c.ID)
			assertConnection(t, "Due", mustGet(t, s, c.ID).Connection, c)
		}
		return ids
	}
	assert.Equal(t, []string{id(1), id(3), id(0), id(5)}, dueIDs(10),
		"the active ones whose KeepAliveAt has come, earliest first; not one due in an hour, nor one not active")
	assert.Equal(t, []string{id(1), id(3)}, dueIDs(2), "at most the limit")

	// A live lease keeps a connection out; a released or expired one does not.
	_, ok := mustAcquire(t, s, id(1), "a", live)
	require.True(t, ok)
	_, ok = mustAcquire(t, s, id(3), "b", brief)
	require.True(t, ok)
	time.Sleep(lapse)
	assert.Equal(t, []string{id(3), id(0), id(5)}, dueIDs(10), "not one whose lease is held")
	mustRelease(t, s, id(1), "a")
	assert.Equal(t, []string{id(1), id(3), id(0), id(5)}, dueIDs(10), "released: due again")
}

// checkDueDefaults: a record written without KeepAliveAt is due at once
// (the store's time), and without Health is HealthOK.
func checkDueDefaults(t T, s connect.Store) {
	rec := record(id1, "acme")
	rec.KeepAliveAt, rec.Health = time.Time{}, ""
	before := time.Now().Add(-time.Minute)
	got := mustPut(t, s, rec)
	assert.Equal(t, connect.HealthOK, got.Health, "Put without Health")
	assert.False(t, got.KeepAliveAt.Before(before) || got.KeepAliveAt.After(time.Now().Add(time.Minute)),
		"Put without KeepAliveAt stores the store's time: %v", got.KeepAliveAt)
	page, err := s.Due(t.Context(), 10)
	require.NoError(t, err)
	if assert.Len(t, page, 1, "due at once") {
		assert.Equal(t, id1, page[0].ID)
	}
	upd := *got
	upd.KeepAliveAt, upd.Health = time.Time{}, ""
	saved := mustUpdate(t, s, &upd, "", false)
	assert.Equal(t, connect.HealthOK, saved.Health, "Update without Health")
	assert.False(t, saved.KeepAliveAt.IsZero(), "Update without KeepAliveAt stores the store's time")
}

// checkCount: Count gives how many connections have each status and
// health, and no pair that none has.
func checkCount(t T, s connect.Store) {
	counts, err := s.Count(t.Context())
	require.NoError(t, err)
	assert.Empty(t, counts, "an empty store")
	for i := range 7 {
		rec := record(fmt.Sprintf("urn:pleo:company:%d", i), "acme")
		switch {
		case i < 3:
		case i < 5:
			rec.Health, rec.FailingSince = connect.HealthFailing, base
		case i < 6:
			rec.Status = connect.StatusReauthorizationRequired
		default:
			rec.Status = connect.StatusDisconnected
		}
		mustPut(t, s, rec)
	}
	counts, err = s.Count(t.Context())
	require.NoError(t, err)
	assert.ElementsMatch(t, []connect.StatusCount{
		{Status: connect.StatusActive, Health: connect.HealthOK, N: 3},
		{Status: connect.StatusActive, Health: connect.HealthFailing, N: 2},
		{Status: connect.StatusReauthorizationRequired, Health: connect.HealthOK, N: 1},
		{Status: connect.StatusDisconnected, Health: connect.HealthOK, N: 1},
	}, counts)
}

func mustEvents(t T, s connect.Store, after int64, limit int) []connect.Event {
	t.Helper()
	evs, err := s.Events(t.Context(), after, limit)
	require.NoError(t, err, "Events after %d", after)
	return evs
}

// checkEvents: every Put, and every Update that changes Status, Health or
// Account, records one event in the same write, with the change's fields;
// no other write records one, a refused write neither; Events pages
// through them in order.
func checkEvents(t T, s connect.Store) {
	assert.Empty(t, mustEvents(t, s, 0, 10), "no events in an empty store")
	first := record(id1, "acme")
	stored := mustPut(t, s, first)
	evs := mustEvents(t, s, 0, 10)
	require.Len(t, evs, 1, "a new connection is an event")
	e := evs[0]
	assert.Equal(t, id1, e.ConnectionID)
	assert.Equal(t, "acme", e.Account)
	assert.Empty(t, e.OldStatus)
	assert.Equal(t, connect.StatusActive, e.NewStatus)
	assert.Equal(t, connect.HealthOK, e.NewHealth)
	assert.True(t, e.Grant)
	assert.Equal(t, stored.Version, e.Version)
	assertTime(t, "At", first.UpdatedAt, e.At)
	assert.Equal(t, connect.EventConnected, e.Kind())

	// A refresh: a claim, the rotated tokens saved; a lease taken and
	// given back. No event.
	claimed, ok := mustClaim(t, s, id1, "a", stored.Version, live)
	require.True(t, ok)
	upd := *claimed
	upd.Tokens, upd.RefreshSentAt, upd.LastRefreshAt = []byte("rotated"), time.Time{}, base.Add(time.Minute)
	saved := mustUpdate(t, s, &upd, "a", true)
	_, ok = mustAcquire(t, s, id1, "b", live)
	require.True(t, ok)
	mustRelease(t, s, id1, "b")
	assert.Len(t, mustEvents(t, s, 0, 10), 1, "a refresh, a lease: no event")

	// A refused write records nothing.
	stale := upd
	stale.Status = connect.StatusDisconnected
	_, err := s.Update(t.Context(), &stale, "", false)
	require.ErrorIs(t, err, connect.ErrVersionConflict)
	assert.Len(t, mustEvents(t, s, 0, 10), 1, "a refused Update is no event")

	// Health, then status.
	failing := *saved
	failing.Health, failing.FailingSince, failing.UpdatedAt = connect.HealthFailing, base, base.Add(2*time.Minute)
	saved = mustUpdate(t, s, &failing, "", false)
	dead := *saved
	dead.Status, dead.LastError, dead.UpdatedAt = connect.StatusReauthorizationRequired, "invalid_grant", base.Add(3*time.Minute)
	saved = mustUpdate(t, s, &dead, "", false)
	evs = mustEvents(t, s, 0, 10)
	require.Len(t, evs, 3)
	assert.Equal(t, connect.EventFailing, evs[1].Kind(), "%+v", evs[1])
	assert.Equal(t, connect.HealthOK, evs[1].OldHealth)
	assert.Equal(t, connect.HealthFailing, evs[1].NewHealth)
	assert.False(t, evs[1].Grant)
	assert.Equal(t, connect.EventReauthorizationRequired, evs[2].Kind(), "%+v", evs[2])
	assert.Equal(t, connect.StatusActive, evs[2].OldStatus)
	assert.Equal(t, "invalid_grant", evs[2].Reason)
	assert.Equal(t, saved.Version, evs[2].Version)
	assertTime(t, "At", dead.UpdatedAt, evs[2].At)

	// A new grant, under another account.
	again := record(id1, "globex")
	again.Version = saved.Version
	mustPut(t, s, again)
	mustPut(t, s, record(id2, "acme"))
	evs = mustEvents(t, s, 0, 10)
	require.Len(t, evs, 5)
	assert.True(t, evs[3].Grant)
	assert.Equal(t, "acme", evs[3].OldAccount)
	assert.Equal(t, "globex", evs[3].Account)
	assert.Equal(t, connect.EventAccountChanged, evs[3].Kind())
	assert.Equal(t, id2, evs[4].ConnectionID)
	for i := 1; i < len(evs); i++ {
		assert.Greater(t, evs[i].Seq, evs[i-1].Seq, "in order")
	}

	// Paging.
	page := mustEvents(t, s, 0, 2)
	assert.Equal(t, evs[:2], page, "at most the limit")
	assert.Equal(t, evs[2:], mustEvents(t, s, page[1].Seq, 10), "after a seq")
	assert.Empty(t, mustEvents(t, s, evs[4].Seq, 10), "none after the last")
}

// checkEventCursor: one owner at a time holds a cursor's lease; only the
// holder moves it; an expired lease is taken over, with the position.
func checkEventCursor(t T, s connect.Store) {
	ctx := t.Context()
	pos, ok, err := s.TakeCursor(ctx, "events", "a", live)
	require.NoError(t, err)
	assert.True(t, ok, "a new cursor is free")
	assert.Zero(t, pos)
	pos, ok, err = s.TakeCursor(ctx, "events", "b", live)
	require.NoError(t, err)
	assert.False(t, ok, "held by a")
	assert.Zero(t, pos)
	assert.ErrorIs(t, s.MoveCursor(ctx, "events", "b", 9, live), connect.ErrCursorLost, "b does not hold it")
	require.NoError(t, s.MoveCursor(ctx, "events", "a", 5, live))
	pos, ok, err = s.TakeCursor(ctx, "events", "a", live)
	require.NoError(t, err)
	assert.True(t, ok, "a takes its own again")
	assert.Equal(t, int64(5), pos)

	_, ok, err = s.TakeCursor(ctx, "other", "b", live)
	require.NoError(t, err)
	assert.True(t, ok, "another cursor is another lease")

	require.NoError(t, s.MoveCursor(ctx, "events", "a", 6, brief))
	time.Sleep(lapse)
	pos, ok, err = s.TakeCursor(ctx, "events", "b", live)
	require.NoError(t, err)
	assert.True(t, ok, "an expired lease is taken over")
	assert.Equal(t, int64(6), pos, "with the position")
	assert.ErrorIs(t, s.MoveCursor(ctx, "events", "a", 7, live), connect.ErrCursorLost, "a's lease is gone")
}

// checkConcurrentEvents: while connections change concurrently, a reader
// that pages through the events, each page after the last seq it read,
// sees every event exactly once: none is committed later with a seq
// below one already read.
func checkConcurrentEvents(t T, s connect.Store) {
	const writers, changes = 4, 15
	for w := range writers {
		mustPut(t, s, record(fmt.Sprintf("urn:pleo:company:w%d", w), "acme"))
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []string
	)
	for w := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("urn:pleo:company:w%d", w)
			for i := range changes {
				rec, err := s.Get(t.Context(), id)
				if err == nil {
					rec.Health = []connect.Health{connect.HealthFailing, connect.HealthOK}[i%2]
					_, err = s.Update(t.Context(), rec, "", false)
				}
				if err != nil {
					mu.Lock()
					failed = append(failed, err.Error())
					mu.Unlock()
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[int64]int{}
	var pos int64
	read := func() int {
		evs, err := s.Events(t.Context(), pos, 7)
		if err != nil {
			mu.Lock()
			failed = append(failed, err.Error())
			mu.Unlock()
			return 0
		}
		for _, e := range evs {
			seen[e.Seq]++
			pos = e.Seq
		}
		return len(evs)
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		read()
	}
	for read() > 0 {
	}
	require.Empty(t, failed)
	all := mustEvents(t, s, 0, 10*writers*changes)
	assert.Len(t, all, writers*(changes+1), "a Put and every change of each connection")
	for _, e := range all {
		assert.Equal(t, 1, seen[e.Seq], "event %d read once by the paging reader", e.Seq)
	}
	assert.Len(t, seen, len(all), "the reader read nothing else")
}

func checkUseFlow(t T, s connect.Store) {
	use := func(id string) bool {
		t.Helper()
		return mustUseFlow(t, s, id, live)
	}
	assert.True(t, use("flow-1"), "the first use")
	assert.False(t, use("flow-1"), "a second use")
	assert.True(t, use("flow-2"), "another flow")
	assert.False(t, use("flow-1"), "a third use")
	assert.False(t, use("flow-2"), "the other's second use")
}

func checkUseFlowExpires(t T, s connect.Store) {
	require.True(t, mustUseFlow(t, s, "flow-brief", brief))
	require.True(t, mustUseFlow(t, s, "flow-kept", live))
	time.Sleep(lapse)
	assert.True(t, mustUseFlow(t, s, "flow-brief", live), "a flow past its ttl is forgotten")
	assert.False(t, mustUseFlow(t, s, "flow-brief", live), "and remembered again")
	assert.False(t, mustUseFlow(t, s, "flow-kept", live), "a flow within its ttl is remembered")
}

// concurrently runs fn(i) for i in [0, n) at once, and returns the
// errors they returned.
func concurrently(n int, fn func(i int) error) []error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			if err := fn(i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// winners collects the goroutines that won.
type winners struct {
	mu   sync.Mutex
	list []string
}

func (w *winners) add(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, name)
}

func (w *winners) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.list)
}

// race runs try for 16 owners of round at once, requires that none got an
// error, and returns the owners for whom it succeeded.
func race(t T, round int, try func(owner string) (bool, error)) []string {
	var won winners
	errs := concurrently(16, func(i int) error {
		owner := fmt.Sprintf("owner-%d-%d", round, i)
		ok, err := try(owner)
		if ok {
			won.add(owner)
		}
		return err
	})
	require.Empty(t, errs)
	return won.get()
}

func checkConcurrentUseFlow(t T, s connect.Store) {
	ctx := t.Context()
	for round := range 3 {
		id := fmt.Sprintf("flow-%d", round)
		firsts := race(t, round, func(string) (bool, error) { return s.UseFlow(ctx, id, live) })
		assert.Len(t, firsts, 1, "round %d: exactly one use is the first", round)
	}
}

func checkConcurrentAcquire(t T, s connect.Store) {
	ctx := t.Context()
	rec := mustPut(t, s, record(id1, "acme"))
	for round := range 4 {
		list := race(t, round, func(owner string) (bool, error) {
			_, ok, err := s.Acquire(ctx, rec.ID, owner, live)
			return ok, err
		})
		require.Len(t, list, 1, "round %d: exactly one instance takes the lease", round)
		got := mustGet(t, s, rec.ID)
		assert.Equal(t, list[0], got.LeaseOwner, "round %d: the winner holds the lease", round)
		assert.Equal(t, rec.Version, got.Version, "round %d: Acquire changes no Version", round)
		if round%2 == 0 {
			mustRelease(t, s, rec.ID, list[0])
		} else {
			// Let it expire.
			_, ok := mustAcquire(t, s, rec.ID, list[0], brief)
			require.True(t, ok)
			time.Sleep(lapse)
		}
	}
}

func checkConcurrentClaim(t T, s connect.Store) {
	ctx := t.Context()
	rec := mustPut(t, s, record(id1, "acme"))
	version := rec.Version
	for round := range 3 {
		list := race(t, round, func(owner string) (bool, error) {
			_, ok, err := s.Claim(ctx, rec.ID, owner, version, live)
			return ok, err
		})
		require.Len(t, list, 1, "round %d: exactly one instance claims the refresh", round)
		got := mustGet(t, s, rec.ID)
		assert.Equal(t, version+1, got.Version, "round %d: one Claim, one more Version", round)
		assert.Equal(t, list[0], got.LeaseOwner, "round %d: the winner holds the lease", round)
		assert.False(t, got.RefreshSentAt.IsZero(), "round %d: RefreshSentAt is set", round)
		mustRelease(t, s, rec.ID, list[0])
		version = got.Version
	}
}

func checkConcurrentPut(t T, s connect.Store) {
	ctx := t.Context()
	mustPut(t, s, record(id1, "acme"))
	for _, tc := range []struct {
		id      string
		version int64
	}{{id1, 1}, {id2, 0}} {
		var won winners
		errs := concurrently(8, func(i int) error {
			rec := record(tc.id, "acme")
			rec.Tokens = fmt.Appendf(nil, "grant-%d", i)
			rec.Version = tc.version
			_, err := s.Put(ctx, rec)
			switch {
			case err == nil:
				won.add(string(rec.Tokens))
			case errors.Is(err, connect.ErrVersionConflict):
				return nil
			}
			return err
		})
		require.Empty(t, errs, "every refused Put is a version conflict")
		list := won.get()
		require.Len(t, list, 1, "exactly one Put of version %d succeeds", tc.version)
		got := mustGet(t, s, tc.id)
		assert.Equal(t, tc.version+1, got.Version)
		assert.Equal(t, list[0], string(got.Tokens), "the winner's grant is stored")
	}
}

func checkConcurrentReadModifyWrite(t T, s connect.Store) {
	ctx := t.Context()
	rec := mustPut(t, s, record(id1, "acme"))
	// Instances take turns through Claim; each adds its mark to the
	// tokens and saves them with Update. None may lose another's write.
	giveUp := deadline(t)
	errs := concurrently(8, func(i int) error {
		owner := fmt.Sprintf("owner-%d", i)
		version := rec.Version
		for time.Now().Before(giveUp) {
			held, ok, err := s.Claim(ctx, rec.ID, owner, version, live)
			switch {
			case err != nil:
				return err
			case held == nil:
				return errors.New("no record from Claim")
			case !ok:
				version = held.Version
				time.Sleep(time.Millisecond)
				continue
			}
			w := *held
			w.Tokens = append(slices.Clone(held.Tokens), byte('a'+i))
			_, err = s.Update(ctx, &w, owner, true)
			if errors.Is(err, connect.ErrVersionConflict) {
				version = 0 // read it again
				continue
			}
			return err
		}
		return fmt.Errorf("%s gave up", owner)
	})
	require.Empty(t, errs)
	got := mustGet(t, s, rec.ID)
	for i := range 8 {
		assert.Equal(t, 1, countByte(got.Tokens, byte('a'+i)), "owner-%d's write is there once", i)
	}
	assert.Len(t, got.Tokens, len(rec.Tokens)+8, "every instance's write is there")
	assert.Equal(t, rec.Version+16, got.Version, "each Claim and each Update added one")
	assertFree(t, "after every Update released", got)
}

func countByte(b []byte, c byte) int {
	n := 0
	for _, x := range b {
		if x == c {
			n++
		}
	}
	return n
}
