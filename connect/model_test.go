package connect_test

// The model-based test of the refresh protocol, in the shape of etcd's
// robustness tests: per seed, 2 to 4 Managers whose clocks are skewed by
// up to five minutes share one store and one fake Pleo; a random schedule
// of operations (Token, an API call that gets a 401, a company connecting
// for its own account or another's, a callback delivered to two
// instances, Disconnect, the clock moving on) runs with random faults (a
// 5xx, a dropped answer, a refresh Pleo processes after the client gave
// up, a stall after the refresh is recorded, a store outage longer than
// the lease, an instance killed mid-operation) and random interleavings (an
// operation of another instance run in the middle of one). After every
// operation the fake Pleo's ground truth is checked against what the store
// says:
//
//   - no refresh token or code was ever presented twice;
//   - no connection is shown disconnected while a grant for its company is
//     live at Pleo;
//   - no live grant is held by no stored record;
//   - every active connection without a refresh under way holds a current
//     refresh token of a live grant;
//   - no connection's account changed but through a disconnect;
//
// except where the operation log explains it: a refresh Pleo processed
// whose answer never reached the Manager (dropped, processed late, or its
// instance killed), a grant that a connection replaced or that was
// refused to another account (both documented as dropped, not revoked),
// and an operation that ended in an error or a kill after Pleo acted on
// its request.
//
// Time is simulated: every clock, lease, quarantine and wait runs on one
// clock the schedule moves, so a schedule takes milliseconds and replays
// exactly. A failure prints the seed and the operation log;
// PLEOOAUTH_MODEL_SEED=N replays one seed, PLEOOAUTH_MODEL_SCHEDULES=N runs
// N schedules on the memory store (N/5 on SQLite and PostgreSQL).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/pgstore"
	"github.com/partnerkit/pleooauth/connect/sqlitestore"
	"github.com/partnerkit/pleooauth/internal/pgtest"
	"github.com/partnerkit/pleooauth/internal/pleoapi"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// The model's timing: the Manager's defaults, which the schedules stress.
const (
	modelLease      = connect.DefaultLeaseTTL
	modelTimeout    = connect.DefaultRefreshTimeout
	modelQuarantine = connect.DefaultQuarantine
	// modelKeepAlive is short, so that keep-alive sweeps, which the
	// schedules run among the other operations, find connections due.
	modelKeepAlive = 30 * time.Minute
	// modelFailingAfter is short too, so that health changes.
	modelFailingAfter = 15 * time.Minute
)

func modelSchedules(t *testing.T, def int) int {
	if v := os.Getenv("PLEOOAUTH_MODEL_SCHEDULES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		return n
	}
	return def
}

// runModel runs n schedules from seed base over the stores newStore makes
// (nil: a MemoryStore on the simulated clock), or the one seed that
// PLEOOAUTH_MODEL_SEED names.
func runModel(t *testing.T, n int, newStore func(t *testing.T, now func() time.Time) (connect.Store, func())) {
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	if v := os.Getenv("PLEOOAUTH_MODEL_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
		seeds = []uint64{s}
	}
	for _, seed := range seeds {
		md := newModel(t, seed, newStore)
		md.run()
		md.close()
		if t.Failed() {
			return
		}
	}
	t.Logf("%d schedules passed", len(seeds))
}

func TestModelMemory(t *testing.T) {
	t.Parallel()
	runModel(t, modelSchedules(t, 150), nil)
}

func TestModelSQLite(t *testing.T) {
	t.Parallel()
	var now scheduleClock
	s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "model.db"), sqlitestore.WithClock(now.Now))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	runModel(t, modelSchedules(t, 150)/5, func(t *testing.T, clock func() time.Time) (connect.Store, func()) {
		now.set(clock)
		return s, func() {
			_, err := s.DB().ExecContext(context.Background(), `DELETE FROM pleooauth_connections; DELETE FROM pleooauth_flows; DELETE FROM pleooauth_events; DELETE FROM pleooauth_cursors`)
			require.NoError(t, err)
		}
	})
}

func TestModelPostgres(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig(pgtest.Database(t))
	require.NoError(t, err)
	// The schedules check the protocol, not durability: commits need not
	// wait for the disk.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var now scheduleClock
	s, err := pgstore.New(t.Context(), pool, pgstore.WithClock(now.Now))
	require.NoError(t, err)
	runModel(t, modelSchedules(t, 150)/5, func(t *testing.T, clock func() time.Time) (connect.Store, func()) {
		now.set(clock)
		return s, func() {
			_, err := pool.Exec(context.Background(), `TRUNCATE pleooauth_connections, pleooauth_flows, pleooauth_events, pleooauth_cursors`)
			require.NoError(t, err)
		}
	})
}

// scheduleClock is the clock of whichever schedule runs now, for a store
// opened once and emptied between schedules.
type scheduleClock struct {
	now atomic.Pointer[func() time.Time]
}

func (c *scheduleClock) set(now func() time.Time) { c.now.Store(&now) }

func (c *scheduleClock) Now() time.Time {
	if p := c.now.Load(); p != nil {
		return (*p)()
	}
	return time.Now()
}

// simClock is the schedule's one clock. Advancing it first lets the fake
// process the late requests that are due (Pleo processes a request within
// the late-delivery bound the quarantine assumes, never after).
type simClock struct {
	mu  sync.Mutex
	now time.Time
	due func(to time.Time) // processes what is due by to; called without mu
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	to := c.Now().Add(d)
	if c.due != nil {
		c.due(to)
	}
	c.mu.Lock()
	c.now = to
	c.mu.Unlock()
}

// instance is one of the backend's processes.
type instance struct {
	n       int
	skew    time.Duration
	m       *connect.Manager
	h       *connect.Handlers
	dead    bool
	killIn  int  // kill at this many more calls (store or HTTP); 0: never
	killPre bool // kill before the call is made rather than after
	stall   time.Duration
	outage  bool // the store goes away at this instance's next write
}

// heldLate is a refresh the fake holds: it must be processed by due.
type heldLate struct{ due time.Time }

type model struct {
	t         *testing.T
	seed      uint64
	rng       *rand.Rand
	clock     *simClock
	srv       *pleooauthtest.Server
	cfg       *oauth2.Config
	key       []byte
	store     connect.Store
	insts     []*instance
	companies []string
	accounts  []string
	log       []string

	mu          sync.Mutex // guards what the fake's goroutines touch
	tokenFault  pleooauthtest.Fault
	lateDelay   time.Duration // how late Pleo processes a held refresh
	late        []heldLate
	outageUntil time.Time
	depth       int                // nesting of operations
	busy        map[*instance]bool // instances in the middle of one
	calm        bool               // no more interleavings: the schedule's end
	closers     []func()           // what the schedule started, to stop

	owner     map[string]string // company -> the account it was last connected for (which account a connect picks)
	explained map[int]string    // grant ID -> why it may be live and unheld, or dead and held
	lostRTs   map[string]bool   // refresh tokens presented without an answer reaching the Manager
	opGrants  []string          // tokens of grants Pleo acted on in the current top-level operation
}

func newModel(t *testing.T, seed uint64, newStore func(*testing.T, func() time.Time) (connect.Store, func())) *model {
	md := &model{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		owner: map[string]string{}, busy: map[*instance]bool{}, explained: map[int]string{}, lostRTs: map[string]bool{},
	}
	md.clock = &simClock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), due: md.processDue}
	creds, err := pleooauth.NewCredentials(testClientID, testClientSecret)
	require.NoError(t, err)
	reg := testRegistration(redirect)
	md.srv = pleooauthtest.NewServer(reg, creds, pleooauthtest.WithClock(md.clock.Now),
		pleooauthtest.WithTokenFaults(md.decideFault))
	md.closers = append(md.closers, md.srv.Close)
	md.cfg, err = reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(md.srv.Endpoints()))
	require.NoError(t, err)
	md.key = make([]byte, 32)
	for i := range md.key {
		md.key[i] = byte(md.rng.IntN(256))
	}
	if newStore == nil {
		ms := connect.NewMemoryStore()
		ms.Now = md.clock.Now
		md.store = ms
	} else {
		var closeStore func()
		md.store, closeStore = newStore(t, md.clock.Now)
		md.closers = append(md.closers, closeStore)
	}
	for i := range 2 + md.rng.IntN(3) {
		md.insts = append(md.insts, md.newInstance(i, time.Duration(md.rng.IntN(601)-300)*time.Second))
	}
	for i := range 2 + md.rng.IntN(2) {
		md.companies = append(md.companies, fmt.Sprintf("urn:pleo:company:00000000-0000-4000-8000-%012d", i+1))
	}
	md.accounts = []string{"acme", "globex", "initech"}[:2+md.rng.IntN(2)]
	return md
}

// close stops what the schedule started.
func (md *model) close() {
	for _, c := range slices.Backward(md.closers) {
		c()
	}
}

func (md *model) logf(format string, args ...any) {
	md.log = append(md.log, strings.Repeat("  ", md.depth)+fmt.Sprintf(format, args...))
}

func (md *model) fail(format string, args ...any) {
	md.t.Helper()
	var grants []string
	for _, g := range md.srv.Grants() {
		grants = append(grants, fmt.Sprintf("grant %d of %s: live %v, revoked %q, explained %q", g.ID, short(g.Subject), g.Live, g.Revoked, md.explained[g.ID]))
	}
	md.t.Fatalf("seed %d (replay: PLEOOAUTH_MODEL_SEED=%d): %s\noperation log:\n%s\nPleo's grants:\n%s", md.seed, md.seed, fmt.Sprintf(format, args...),
		strings.Join(md.log, "\n"), strings.Join(grants, "\n"))
}

// newInstance starts a process: a Manager on a clock skewed by skew.
func (md *model) newInstance(n int, skew time.Duration) *instance {
	in := &instance{n: n, skew: skew}
	now := func() time.Time { return md.clock.Now().Add(skew) }
	hc := &http.Client{Transport: &simTransport{md: md, in: in, base: md.srv.Client().Transport}}
	m, err := connect.NewManager(md.cfg, &simStore{Store: md.store, md: md, in: in},
		connect.WithKeys(md.key), connect.WithHTTPClient(hc), connect.WithClock(now),
		connect.WithLogger(slog.New(&logHandler{md: md, in: in})),
		connect.WithEndpoints(md.srv.Endpoints()), connect.WithKeepAlive(modelKeepAlive), connect.WithFailingAfter(modelFailingAfter))
	require.NoError(md.t, err)
	connect.SetJitter(m, func(d time.Duration) time.Duration {
		if d <= 0 {
			return 0
		}
		return time.Duration(md.rng.Int64N(int64(d)))
	})
	connect.SetSleep(m, func(ctx context.Context, d time.Duration) error {
		md.clock.Advance(d)
		return ctx.Err()
	})
	flow, err := connect.NewFlow(md.cfg, md.key, connect.WithClock(now))
	require.NoError(md.t, err)
	in.m = m
	in.h = &connect.Handlers{
		Flow: flow, Manager: m,
		Account: func(r *http.Request) (string, error) { return r.Header.Get("X-Account"), nil },
		OnError: func(w http.ResponseWriter, _ *http.Request, err error) {
			w.Header().Set("X-Error", err.Error())
			w.WriteHeader(http.StatusConflict)
		},
	}
	return in
}

// logHandler puts what a Manager logs in the operation log.
type logHandler struct {
	md    *model
	in    *instance
	attrs []slog.Attr
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "  [instance %d logs] %s", h.in.n, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.md.logf("%s", b.String())
	return nil
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{md: h.md, in: h.in, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }

// decideFault is the fake's token endpoint asking what to do wrong.
func (md *model) decideFault(r pleooauthtest.TokenRequest) pleooauthtest.Fault {
	md.mu.Lock()
	defer md.mu.Unlock()
	if r.GrantType != "refresh_token" {
		return pleooauthtest.Fault{}
	}
	f := md.tokenFault
	md.tokenFault = pleooauthtest.Fault{}
	if f.ProcessLate {
		md.late = append(md.late, heldLate{due: md.clock.Now().Add(md.lateDelay)})
	}
	return f
}

// processDue lets the fake process every held request due by to.
func (md *model) processDue(to time.Time) {
	md.mu.Lock()
	due := slices.ContainsFunc(md.late, func(h heldLate) bool { return !h.due.After(to) })
	if due {
		md.late = nil // ProcessLate processes them all: earlier is allowed
	}
	md.mu.Unlock()
	if due {
		n := md.srv.ProcessLate()
		md.logf("  (Pleo processes %d late refresh)", n)
	}
}

// errKilled is what a killed instance's calls return.
var errKilled = errors.New("model: the instance was killed")

// errOutage is what the store answers while it is away.
var errOutage = errors.New("model: the store is unreachable")

// step counts one call of in's (store or HTTP); it reports whether the
// instance dies now, before or after the call.
func (md *model) step(in *instance, pre bool) bool {
	if in.dead {
		return true
	}
	if in.killIn > 0 && in.killPre == pre {
		in.killIn--
		if in.killIn == 0 {
			in.dead = true
			md.logf("  ! instance %d killed %s a call", in.n, map[bool]string{true: "before", false: "after"}[pre])
			return true
		}
	}
	return false
}

// maybeNest runs, now and then, an operation of another instance in the
// middle of one of in's: the interleavings that wall-clock races reach
// by luck.
func (md *model) maybeNest(in *instance, where string) {
	if md.calm || md.depth >= 2 || md.rng.IntN(100) >= 8 {
		return
	}
	// Not an instance already in the middle of an operation: a process
	// serialises its own calls for one connection.
	others := slices.DeleteFunc(slices.Clone(md.insts), func(o *instance) bool { return o == in || o.dead || md.busy[o] })
	if len(others) == 0 {
		return
	}
	other := others[md.rng.IntN(len(others))]
	md.logf("  >> during instance %d's %s:", in.n, where)
	md.depth++
	md.randomOp(other, false)
	md.depth--
}

// simStore is the store as one instance reaches it.
type simStore struct {
	connect.Store
	md *model
	in *instance
}

func (s *simStore) enter() error {
	if s.md.step(s.in, true) {
		return errKilled
	}
	if s.md.clock.Now().Before(s.md.outageUntil) {
		return errOutage
	}
	return nil
}

func (s *simStore) leave(what string) error {
	if s.md.step(s.in, false) {
		return errKilled
	}
	s.md.maybeNest(s.in, what)
	return nil
}

func (s *simStore) Get(ctx context.Context, id string) (*connect.Record, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	r, err := s.Store.Get(ctx, id)
	if lerr := s.leave("Get"); lerr != nil {
		return nil, lerr
	}
	return r, err
}

func (s *simStore) Put(ctx context.Context, rec *connect.Record) (*connect.Record, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	prior, _ := s.Store.Get(ctx, rec.ID)
	r, err := s.Store.Put(ctx, rec)
	if err == nil {
		s.md.checkAccount(prior, r)
		if g := s.md.grantOf(prior); g != 0 && g != s.md.grantOf(r) {
			// Complete drops a replaced grant; it does not revoke it.
			s.md.explained[g] = "replaced by a new grant of the same company"
		}
	}
	if lerr := s.leave("Put"); lerr != nil {
		return nil, lerr
	}
	return r, err
}

func (s *simStore) Acquire(ctx context.Context, id, owner string, ttl time.Duration) (*connect.Record, bool, error) {
	if err := s.enter(); err != nil {
		return nil, false, err
	}
	r, ok, err := s.Store.Acquire(ctx, id, owner, ttl)
	if lerr := s.leave("Acquire"); lerr != nil {
		return nil, false, lerr
	}
	return r, ok, err
}

func (s *simStore) Claim(ctx context.Context, id, owner string, version int64, ttl time.Duration) (*connect.Record, bool, error) {
	if err := s.enter(); err != nil {
		return nil, false, err
	}
	r, ok, err := s.Store.Claim(ctx, id, owner, version, ttl)
	if ok && s.in.stall > 0 {
		s.md.logf("  ~ instance %d stalls %s after its claim", s.in.n, s.in.stall)
		s.md.clock.Advance(s.in.stall)
		s.in.stall = 0
	}
	if lerr := s.leave("Claim"); lerr != nil {
		return nil, false, lerr
	}
	return r, ok, err
}

func (s *simStore) Update(ctx context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	if s.in.outage {
		s.in.outage = false
		d := modelLease + time.Second + time.Duration(s.md.rng.Int64N(int64(15*time.Second)))
		s.md.outageUntil = s.md.clock.Now().Add(d)
		s.md.logf("  ~ the store goes away for %s", d)
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	prior, _ := s.Store.Get(ctx, rec.ID)
	r, err := s.Store.Update(ctx, rec, owner, release)
	if err == nil {
		s.md.checkAccount(prior, r)
	}
	if lerr := s.leave("Update"); lerr != nil {
		return nil, lerr
	}
	return r, err
}

func (s *simStore) Release(ctx context.Context, id, owner string) error {
	if err := s.enter(); err != nil {
		return err
	}
	err := s.Store.Release(ctx, id, owner)
	if lerr := s.leave("Release"); lerr != nil {
		return lerr
	}
	return err
}

func (s *simStore) Due(ctx context.Context, limit int) ([]connect.Connection, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	due, err := s.Store.Due(ctx, limit)
	if lerr := s.leave("Due"); lerr != nil {
		return nil, lerr
	}
	return due, err
}

func (s *simStore) UseFlow(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	first, err := s.Store.UseFlow(ctx, id, ttl)
	if lerr := s.leave("UseFlow"); lerr != nil {
		return false, lerr
	}
	return first, err
}

// simTransport is the network as one instance reaches Pleo.
type simTransport struct {
	md   *model
	in   *instance
	base http.RoundTripper
}

func (tr *simTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	md := tr.md
	if md.step(tr.in, true) {
		return nil, errKilled
	}
	var refreshToken string
	if r.URL.Path == pleoapi.TokenPath && r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("grant_type") == "refresh_token" {
			refreshToken = form.Get("refresh_token")
		}
	}
	// What happens meanwhile takes simulated time: a request whose
	// deadline passes before it is written is not sent, as net/http does
	// with a context's deadline.
	start := md.clock.Now()
	deadline, bounded := r.Context().Deadline()
	left := time.Until(deadline)
	md.maybeNest(tr.in, "request to "+r.URL.Path)
	if bounded && md.clock.Now().Sub(start) >= left {
		md.logf("  (instance %d's request to %s passed its deadline before it was sent)", tr.in.n, r.URL.Path)
		return nil, context.DeadlineExceeded
	}
	resp, err := tr.base.RoundTrip(r)
	if refreshToken != "" && err != nil {
		md.lostRTs[refreshToken] = true
	}
	if err == nil && r.Method == http.MethodDelete && resp.StatusCode/100 == 2 {
		md.opGrants = append(md.opGrants, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}
	if err == nil && refreshToken != "" {
		md.opGrants = append(md.opGrants, refreshToken)
	}
	if md.step(tr.in, false) {
		if resp != nil {
			resp.Body.Close()
		}
		if refreshToken != "" {
			md.lostRTs[refreshToken] = true
		}
		return nil, errKilled
	}
	if err == nil {
		md.maybeNest(tr.in, "answer from "+r.URL.Path)
	}
	return resp, err
}

// run runs one schedule.
func (md *model) run() {
	ops := 20 + md.rng.IntN(20)
	for range ops {
		md.opGrants = nil
		in := md.insts[md.rng.IntN(len(md.insts))]
		md.randomOp(in, true)
		md.check()
		if md.t.Failed() {
			return
		}
	}
	// The end: the clock passes every quarantine and lease, and each
	// company is asked for once more, so that every pending outcome settles.
	md.calm = true
	md.clock.Advance(modelQuarantine + modelLease)
	md.logf("end: the clock passes every quarantine; every company is asked for")
	for _, c := range md.companies {
		in := md.alive()
		md.busy[in] = true
		connect.Forget(in.m, c) // ask the store, not this process's cache
		_, err := in.m.Token(md.t.Context(), c)
		delete(md.busy, in)
		md.logf("instance %d: Token(%s) = %s", in.n, short(c), errText(err))
	}
	md.check()
	for _, c := range md.companies {
		rec, err := md.store.Get(md.t.Context(), c)
		if err == nil && rec.Status == connect.StatusActive && !rec.RefreshSentAt.IsZero() {
			md.fail("%s: a refresh is still unsettled after the quarantine", short(c))
		}
	}
}

// alive returns a live instance, starting a new one for a killed one.
func (md *model) alive() *instance {
	for i, in := range md.insts {
		if in.dead {
			md.insts[i] = md.newInstance(in.n, in.skew)
		}
	}
	return md.insts[md.rng.IntN(len(md.insts))]
}

func short(id string) string {
	return "c" + strings.TrimLeft(id[strings.LastIndexByte(id, '-')+1:], "0")
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	s := err.Error()
	if len(s) > 90 {
		s = s[:90] + "..."
	}
	return s
}

// randomOp runs a random operation on in, with random faults when top is
// set (a nested operation runs without faults of its own).
func (md *model) randomOp(in *instance, top bool) {
	if in.dead {
		// A killed process is gone; a new one takes its place.
		in = md.alive()
		if in.dead {
			return
		}
	}
	ctx := md.t.Context()
	c := md.companies[md.rng.IntN(len(md.companies))]
	if top {
		md.injectFaults(in)
	}
	md.busy[in] = true
	defer delete(md.busy, in)
	// What an operation returns is logged; the checks read the store and
	// the fake, not the answers.
	switch k := md.rng.IntN(100); {
	case k < 25:
		_, err := in.m.Token(ctx, c)
		md.logf("instance %d: Token(%s) = %s", in.n, short(c), errText(err))
	case k < 42:
		md.apiCall(ctx, in, c)
	case k < 52:
		n, err := connect.SweepSerial(ctx, in.m)
		md.logf("instance %d: keep-alive sweep = %d due, %s", in.n, n, errText(err))
	case k < 67:
		account := md.accounts[md.rng.IntN(len(md.accounts))]
		if own, ok := md.owner[c]; ok && md.rng.IntN(3) > 0 {
			account = own
		}
		md.connect(in, c, account)
	case k < 75:
		err := in.m.Disconnect(ctx, c)
		md.logf("instance %d: Disconnect(%s) = %s", in.n, short(c), errText(err))
		if err == nil {
			delete(md.owner, c)
		}
	default:
		d := time.Duration(md.rng.Int64N(int64(20 * time.Minute)))
		md.logf("clock +%s", d.Round(time.Second))
		md.clock.Advance(d)
	}
	if top {
		in.killIn, in.stall, in.outage = 0, 0, false
		md.mu.Lock()
		md.tokenFault = pleooauthtest.Fault{}
		md.mu.Unlock()
		if in.dead {
			// Pleo acted on this operation's requests and its process died:
			// what it did may be half recorded.
			md.explainTokens(md.opGrants, "an instance killed after Pleo acted on its request")
		}
	}
}

func (md *model) injectFaults(in *instance) {
	md.mu.Lock()
	switch k := md.rng.IntN(100); {
	case k < 8:
		md.tokenFault = pleooauthtest.Fault{Status: http.StatusServiceUnavailable}
	case k < 14:
		md.tokenFault = pleooauthtest.Fault{DropAfterProcessing: true}
	case k < 20:
		// Pleo processes it within the late-delivery bound the quarantine
		// assumes: a random time before the quarantine ends.
		md.tokenFault = pleooauthtest.Fault{ProcessLate: true}
		md.lateDelay = time.Duration(md.rng.Int64N(int64(modelQuarantine - modelTimeout - time.Second)))
	}
	fault := md.tokenFault
	md.mu.Unlock()
	if fault != (pleooauthtest.Fault{}) {
		md.logf("  fault: next refresh %+v", fault)
	}
	switch k := md.rng.IntN(100); {
	case k < 6:
		in.stall = []time.Duration{modelTimeout + time.Second, modelLease + time.Second, 2 * time.Minute}[md.rng.IntN(3)]
	case k < 10:
		in.outage = true
	case k < 16:
		in.killIn, in.killPre = 1+md.rng.IntN(6), md.rng.IntN(2) == 0
	}
}

// apiCall calls Pleo's API as the company, and reports a 401 as a partner
// does.
func (md *model) apiCall(ctx context.Context, in *instance, c string) {
	tok, err := in.m.Token(ctx, c)
	if err != nil {
		md.logf("instance %d: API(%s): Token = %s", in.n, short(c), errText(err))
		return
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, md.srv.URL+pleoapi.EmployeesPath, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := md.srv.Client().Do(req)
	if err != nil {
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		md.logf("instance %d: API(%s) = %d", in.n, short(c), resp.StatusCode)
		return
	}
	err = in.m.ReportUnauthorized(ctx, c, tok.AccessToken)
	md.logf("instance %d: API(%s) = 401; ReportUnauthorized = %s", in.n, short(c), errText(err))
}

// connect runs the flow for account at instance in's Handlers; now and
// then the browser delivers the callback to a second instance too.
func (md *model) connect(in *instance, c, account string) {
	newest := len(md.srv.Grants())
	start := httptest.NewRequest(http.MethodGet, "/connect", nil)
	start.Header.Set("X-Account", account)
	_, deliver, err := startAtHandlers(md.srv, in.h, start, c)
	if err != nil {
		md.fail("authorize: %v", err)
	}
	callback := func(at *instance) (int, string) {
		w := deliver(at.h)
		return w.Code, w.Header().Get("X-Error")
	}
	code, why := callback(in)
	md.logf("instance %d: connect %s for %s = %d %s", in.n, short(c), account, code, why)
	ok := code == http.StatusOK
	if md.rng.IntN(4) == 0 {
		other := md.insts[md.rng.IntN(len(md.insts))]
		if !other.dead {
			code2, why2 := callback(other)
			md.logf("instance %d: the same callback again = %d %s", other.n, code2, why2)
			if code2 == http.StatusOK && ok {
				md.fail("a callback was finished twice")
			}
			ok = ok || code2 == http.StatusOK
		}
	}
	switch {
	case ok:
		md.owner[c] = account
		return
	case strings.Contains(why, connect.ErrConnectedToAnotherAccount.Error()):
		md.explainNew(c, newest, "refused: the company is connected under another account")
		return
	}
	// Failed or killed midway: the grant may be made and not stored, or
	// stored and not reported.
	md.explainNew(c, newest, "a connect that failed midway")
	if rec, err := md.store.Get(md.t.Context(), c); err == nil && rec.Status != connect.StatusDisconnected && rec.Account == account {
		md.owner[c] = account
	}
}

// heldGrant is the grant whose refresh token the company's record holds,
// or 0.
func (md *model) heldGrant(c string) int {
	rec, err := md.store.Get(md.t.Context(), c)
	if err != nil {
		return 0
	}
	return md.grantOf(rec)
}

// grantOf is the grant whose refresh token rec holds, or 0.
func (md *model) grantOf(rec *connect.Record) int {
	if rec == nil || len(rec.Tokens) == 0 {
		return 0
	}
	c := rec.ID
	tok, err := connect.OpenTokens(md.insts[0].m, c, rec.Tokens)
	if err != nil {
		return 0
	}
	g, _, ok := md.srv.Lookup(tok.RefreshToken)
	if !ok {
		return 0
	}
	return g.ID
}

// explainNew explains the grants of company c made after the first
// newest that its record does not hold: made by a connect and refused, or
// replaced by another made meanwhile.
func (md *model) explainNew(c string, newest int, why string) {
	held := md.heldGrant(c)
	for _, g := range md.srv.Grants()[newest:] {
		if _, done := md.explained[g.ID]; g.Subject == c && g.ID != held && !done {
			md.explained[g.ID] = why
		}
	}
}

// explainTokens explains the grants of tokens that Pleo has acted on: a
// refresh token rotated, an access token revoked.
func (md *model) explainTokens(tokens []string, why string) {
	for _, tok := range tokens {
		if g, current, ok := md.srv.Lookup(tok); ok && !current {
			if _, done := md.explained[g.ID]; !done {
				md.explained[g.ID] = why
			}
		}
	}
}

// checkAccount fails when a write moved a connection from one account to
// another without its having been disconnected first.
func (md *model) checkAccount(prior, now *connect.Record) {
	if prior != nil && prior.Status != connect.StatusDisconnected && prior.Account != now.Account {
		md.fail("%s moved from account %q to %q", short(now.ID), prior.Account, now.Account)
	}
}

// check holds the store against the fake's ground truth.
// checkEvents checks the store's events against its records: in order,
// each event of a connection takes up where the one before left it
// (status, health, account), and the last one is the record as it stands.
func (md *model) checkEvents() {
	ctx := md.t.Context()
	last := map[string]connect.Event{}
	var after int64
	for {
		evs, err := md.store.Events(ctx, after, 100)
		if err != nil {
			md.fail("reading events: %v", err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if e.Seq <= after {
				md.fail("event %d after %d: out of order", e.Seq, after)
			}
			after = e.Seq
			if prev, ok := last[e.ConnectionID]; ok && (e.OldStatus != prev.NewStatus || e.OldHealth != prev.NewHealth ||
				e.OldAccount != prev.Account || e.Version <= prev.Version) {
				md.fail("%s: event %d (%+v) does not follow event %d (%+v)", short(e.ConnectionID), e.Seq, e, prev.Seq, prev)
			}
			last[e.ConnectionID] = e
		}
	}
	for _, c := range md.companies {
		rec, err := md.store.Get(ctx, c)
		if errors.Is(err, connect.ErrNoConnection) {
			if _, ok := last[c]; ok {
				md.fail("%s: events of a connection the store does not have", short(c))
			}
			continue
		}
		if err != nil {
			md.fail("%s: %v", short(c), err)
		}
		e, ok := last[c]
		if !ok || e.NewStatus != rec.Status || e.NewHealth != rec.Health || e.Account != rec.Account {
			md.fail("%s: the last event (%+v) is not the record as it stands (%s, %s, %s)", short(c), e, rec.Status, rec.Health, rec.Account)
		}
	}
}

func (md *model) check() {
	md.t.Helper()
	ctx := md.t.Context()
	if _, reuses := md.srv.RefreshStats(); reuses != 0 {
		md.fail("a refresh token was presented %d times after it was rotated", reuses)
	}
	// A refresh presented without its answer reaching the Manager, that
	// Pleo did process: that grant's tokens may be lost.
	for rt := range md.lostRTs {
		if g, current, ok := md.srv.Lookup(rt); ok && !current {
			if _, done := md.explained[g.ID]; !done {
				md.explained[g.ID] = "a refresh Pleo processed whose answer was lost"
			}
		}
	}
	md.checkEvents()
	grants := md.srv.Grants()
	held := map[int]bool{}
	newest := map[string]int{} // company -> the newest grant its record holds
	for _, c := range md.companies {
		rec, err := md.store.Get(ctx, c)
		if errors.Is(err, connect.ErrNoConnection) {
			continue
		}
		if err != nil {
			md.fail("%s: %v", short(c), err)
		}
		switch rec.Status {
		case connect.StatusDisconnected:
			for _, g := range grants {
				if g.Subject == c && g.Live && md.explained[g.ID] == "" {
					md.fail("%s is shown disconnected while grant %d is live at Pleo", short(c), g.ID)
				}
			}
		case connect.StatusActive:
			tok, err := connect.OpenTokens(md.insts[0].m, c, rec.Tokens)
			if err != nil {
				md.fail("%s: the stored tokens do not open: %v", short(c), err)
			}
			g, current, ok := md.srv.Lookup(tok.RefreshToken)
			if !ok {
				md.fail("%s: the stored refresh token is unknown to Pleo", short(c))
			}
			if current && g.Live {
				held[g.ID] = true
			}
			newest[c] = max(newest[c], g.ID)
			if !rec.RefreshSentAt.IsZero() {
				held[g.ID] = true // its refresh is unsettled: the record still answers for it
				continue
			}
			if (!current || !g.Live) && md.explained[g.ID] == "" {
				md.fail("%s is active, but its stored refresh token is not live at Pleo (grant %d, current %v, revoked %q)", short(c), g.ID, current, g.Revoked)
			}
		}
	}
	for _, g := range grants {
		if g.Live && !held[g.ID] && md.explained[g.ID] == "" && g.ID < newest[g.Subject] {
			// The company connected again since: a replaced grant is
			// dropped, not revoked (Manager.Complete).
			md.explained[g.ID] = "replaced by a newer grant of the same company"
		}
		if g.Live && !held[g.ID] && md.explained[g.ID] == "" {
			md.fail("grant %d of %s is live at Pleo and no stored record holds it", g.ID, short(g.Subject))
		}
		if g.Revoked == "refresh_token_reused" || g.Revoked == "code_reused" {
			md.fail("grant %d was revoked by Pleo: %s", g.ID, g.Revoked)
		}
	}
}
