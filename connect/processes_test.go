package connect_test

// The refresh contract across processes: several OS processes (this test
// binary, run again as a helper) share one store and refresh hundreds of
// short-lived connections at once while one of them is killed with
// SIGKILL every few seconds. The test asserts safety only, never speed (a
// loaded or small machine refreshes less, and that is no failure): Pleo's
// record must show no refresh token or code presented twice, and every
// connection must end alive, with a token Pleo's API accepts, or lost in a
// way the run explains: a refresh Pleo answered whose answer never got
// saved (its process killed, or its answer lost to a time-out), found so
// by the protocol and not by reuse.
//
// Every helper also runs Manager.Run: keep-alive on a short period,
// beside its workers' Token calls, and the event handler, which writes
// each event it takes to a file of the helper's own, synced before it
// returns, while this process connects companies again to keep events
// coming; every other kill is aimed at the helper delivering. After the
// run one more Manager here delivers what is left, and the files are
// checked against the store's event log: every event delivered at least
// once, each delivery run (from the cursor a process took) the log's next
// events in order, so per connection in version order. Events delivered
// twice, by a helper killed between its handler and the cursor's move, are
// counted and logged, not limited. On a 2-core machine under -race, five
// runs in a row recorded 593 to 631 events each (500 connections, 74 to
// 110 connected again, the lost ones), lost none and delivered 1 to 5
// twice.
//
// BenchmarkKeepAliveProcesses is keep-alive at scale: N connections all
// due at once, kept alive by 4 helpers running Run and nothing else. On
// the same machine, 100,000 connections were each refreshed once in 5 min
// 32 s, 301 per second, against the fake Pleo's ceiling of 13,658 bare
// refreshes per second in the same run (10,000: 279 per second, ceiling
// 16,003). The rate is Run's schedule (a hundred due connections per
// sweep, then a pause of about a second), not the store's or the fake's
// limit; docs/performance.md has the figures and the command.

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/pgstore"
	"github.com/partnerkit/pleooauth/connect/sqlitestore"
	"github.com/partnerkit/pleooauth/internal/examplereg"
	"github.com/partnerkit/pleooauth/internal/pgtest"
	"github.com/partnerkit/pleooauth/internal/pleoapi"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// The helper process's settings, passed in its environment.
const (
	envChild    = "PLEOOAUTH_PROCESS_TEST_CHILD" // "1" in a helper process
	envStore    = "PLEOOAUTH_PROCESS_TEST_STORE" // "postgres DSN" or "sqlite PATH"
	envServer   = "PLEOOAUTH_PROCESS_TEST_SERVER"
	envSecret   = "PLEOOAUTH_PROCESS_TEST_SECRET"
	envKey      = "PLEOOAUTH_PROCESS_TEST_KEY"
	envDuration = "PLEOOAUTH_PROCESS_TEST_DURATION"
	envSweep    = "PLEOOAUTH_PROCESS_TEST_SWEEP" // "1": ask once for every connection, then stop
	// envEvents names the directory where a helper writes the events its
	// handler takes; set, the helper runs Manager.Run beside its workers.
	envEvents = "PLEOOAUTH_PROCESS_TEST_EVENTS"
	// envKeepAliveOnly "1" makes a helper run Manager.Run alone, with the
	// default timings, until SIGTERM.
	envKeepAliveOnly = "PLEOOAUTH_PROCESS_TEST_KEEPALIVE"
)

// Timing of the helpers: access tokens live a second on the fake server,
// so every connection is refreshed about once a second.
const (
	processTokenTTL = time.Second
	processDelta    = 300 * time.Millisecond
	processLease    = 3 * time.Second
	processTimeout  = time.Second
	// The fake Pleo on this machine processes a request at once or never:
	// no late delivery to wait out beyond the request's own timeout.
	processQuarantine = 2 * time.Second
	processWorkers    = 8
	processClientID   = "process-test-client"
	// processKeepAlive is the helpers' keep-alive period: a connection no
	// worker asked for in two seconds is refreshed by Run, so that Run's
	// refreshes meet the workers' on the same connections.
	processKeepAlive = 2 * time.Second
	// processReconnectEvery is about how often this process connects a
	// company again during the run: a new grant, an event to deliver.
	processReconnectEvery = 100 * time.Millisecond
)

// The test's own bounds, from the protocol's: none of them is a speed the
// machine must reach, only how long something may take before the test
// gives up on it, generous for a loaded 2-core machine under -race.
const (
	// processSettle is how long, once every helper has exited, a
	// connection takes at most to be decidable: a dead helper's lease runs
	// out, its refresh's quarantine passes, and settling introspects and
	// refreshes, a request timeout each.
	processSettle = processLease + processQuarantine + 2*processTimeout
	// processSettleBudget bounds the final check of every connection:
	// many times processSettle, as each of its own refreshes whose answer
	// a loaded machine loses starts another quarantine.
	processSettleBudget = 10 * processSettle
	// processFinalCap bounds the final check however it goes, so that a
	// run ends with the test's own message well before go test's timeout.
	processFinalCap = 5 * time.Minute
	// processStartBudget is how long a helper keeps trying to start (open
	// the store, list the connections) while the others keep the store
	// busy, as a deployment restarts an instance that failed to start.
	processStartBudget = time.Minute
	// processExitBudget is how long after its time is up a helper may take
	// to exit: a worker's last Token call (5 s) and a write that must land
	// (connect's write budget, a minute), with room to spare.
	processExitBudget = 2 * time.Minute
	// processFirstKill is when the first kill comes at the latest, however
	// little the helpers have done by then: every run kills.
	processFirstKill = 1500 * time.Millisecond
	// processTailBudget bounds the delivery of what the helpers left
	// undelivered: a dead helper's cursor lease runs out (processLease),
	// then each event is a synced write and a cursor move.
	processTailBudget = 2 * time.Minute
)

// processUnknown is what a Manager logs when a refresh's outcome is
// unknown (sent, and no usable answer: a time-out, a dropped connection):
// Pleo may have rotated the refresh token, so a live process can lose a
// grant this way too, which a loaded machine makes likelier. Helpers print
// each one, so that the test counts them even in a helper killed later.
const processUnknown = "connect: refresh outcome unknown"

// unknownOutcomes is a slog handler that calls seen for every refresh
// whose outcome was unknown.
type unknownOutcomes struct{ seen func(id string) }

func (h unknownOutcomes) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h unknownOutcomes) Handle(_ context.Context, r slog.Record) error {
	if r.Message == processUnknown {
		id := ""
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "connection" {
				id = a.Value.String()
			}
			return id == ""
		})
		h.seen(id)
	}
	return nil
}

func (h unknownOutcomes) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h unknownOutcomes) WithGroup(string) slog.Handler      { return h }

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		if os.Getenv(envKeepAliveOnly) == "1" {
			os.Exit(keepAliveChild())
		}
		os.Exit(processChild())
	}
	os.Exit(m.Run())
}

func processRegistration() *pleooauth.Registration {
	return examplereg.New("users:read", "https://client.example/oauth/callback")
}

// processConfig is the client config every process uses.
func processConfig(serverURL, secret string) (*oauth2.Config, error) {
	creds, err := pleooauth.NewCredentials(processClientID, secret)
	if err != nil {
		return nil, err
	}
	return processRegistration().OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(pleooauthtest.EndpointsAt(serverURL)))
}

func processManager(cfg *oauth2.Config, serverURL string, store connect.Store, key []byte, opts ...connect.Option) (*connect.Manager, error) {
	return connect.NewManager(cfg, store, append([]connect.Option{connect.WithKeys(key),
		connect.WithHTTPClient(&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}),
		connect.WithEndpoints(pleooauthtest.EndpointsAt(serverURL)),
		connect.WithExpiryDelta(processDelta), connect.WithLeaseTTL(processLease), connect.WithRefreshTimeout(processTimeout),
		connect.WithQuarantine(processQuarantine)}, opts...)...)
}

func openProcessStore(ctx context.Context, spec string) (connect.Store, func(), error) {
	kind, arg, _ := strings.Cut(spec, " ")
	switch kind {
	case "postgres":
		pool, err := pgxpool.New(ctx, arg)
		if err != nil {
			return nil, nil, err
		}
		s, err := pgstore.New(ctx, pool)
		return s, pool.Close, err
	case "sqlite":
		s, err := sqlitestore.Open(ctx, arg)
		if err != nil {
			return nil, nil, err
		}
		return s, func() { s.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown store %q", spec)
}

// childReport is what a helper prints when its time is up: what its
// workers' Token calls answered, or, for a keep-alive helper, how many
// connections its Run refreshed and how many keep-alive refreshes failed.
type childReport struct {
	Tokens, Reauth, Pending, Other int
	Refreshed, Failed              int `json:",omitempty"`
}

// A helper's standard output: a line "unknown ID" for every refresh
// whose outcome was unknown, as it happens, then its childReport as JSON.
const unknownLine = "unknown "

// processChild is a helper process: workers asking for random
// connections' tokens until the duration ends, and with envEvents,
// Manager.Run beside them, delivering events.
func processChild() int {
	ctx := context.Background()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "helper:", err); return 3 }
	server, secret := os.Getenv(envServer), os.Getenv(envSecret)
	key, err := base64.StdEncoding.DecodeString(os.Getenv(envKey))
	if err != nil {
		return fail(err)
	}
	d, err := time.ParseDuration(os.Getenv(envDuration))
	if err != nil {
		return fail(err)
	}
	cfg, err := processConfig(server, secret)
	if err != nil {
		return fail(err)
	}
	var outMu sync.Mutex
	logger := slog.New(unknownOutcomes{seen: func(id string) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintln(os.Stdout, unknownLine+id) // unbuffered: in the pipe before any kill
	}})
	var events *eventFile
	if dir := os.Getenv(envEvents); dir != "" {
		if events, err = openEventFile(filepath.Join(dir, fmt.Sprintf("helper-%d.events", os.Getpid()))); err != nil {
			return fail(err)
		}
		defer events.close()
	}
	// Starting can meet a store kept busy by the other helpers on a loaded
	// machine: it is tried again for a while, as a deployment restarts an
	// instance that failed to start; an error that lasts fails the helper.
	var m *connect.Manager
	var ids []string
	startBy := time.Now().Add(processStartBudget)
	for {
		var closeStore func()
		m, ids, closeStore, err = startProcessChild(ctx, cfg, server, key, logger, events)
		if err == nil {
			defer closeStore()
			break
		}
		if time.Now().After(startBy) {
			return fail(fmt.Errorf("starting for %s: %w", processStartBudget, err))
		}
		fmt.Fprintln(os.Stderr, "helper: starting:", err, "(trying again)")
		time.Sleep(time.Second)
	}
	deadline := time.Now().Add(d)
	// Run keeps the connections alive and delivers the events until the
	// workers are done; then it lets its refreshes under way save and the
	// cursor's lease go.
	runCtx, stopRun := context.WithCancel(ctx)
	var run sync.WaitGroup
	if events != nil {
		run.Go(func() { _ = m.Run(runCtx) })
	}
	var tokens, reauth, pending, other atomic.Int64
	var wg sync.WaitGroup
	// In a sweep, every connection once, in an order of this process's own.
	var next atomic.Int64
	sweep := os.Getenv(envSweep) == "1"
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	pick := func() (string, bool) {
		if sweep {
			i := int(next.Add(1)) - 1
			return ids[min(i, len(ids)-1)], i < len(ids)
		}
		return ids[rand.IntN(len(ids))], time.Now().Before(deadline)
	}
	for range processWorkers {
		wg.Go(func() {
			for {
				id, more := pick()
				if !more {
					return
				}
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := m.Token(ctx, id)
				cancel()
				switch {
				case err == nil:
					tokens.Add(1)
				case errors.Is(err, connect.ErrReauthorizationRequired):
					reauth.Add(1)
				case errors.Is(err, connect.ErrRefreshPending):
					pending.Add(1)
				default:
					other.Add(1)
				}
				if !sweep {
					time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	stopRun()
	run.Wait()
	outMu.Lock()
	defer outMu.Unlock()
	if err := json.NewEncoder(os.Stdout).Encode(childReport{Tokens: int(tokens.Load()), Reauth: int(reauth.Load()),
		Pending: int(pending.Load()), Other: int(other.Load())}); err != nil {
		return fail(err)
	}
	return 0
}

// startProcessChild opens the store, makes the helper's Manager and lists
// every connection. With events, the Manager delivers events to it, on a
// store that records in it each delivery run's start, and keeps
// connections alive every processKeepAlive.
func startProcessChild(ctx context.Context, cfg *oauth2.Config, server string, key []byte, logger *slog.Logger, events *eventFile) (*connect.Manager, []string, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, closeStore, err := openProcessStore(ctx, os.Getenv(envStore))
	if err != nil {
		if closeStore != nil {
			closeStore()
		}
		return nil, nil, nil, err
	}
	opts := []connect.Option{connect.WithLogger(logger)}
	if events != nil {
		store = cursorLog{Store: store, file: events}
		opts = append(opts, connect.WithEventHandler(events.handle), connect.WithKeepAlive(processKeepAlive))
	}
	m, err := processManager(cfg, server, store, key, opts...)
	if err != nil {
		closeStore()
		return nil, nil, nil, err
	}
	var ids []string
	for c, err := range m.List(ctx, connect.Query{AllAccounts: true, Limit: 500}) {
		if err != nil {
			closeStore()
			return nil, nil, nil, fmt.Errorf("listing the connections: %w", err)
		}
		ids = append(ids, c.ID)
	}
	if len(ids) == 0 {
		closeStore()
		return nil, nil, nil, errors.New("the store lists no connection")
	}
	return m, ids, closeStore, nil
}

// runProcesses is the test: procs helpers over the store spec for d, one
// killed and started again every few seconds, each delivering events and
// keeping connections alive beside its workers, while this process
// connects companies again; then every connection is judged against the
// fake Pleo's ground truth, and every event the store recorded must have
// been delivered, in order. It asserts safety, never throughput: how much
// gets refreshed and delivered is logged.
func runProcesses(t *testing.T, spec string, procs, conns int, d time.Duration) {
	ctx := t.Context()
	secret := "process-test-secret-0123456789"
	creds, err := pleooauth.NewCredentials(processClientID, secret)
	require.NoError(t, err)
	srv := pleooauthtest.NewServer(processRegistration(), creds, pleooauthtest.WithAccessTokenTTL(processTokenTTL))
	t.Cleanup(srv.Close)
	cfg, err := processConfig(srv.URL, secret)
	require.NoError(t, err)
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	store, closeStore, err := openProcessStore(ctx, spec)
	require.NoError(t, err)
	t.Cleanup(closeStore)
	var parentUnknown atomic.Int64
	parentLog := slog.New(unknownOutcomes{seen: func(string) { parentUnknown.Add(1) }})
	m, err := processManager(cfg, srv.URL, store, key, connect.WithLogger(parentLog))
	require.NoError(t, err)

	connectMany(t, srv, cfg, key, conns, m.Complete)
	events := t.TempDir()

	// The helpers run for d; one is killed and another started in its
	// place every 2 to 4 seconds. The first kill comes early whatever the
	// helpers have done by then (a loaded machine may not have them
	// started yet), so that every run kills.
	began := time.Now()
	end := began.Add(d)
	start := func(left time.Duration) *child {
		return startChild(t, spec, srv.URL, secret, key, left, false, envEvents+"="+events)
	}
	children := make([]*child, procs)
	for i := range children {
		children[i] = start(d)
	}
	all := slices.Clone(children)
	// Meanwhile companies connect again, one about every
	// processReconnectEvery: each a new grant, so that events keep coming
	// while helpers are killed.
	reconnects := startReconnects(srv, cfg, key, conns, m.Complete)
	kills := 0
	for {
		pause := 2*time.Second + time.Duration(rand.IntN(2000))*time.Millisecond
		if kills == 0 {
			pause = min(processFirstKill, d/2)
		} else if time.Now().Add(pause + 2*time.Second).After(end) {
			break
		}
		time.Sleep(pause)
		// Every other kill is of the helper delivering events, if one is:
		// between its handler and the cursor's move, likely.
		i, target := rand.IntN(procs), ""
		if kills%2 == 1 {
			if j, ok := delivering(events, children); ok {
				i, target = j, ", the helper delivering events"
			}
		}
		children[i].kill(t)
		kills++
		refreshes, _ := srv.RefreshStats()
		t.Logf("%s: kill %d%s; %d refreshes so far", time.Since(began).Round(time.Millisecond), kills, target, refreshes)
		children[i] = start(time.Until(end))
		all = append(all, children[i])
	}
	reconnected, reconnectErrs := reconnects.stop()
	t.Logf("%d companies connected again during the run (%d attempts failed%s)", reconnected, len(reconnectErrs), firstError(reconnectErrs))
	total := waitChildren(t, children, time.Until(end)+processExitBudget)
	unknown := int(parentUnknown.Load())
	for _, c := range all {
		unknown += c.unknowns()
	}
	refreshes, reuses := srv.RefreshStats()
	t.Logf("%d processes, %d connections, %s (%s with the helpers' exits): %d kills; %d refreshes at the fake Pleo, %d reuses; "+
		"the helpers not killed: %d tokens handed out, %d reauthorization answers, %d refreshes pending, %d other errors; %d refresh outcomes unknown",
		procs, conns, d, time.Since(began).Round(time.Millisecond), kills, refreshes, reuses,
		total.Tokens, total.Reauth, total.Pending, total.Other, unknown)
	require.Positive(t, kills, "the test kills")

	// Every connection ends alive, with a token Pleo's API accepts, or
	// lost, explained. A connection a dead helper held, or whose refresh's
	// answer is lost, is decidable within processSettle (lease, quarantine,
	// settling): they are asked again, in rounds, until processSettleBudget.
	settleStart := time.Now()
	ids := make([]string, conns)
	for i := range ids {
		ids[i] = companyID(i)
	}
	verdicts := make(map[string]processVerdict, conns)
	open := ids
	judges := 4
	if strings.HasPrefix(spec, "sqlite ") {
		judges = 1 // SQLite writes one at a time: more writers only wait on each other
	}
	rounds := 0
	// The rounds stop when every connection is decided, or when none has
	// been for processSettleBudget: a round may take long on a loaded
	// machine (a refresh or more each), and that is no failure.
	progress := time.Now()
	for len(open) > 0 && time.Since(progress) < processSettleBudget && time.Since(settleStart) < processFinalCap {
		if rounds > 0 {
			time.Sleep(processQuarantine / 4)
		}
		rounds++
		got := make([]processVerdict, len(open))
		var next atomic.Int64
		var wg sync.WaitGroup
		for range judges {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < len(open); i = int(next.Add(1)) - 1 {
					got[i] = judgeProcessConnection(ctx, srv, store, m, open[i])
				}
			})
		}
		wg.Wait()
		var again []string
		for i, id := range open {
			verdicts[id] = got[i]
			if got[i].kind == verdictAgain {
				again = append(again, id)
			}
		}
		if len(again) < len(open) {
			progress = time.Now()
		}
		open = again
	}
	lost, alive := 0, 0
	var wrong, undecided []string
	for _, id := range ids {
		switch v := verdicts[id]; v.kind {
		case verdictAlive:
			alive++
		case verdictLost:
			lost++
		case verdictWrong:
			wrong = append(wrong, id+": "+v.detail)
		default:
			undecided = append(undecided, id+": "+v.detail)
		}
	}
	// The helpers have stopped: one more Manager delivers what they left,
	// as the next instance to start would, the final check's events too.
	tailStart := time.Now()
	caughtUp := deliverTail(t, store, cfg, srv.URL, key, events, parentLog)
	tail := time.Since(tailStart)
	// Pleo's record: nothing presented twice, helpers and this process
	// alike.
	refreshes, reuses = srv.RefreshStats()
	var revoked []string
	for _, g := range srv.Grants() {
		if g.Revoked == "refresh_token_reused" || g.Revoked == "code_reused" {
			revoked = append(revoked, fmt.Sprintf("grant %d (%s): %s", g.ID, g.Subject, g.Revoked))
		}
	}
	unknown = int(parentUnknown.Load())
	for _, c := range all {
		unknown += c.unknowns()
	}
	t.Logf("after %s and %d rounds: %d of %d connections alive, %d lost (%d kills of %d workers each, %d refresh outcomes unknown); %d refreshes in all",
		time.Since(settleStart).Round(time.Millisecond), rounds, alive, conns, lost, kills, processWorkers, unknown, refreshes)
	require.Zero(t, reuses, "no refresh token was ever presented twice")
	require.Empty(t, revoked, "no grant was revoked for a reused refresh token or code")
	require.Empty(t, firstFew(wrong), "every connection ends alive or lost, explained: %d do not", len(wrong))
	require.Empty(t, firstFew(undecided), "every connection is decided (the check stops when none was for %s, or after %s): %d are not",
		processSettleBudget, processFinalCap, len(undecided))
	// A kill loses at most one answer per worker, the refresh it had in
	// flight, and one per keep-alive refresh its Run had in flight; a live
	// process loses one only when it could not tell the outcome, which it
	// logs.
	require.LessOrEqual(t, lost, kills*(processWorkers+connect.KeepAliveWorkers)+unknown,
		"at most one lost answer per worker or keep-alive refresh killed, or outcome unknown")

	// Every event the store recorded was delivered, in order.
	recorded := storeEvents(t, store)
	files := readEventFiles(t, events)
	got := checkDeliveries(recorded, files)
	t.Logf("events: %d recorded; delivered in %d runs by %d processes, %d by the helpers and %d by the final delivery (caught up: %v, in %s); "+
		"%d delivered more than once (%d deliveries more than the events)",
		len(recorded), got.runs, len(files), got.byHelpers, got.byFinal, caughtUp, tail.Round(time.Millisecond), got.twice, got.extra)
	assert.Empty(t, firstFew(got.missing), "every event recorded is delivered (the final delivery caught up: %v): %d are not", caughtUp, len(got.missing))
	assert.Empty(t, firstFew(got.problems), "every delivery run is the store's next events in order: %d problems", len(got.problems))
}

// firstFew is the first ten of s, for a failure's message.
func firstFew(s []string) []string { return s[:min(len(s), 10)] }

// What the final check found of a connection.
type processVerdict struct {
	kind   int
	detail string // why, for all but verdictAlive
}

const (
	verdictAgain = iota // not decided yet: ask again later
	verdictAlive        // a token the API accepts, the stored refresh token current
	verdictLost         // lost answer, explained
	verdictWrong        // a safety failure
)

// judgeProcessConnection asks for the connection's token and judges the
// answer against the fake Pleo's ground truth.
func judgeProcessConnection(ctx context.Context, srv *pleooauthtest.Server, store connect.Store, m *connect.Manager, id string) processVerdict {
	again := func(format string, args ...any) processVerdict {
		return processVerdict{verdictAgain, fmt.Sprintf(format, args...)}
	}
	wrong := func(format string, args ...any) processVerdict {
		return processVerdict{verdictWrong, fmt.Sprintf(format, args...)}
	}
	tctx, cancel := context.WithTimeout(ctx, 2*processSettle)
	tok, err := m.Token(tctx, id)
	cancel()
	switch {
	case err == nil:
		status, err := processAPIStatus(ctx, srv, tok.AccessToken)
		if err != nil {
			return again("calling the API: %v", err)
		}
		if status != http.StatusOK {
			// An access token lives a second: on a loaded machine it can
			// expire between Token and the call. Only a revoked one is
			// wrong.
			g, _, ok := srv.Lookup(tok.AccessToken)
			if !ok || g.Revoked != "" || !g.Live {
				return wrong("the API answered %d to its token (grant %d known %v, live %v, revoked %q)", status, g.ID, ok, g.Live, g.Revoked)
			}
			return again("the API answered %d to a token that expired meanwhile", status)
		}
		rec, err := store.Get(ctx, id)
		if err != nil {
			return again("reading the store: %v", err)
		}
		stored, err := connect.OpenTokens(m, id, rec.Tokens)
		if err != nil {
			return wrong("opening the stored tokens: %v", err)
		}
		g, current, ok := srv.Lookup(stored.RefreshToken)
		if !ok || !current || !g.Live || g.Subject != id {
			return wrong("alive, but its stored refresh token is not its live grant's current one (known %v, current %v, live %v, subject %s)", ok, current, g.Live, g.Subject)
		}
		return processVerdict{kind: verdictAlive}
	case errors.Is(err, connect.ErrReauthorizationRequired):
		// Explained only if the store says the answer was lost and Pleo's
		// record says the stored refresh token was rotated, not revoked.
		rec, gerr := store.Get(ctx, id)
		if gerr != nil {
			return again("reading the store: %v", gerr)
		}
		stored, oerr := connect.OpenTokens(m, id, rec.Tokens)
		if oerr != nil {
			return wrong("opening the stored tokens: %v", oerr)
		}
		g, current, ok := srv.Lookup(stored.RefreshToken)
		if rec.Status != connect.StatusReauthorizationRequired || rec.LastError != "refresh_outcome_unknown" ||
			!ok || current || g.Revoked != "" || g.Subject != id {
			return wrong("%v; stored: status %s, last error %q; its refresh token at Pleo: known %v, current %v, revoked %q",
				err, rec.Status, rec.LastError, ok, current, g.Revoked)
		}
		return processVerdict{verdictLost, rec.LastError}
	case errors.Is(err, connect.ErrDisconnected), errors.Is(err, connect.ErrNoConnection):
		return wrong("%v", err)
	}
	// ErrRefreshPending (a quarantine not over), a lease not yet free, a
	// busy store: transient.
	return again("%v", err)
}

// processAPIStatus calls Pleo's API with accessToken and returns its
// status.
func processAPIStatus(ctx context.Context, srv *pleooauthtest.Server, accessToken string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+pleoapi.EmployeesPath, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// connectMany connects n companies through the flow against srv, and
// completes each with complete.
func connectMany(t testing.TB, srv *pleooauthtest.Server, cfg *oauth2.Config, key []byte, n int, complete func(context.Context, *oauth2.Token, string) (*connect.Connection, error)) {
	t.Helper()
	flow, err := connect.NewFlow(cfg, key)
	require.NoError(t, err)
	for i := range n {
		tok, account, err := authorizeCompany(srv, flow, i)
		require.NoError(t, err)
		_, err = complete(context.Background(), tok, account)
		require.NoError(t, err)
	}
}

// companyID is the Pleo subject of the test's company i.
func companyID(i int) string { return fmt.Sprintf("urn:pleo:company:00000000-0000-4000-8000-%012d", i) }

// authorizeCompany runs the flow against srv for company i, connected by
// customer i: the user consents and the code is exchanged. It returns the
// tokens and the account, for Complete.
func authorizeCompany(srv *pleooauthtest.Server, flow *connect.Flow, i int) (*oauth2.Token, string, error) {
	authURL, sealed := flow.Start(fmt.Sprintf("customer-%d", i))
	cb, err := srv.AuthorizeAs(authURL, companyID(i))
	if err != nil {
		return nil, "", err
	}
	exchange := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())
	return flow.Finish(exchange, httptest.NewRequest(http.MethodGet, cb.String(), nil), sealed)
}

// reconnects connects random companies of the first conns again, one
// about every processReconnectEvery, until stopped.
type reconnects struct {
	done chan struct{}
	wg   sync.WaitGroup
	n    atomic.Int64
	mu   sync.Mutex
	errs []error
}

func startReconnects(srv *pleooauthtest.Server, cfg *oauth2.Config, key []byte, conns int, complete func(context.Context, *oauth2.Token, string) (*connect.Connection, error)) *reconnects {
	r := &reconnects{done: make(chan struct{})}
	flow, err := connect.NewFlow(cfg, key)
	if err != nil {
		r.errs = append(r.errs, err)
		return r
	}
	r.wg.Go(func() {
		for {
			select {
			case <-r.done:
				return
			case <-time.After(processReconnectEvery/2 + rand.N(processReconnectEvery)):
			}
			tok, account, err := authorizeCompany(srv, flow, rand.IntN(conns))
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err = complete(ctx, tok, account)
				cancel()
			}
			if err != nil {
				// A grant not stored is dropped, not lost: no failure of
				// the protocol, so it is only reported.
				r.mu.Lock()
				r.errs = append(r.errs, err)
				r.mu.Unlock()
				continue
			}
			r.n.Add(1)
		}
	})
	return r
}

// stop stops the reconnections and returns how many were made and the
// errors of those that failed.
func (r *reconnects) stop() (int, []error) {
	close(r.done)
	r.wg.Wait()
	return int(r.n.Load()), r.errs
}

// firstError is the first of errs for a log line, or "".
func firstError(errs []error) string {
	if len(errs) == 0 {
		return ""
	}
	return "; the first: " + errs[0].Error()
}

// child is a helper process.
type child struct {
	cmd            *exec.Cmd
	stdout, stderr *bytes.Buffer // read only once done is closed
	done           chan struct{} // closed when it has exited and its output is read
	err            error         // cmd.Wait's, once done is closed
}

// startChild starts a helper: for d, or for one sweep of every connection,
// with env added to its environment. A helper still running when the test
// ends is killed.
func startChild(t testing.TB, spec, serverURL, secret string, key []byte, d time.Duration, sweep bool, env ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envStore+"="+spec, envServer+"="+serverURL, envSecret+"="+secret,
		envKey+"="+base64.StdEncoding.EncodeToString(key), envDuration+"="+d.String())
	if sweep {
		cmd.Env = append(cmd.Env, envSweep+"=1")
	}
	cmd.Env = append(cmd.Env, env...)
	c := &child{cmd: cmd, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
	require.NoError(t, cmd.Start())
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// kill kills the helper with SIGKILL and waits for it to exit. A helper
// that had exited already for another reason fails the test.
func (c *child) kill(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("killing helper %d: %v", c.cmd.Process.Pid, err)
	}
	<-c.done
	c.check(t, true)
}

// check fails the test if the helper exited with an error (but for the
// kill, when killed), or reported a data race, showing its stderr.
func (c *child) check(t testing.TB, killed bool) bool {
	t.Helper()
	err := c.err
	var exit *exec.ExitError
	if killed && errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			err = nil
		}
	}
	stderr := c.stderr.String()
	switch {
	case err != nil:
		t.Errorf("helper %d failed: %v; its stderr:\n%s", c.cmd.Process.Pid, err, stderr)
		return false
	case strings.Contains(stderr, "DATA RACE"):
		t.Errorf("helper %d reported a data race:\n%s", c.cmd.Process.Pid, stderr)
		return false
	case stderr != "":
		t.Logf("helper %d's stderr:\n%s", c.cmd.Process.Pid, stderr)
	}
	return true
}

// unknowns is how many refreshes the helper reported with an unknown
// outcome. Call it once done is closed.
func (c *child) unknowns() int {
	n := 0
	for line := range strings.Lines(c.stdout.String()) {
		if strings.HasPrefix(line, unknownLine) {
			n++
		}
	}
	return n
}

// report is the helper's report: the last line of its output.
func (c *child) report() (childReport, error) {
	var r childReport
	var last string
	sc := bufio.NewScanner(bytes.NewReader(c.stdout.Bytes()))
	for sc.Scan() {
		last = sc.Text()
	}
	if err := json.Unmarshal([]byte(last), &r); err != nil {
		return r, fmt.Errorf("helper %d reported %q: %w", c.cmd.Process.Pid, last, err)
	}
	return r, nil
}

// waitChildren waits for every helper, for limit at most (then it kills
// the rest and fails), and adds up their reports. A helper that failed
// fails the test.
func waitChildren(t testing.TB, children []*child, limit time.Duration) childReport {
	t.Helper()
	timeout := time.After(limit)
	for _, c := range children {
		select {
		case <-c.done:
		case <-timeout:
			t.Fatalf("helpers still running %s after they were to stop; killed", limit)
		}
	}
	var total childReport
	for _, c := range children {
		if !c.check(t, false) {
			continue
		}
		r, err := c.report()
		if err != nil {
			t.Error(err)
			continue
		}
		total.Tokens += r.Tokens
		total.Reauth += r.Reauth
		total.Pending += r.Pending
		total.Other += r.Other
		total.Refreshed += r.Refreshed
		total.Failed += r.Failed
	}
	return total
}

// delivering returns the index of the helper that took an event last, if
// one did in the last second: most likely the one delivering now.
func delivering(dir string, children []*child) (int, bool) {
	found, last := -1, time.Now().Add(-time.Second)
	for i, c := range children {
		info, err := os.Stat(filepath.Join(dir, fmt.Sprintf("helper-%d.events", c.cmd.Process.Pid)))
		if err == nil && info.ModTime().After(last) {
			found, last = i, info.ModTime()
		}
	}
	return found, found >= 0
}

// finalEvents is the file of the final delivery, in the events directory
// beside the helpers' files.
const finalEvents = "final.events"

// eventLine is one line of a process's event file, JSON: an event its
// handler took, or, with Take, the start of a delivery run: the process
// took the event cursor at position Seq and delivers the events after it.
type eventLine struct {
	PID          int            `json:"pid"`
	Take         bool           `json:"take,omitempty"`
	Seq          int64          `json:"seq"`
	ConnectionID string         `json:"connection_id,omitempty"`
	NewStatus    connect.Status `json:"new_status,omitempty"`
	NewHealth    connect.Health `json:"new_health,omitempty"`
	Version      int64          `json:"version,omitempty"`
}

// eventFile is where a process's event handler writes what it takes:
// each line with one write to a file opened O_APPEND, synced before the
// handler returns, so that what a SIGKILL leaves in it is exactly what the
// handler had taken.
type eventFile struct {
	mu      sync.Mutex
	f       *os.File
	pid     int
	reached atomic.Int64 // the highest Seq written, taken or delivered from
}

func openEventFile(path string) (*eventFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &eventFile{f: f, pid: os.Getpid()}, nil
}

func (w *eventFile) close() { _ = w.f.Close() }

// handle is the event handler: the event is taken once its line is on
// disk.
func (w *eventFile) handle(_ context.Context, e connect.Event) error {
	return w.write(eventLine{Seq: e.Seq, ConnectionID: e.ConnectionID, NewStatus: e.NewStatus, NewHealth: e.NewHealth, Version: e.Version})
}

func (w *eventFile) write(l eventLine) error {
	l.PID = w.pid
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.f.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	if l.Seq > w.reached.Load() {
		w.reached.Store(l.Seq)
	}
	return nil
}

// cursorLog is a store that writes a Take line to file whenever its
// Manager takes the event cursor, before the Manager delivers anything
// from it: the files tell where each delivery run started.
type cursorLog struct {
	connect.Store
	file *eventFile
}

func (s cursorLog) TakeCursor(ctx context.Context, name, owner string, ttl time.Duration) (int64, bool, error) {
	pos, ok, err := s.Store.TakeCursor(ctx, name, owner, ttl)
	if err != nil || !ok || ttl <= 0 {
		return pos, ok, err // a take for no time lets the lease go: nothing is delivered after it
	}
	if err := s.file.write(eventLine{Take: true, Seq: pos}); err != nil {
		return pos, false, err
	}
	return pos, true, nil
}

// deliverTail delivers what the helpers left undelivered, as the next
// instance to start would: a Manager here runs Run with the same handler,
// writing to finalEvents in dir, until it has taken (or found the cursor
// at) the store's last event, for processTailBudget at most. It reports
// whether it caught up.
func deliverTail(t *testing.T, store connect.Store, cfg *oauth2.Config, serverURL string, key []byte, dir string, logger *slog.Logger) bool {
	t.Helper()
	file, err := openEventFile(filepath.Join(dir, finalEvents))
	require.NoError(t, err)
	defer file.close()
	m, err := processManager(cfg, serverURL, cursorLog{Store: store, file: file}, key,
		connect.WithLogger(logger), connect.WithEventHandler(file.handle))
	require.NoError(t, err)
	caughtUp := func() bool {
		evs, err := store.Events(t.Context(), file.reached.Load(), 1)
		return err == nil && len(evs) == 0
	}
	deadline := time.Now().Add(processTailBudget)
	for {
		ctx, stop := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = m.Run(ctx)
		}()
		for !caughtUp() && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		stop()
		<-done
		// Run may have recorded an event as it stopped (its keep-alive
		// refreshes under way save first): look again with nothing running.
		if caughtUp() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
	}
}

// storeEvents reads the store's whole event log.
func storeEvents(t *testing.T, store connect.Store) []connect.Event {
	t.Helper()
	var log []connect.Event
	for {
		var after int64
		if len(log) > 0 {
			after = log[len(log)-1].Seq
		}
		page, err := store.Events(t.Context(), after, 1000)
		require.NoError(t, err)
		if len(page) == 0 {
			return log
		}
		log = append(log, page...)
	}
}

// readEventFiles reads every process's event file in dir, by file name. A
// last line cut short (a kill during its write) was never synced, so its
// event was not taken: it is left out.
func readEventFiles(t *testing.T, dir string) map[string][]eventLine {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	files := make(map[string][]eventLine, len(entries))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		var lines []eventLine
		for n, line := range bytes.SplitAfter(b, []byte("\n")) {
			if !bytes.HasSuffix(line, []byte("\n")) {
				continue
			}
			var l eventLine
			require.NoError(t, json.Unmarshal(line, &l), "%s line %d", e.Name(), n+1)
			lines = append(lines, l)
		}
		files[e.Name()] = lines
	}
	return files
}

// deliveries is what checkDeliveries found.
type deliveries struct {
	runs               int      // delivery runs: a cursor taken, and the events delivered from it
	byHelpers, byFinal int      // events delivered by the helpers, and by the final delivery
	twice              int      // events delivered more than once
	extra              int      // deliveries beyond each event's first
	missing            []string // events recorded and never delivered
	problems           []string // events out of order, or not as recorded
}

// checkDeliveries checks the processes' event files against the store's
// log. The log's Seqs increase, and per connection its Versions. Each
// delivery run, from the cursor's position its process took, is the log's
// next events after that position, one after another in the log's order,
// as recorded: so in Seq order, and per connection in Version order. A run
// may deliver again what another process delivered before it was killed
// between its handler and the cursor's move; every event is delivered at
// least once.
func checkDeliveries(log []connect.Event, files map[string][]eventLine) deliveries {
	var d deliveries
	problem := func(format string, args ...any) { d.problems = append(d.problems, fmt.Sprintf(format, args...)) }
	index := make(map[int64]int, len(log))
	logVersion := make(map[string]int64)
	for i, e := range log {
		if i > 0 && e.Seq <= log[i-1].Seq {
			problem("the store's log: seq %d after seq %d", e.Seq, log[i-1].Seq)
		}
		if v, ok := logVersion[e.ConnectionID]; ok && e.Version <= v {
			problem("the store's log: %s at version %d (seq %d) after version %d", e.ConnectionID, e.Version, e.Seq, v)
		}
		logVersion[e.ConnectionID] = e.Version
		index[e.Seq] = i
	}
	count := make(map[int64]int, len(log))
	for _, name := range slices.Sorted(maps.Keys(files)) {
		next := -1 // the index in the log of the event the run delivers next; -1 before the first run
		var versions map[string]int64
		for n, l := range files[name] {
			where := fmt.Sprintf("%s line %d (pid %d)", name, n+1, l.PID)
			if l.Take {
				if _, ok := index[l.Seq]; l.Seq != 0 && !ok {
					problem("%s: a run from position %d, no event's seq", where, l.Seq)
				}
				next = sort.Search(len(log), func(i int) bool { return log[i].Seq > l.Seq })
				versions = make(map[string]int64)
				d.runs++
				continue
			}
			count[l.Seq]++
			if name == finalEvents {
				d.byFinal++
			} else {
				d.byHelpers++
			}
			switch i, ok := index[l.Seq]; {
			case next < 0:
				problem("%s: seq %d delivered outside a delivery run", where, l.Seq)
			case !ok:
				problem("%s: seq %d delivered, which the store never recorded", where, l.Seq)
			case i != next:
				problem("%s: seq %d delivered where the next in the log was %s", where, l.Seq, nextSeq(log, next))
			default:
				if e := log[i]; e.ConnectionID != l.ConnectionID || e.NewStatus != l.NewStatus || e.NewHealth != l.NewHealth || e.Version != l.Version {
					problem("%s: seq %d delivered as %s %s %s version %d, recorded as %s %s %s version %d", where, l.Seq,
						l.ConnectionID, l.NewStatus, l.NewHealth, l.Version, e.ConnectionID, e.NewStatus, e.NewHealth, e.Version)
				}
			}
			if v, ok := versions[l.ConnectionID]; ok && l.Version <= v {
				problem("%s: %s at version %d delivered after version %d in the same run", where, l.ConnectionID, l.Version, v)
			}
			if versions != nil {
				versions[l.ConnectionID] = l.Version
			}
			if i, ok := index[l.Seq]; ok && next >= 0 {
				next = i + 1 // go on from what was delivered, so that one fault is reported once
			}
		}
	}
	for _, e := range log {
		switch c := count[e.Seq]; {
		case c == 0:
			d.missing = append(d.missing, fmt.Sprintf("seq %d (%s %s version %d)", e.Seq, e.Kind(), e.ConnectionID, e.Version))
		case c > 1:
			d.twice++
			d.extra += c - 1
		}
	}
	return d
}

// nextSeq is the Seq of log[i], or "none" past its end.
func nextSeq(log []connect.Event, i int) string {
	if i >= len(log) {
		return "none"
	}
	return strconv.FormatInt(log[i].Seq, 10)
}

func processDuration(t *testing.T) time.Duration {
	if v := os.Getenv("PLEOOAUTH_PROCESS_TEST_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		return time.Duration(n) * time.Second
	}
	return 20 * time.Second
}

func TestRefreshAcrossProcessesPostgres(t *testing.T) {
	runProcesses(t, "postgres "+pgtest.Database(t), 4, 500, processDuration(t))
}

func TestRefreshAcrossProcessesSQLite(t *testing.T) {
	runProcesses(t, "sqlite "+filepath.Join(t.TempDir(), "connections.db"), 2, 500, processDuration(t))
}

// BenchmarkRefreshThroughput: 4 processes over PostgreSQL, 1000
// connections whose access tokens have all expired; each process asks for
// every connection's token once, in its own order. Each connection is
// refreshed once, by whichever process takes its lease first. It reports
// connections refreshed per second; BenchmarkFakePleoRefreshCeiling beside
// it is the fake server's own ceiling. Run with -benchtime=1x.
func BenchmarkRefreshThroughput(b *testing.B) {
	const conns, procs = 1000, 4
	spec := "postgres " + pgtest.Database(b)
	for b.Loop() {
		b.StopTimer()
		secret := "process-test-secret-0123456789"
		creds, err := pleooauth.NewCredentials(processClientID, secret)
		require.NoError(b, err)
		// The companies connect two minutes in the past, with one-minute
		// tokens: all have expired when the processes start.
		var skew atomic.Int64
		skew.Store(int64(-2 * time.Minute))
		now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		srv := pleooauthtest.NewServer(processRegistration(), creds, pleooauthtest.WithAccessTokenTTL(time.Minute), pleooauthtest.WithClock(now))
		cfg, err := processConfig(srv.URL, secret)
		require.NoError(b, err)
		key := make([]byte, 32)
		_, _ = crand.Read(key)
		store, closeStore, err := openProcessStore(context.Background(), spec)
		require.NoError(b, err)
		m, err := connect.NewManager(cfg, store, connect.WithKeys(key), connect.WithHTTPClient(srv.Client()),
			connect.WithEndpoints(srv.Endpoints()), connect.WithClock(now))
		require.NoError(b, err)
		connectMany(b, srv, cfg, key, conns, m.Complete)
		skew.Store(0)
		before, _ := srv.RefreshStats()
		b.StartTimer()

		began := time.Now()
		children := make([]*child, procs)
		for i := range children {
			children[i] = startChild(b, spec, srv.URL, secret, key, time.Minute, true)
		}
		total := waitChildren(b, children, 5*time.Minute)
		elapsed := time.Since(began)

		b.StopTimer()
		after, reuses := srv.RefreshStats()
		require.Equal(b, 0, reuses)
		require.Equal(b, conns*procs, total.Tokens, "every process got every token")
		require.Equal(b, conns, after-before, "each connection refreshed once")
		b.ReportMetric(float64(conns)/elapsed.Seconds(), "conns/s")
		srv.Close()
		closeStore()
		pool, err := pgxpool.New(context.Background(), strings.TrimPrefix(spec, "postgres "))
		require.NoError(b, err)
		_, err = pool.Exec(context.Background(), "DELETE FROM pleooauth_connections")
		pool.Close()
		require.NoError(b, err)
		b.StartTimer()
	}
}

// BenchmarkFakePleoRefreshCeiling is how many refreshes per second the
// fake server answers, from 32 goroutines of bare x/oauth2 refreshes (as
// many workers as the 4 processes of BenchmarkRefreshThroughput have): the
// ceiling beside that benchmark. Run with -benchtime=1x.
func BenchmarkFakePleoRefreshCeiling(b *testing.B) {
	const conns = 1000
	for b.Loop() {
		b.StopTimer()
		secret := "process-test-secret-0123456789"
		creds, err := pleooauth.NewCredentials(processClientID, secret)
		require.NoError(b, err)
		srv := pleooauthtest.NewServer(processRegistration(), creds)
		cfg, err := processConfig(srv.URL, secret)
		require.NoError(b, err)
		var rts []string
		connectMany(b, srv, cfg, []byte("0123456789abcdef0123456789abcdef"), conns, func(_ context.Context, tok *oauth2.Token, _ string) (*connect.Connection, error) {
			rts = append(rts, tok.RefreshToken)
			return nil, nil
		})
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
		var next atomic.Int64
		b.StartTimer()

		began := time.Now()
		var wg sync.WaitGroup
		for range procs4Workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= conns {
						return
					}
					if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rts[i]}).Token(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(began)

		b.StopTimer()
		b.ReportMetric(float64(conns)/elapsed.Seconds(), "refreshes/s")
		srv.Close()
		b.StartTimer()
	}
}

// Messages of the Manager's log that a keep-alive helper counts.
const (
	processRefreshed       = "connect: refreshed"
	processKeepAliveFailed = "connect: keep-alive refresh failed"
)

// logCounter is a slog handler that counts the records of each message it
// holds a counter for.
type logCounter map[string]*atomic.Int64

func (h logCounter) Enabled(context.Context, slog.Level) bool { return true }

func (h logCounter) Handle(_ context.Context, r slog.Record) error {
	if c := h[r.Message]; c != nil {
		c.Add(1)
	}
	return nil
}

func (h logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logCounter) WithGroup(string) slog.Handler      { return h }

// keepAliveChild is a keep-alive helper: Manager.Run alone, with the
// default timings as in production, until SIGTERM; then it reports how
// many connections its Run refreshed and how many keep-alive refreshes
// failed.
func keepAliveChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "keep-alive helper:", err); return 3 }
	server, secret := os.Getenv(envServer), os.Getenv(envSecret)
	key, err := base64.StdEncoding.DecodeString(os.Getenv(envKey))
	if err != nil {
		return fail(err)
	}
	cfg, err := processConfig(server, secret)
	if err != nil {
		return fail(err)
	}
	counts := logCounter{processRefreshed: new(atomic.Int64), processKeepAliveFailed: new(atomic.Int64)}
	var m *connect.Manager
	for startBy := time.Now().Add(processStartBudget); ; {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		store, closeStore, err := openProcessStore(octx, os.Getenv(envStore))
		cancel()
		if err == nil {
			defer closeStore()
			m, err = connect.NewManager(cfg, store, connect.WithKeys(key),
				connect.WithHTTPClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}),
				connect.WithEndpoints(pleooauthtest.EndpointsAt(server)), connect.WithLogger(slog.New(counts)))
			if err != nil {
				return fail(err)
			}
			break
		}
		if closeStore != nil {
			closeStore()
		}
		if time.Now().After(startBy) {
			return fail(fmt.Errorf("starting for %s: %w", processStartBudget, err))
		}
		time.Sleep(time.Second)
	}
	_ = m.Run(ctx)
	if err := json.NewEncoder(os.Stdout).Encode(childReport{Refreshed: int(counts[processRefreshed].Load()),
		Failed: int(counts[processKeepAliveFailed].Load())}); err != nil {
		return fail(err)
	}
	return 0
}

// keepAliveStall is how long BenchmarkKeepAliveProcesses waits for the
// next refresh before it gives up: longer than a quarantine, which a
// refresh whose answer was lost waits out before it is settled.
const keepAliveStall = connect.DefaultQuarantine + time.Minute

// BenchmarkKeepAliveProcesses is keep-alive at scale: N connections over
// PostgreSQL (PLEOOAUTH_KEEPALIVE_CONNECTIONS, 100,000 by default), each
// a real grant at the fake Pleo, all due at once, kept alive by 4 helper
// processes that run Manager.Run with the default timings and nothing
// else, until the fake Pleo has refreshed every one. Each must be
// refreshed exactly once in the period: the fake counts N refreshes and no
// reuse, the helpers saved N, every connection's refresh token from before
// is rotated out and the one stored is its live grant's current one, next
// due a period later. It reports connections kept alive per second, from
// the helpers' start to the fake's Nth refresh, beside the fake's own
// ceiling in the same run: the same grants refreshed once bare with
// x/oauth2, before they are stored, from as many goroutines as the
// helpers' keep-alive workers (4 each). The grants are made concurrently
// and stored with Store.Put, as Complete stores them but due an hour ago.
// Run with -benchtime=1x:
//
//	PLEOOAUTH_KEEPALIVE_CONNECTIONS=10000 go test -run '^$' -bench '^BenchmarkKeepAliveProcesses$' -benchtime=1x -timeout 60m ./connect
//
// On a 2-core machine with PostgreSQL 15 beside it, 100,000 connections:
// 301 kept alive per second (5 min 32 s), ceiling 13,658 per second; the
// whole run 7 min 10 s. 10,000: 279 per second, ceiling 16,003.
func BenchmarkKeepAliveProcesses(b *testing.B) {
	n := 100_000
	if v := os.Getenv("PLEOOAUTH_KEEPALIVE_CONNECTIONS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
		require.Positive(b, n)
	}
	const procs = 4
	workers := procs * connect.KeepAliveWorkers
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		spec := "postgres " + pgtest.Database(b)
		secret := "process-test-secret-0123456789"
		creds, err := pleooauth.NewCredentials(processClientID, secret)
		require.NoError(b, err)
		srv := pleooauthtest.NewServer(processRegistration(), creds)
		cfg, err := processConfig(srv.URL, secret)
		require.NoError(b, err)
		key := make([]byte, 32)
		_, _ = crand.Read(key)
		store, closeStore, err := openProcessStore(ctx, spec)
		require.NoError(b, err)
		m, err := connect.NewManager(cfg, store, connect.WithKeys(key), connect.WithHTTPClient(srv.Client()), connect.WithEndpoints(srv.Endpoints()))
		require.NoError(b, err)

		began := time.Now()
		toks := grantMany(b, srv, cfg, key, n)
		granting := time.Since(began)
		began = time.Now()
		refreshBare(b, cfg, toks, workers)
		bare := time.Since(began)
		began = time.Now()
		storeDue(b, store, m, toks)
		storing := time.Since(began)
		before, _ := srv.RefreshStats()
		b.StartTimer()

		began = time.Now()
		children := make([]*child, procs)
		for i := range children {
			children[i] = startChild(b, spec, srv.URL, secret, key, time.Hour, false, envKeepAliveOnly+"=1")
		}
		for last, progress := before, time.Now(); ; time.Sleep(50 * time.Millisecond) {
			got, _ := srv.RefreshStats()
			if got >= before+n {
				break
			}
			if got > last {
				last, progress = got, time.Now()
			}
			if time.Since(progress) > keepAliveStall {
				b.Fatalf("%d of %d connections refreshed, and none for %s", got-before, n, keepAliveStall)
			}
		}
		elapsed := time.Since(began)

		b.StopTimer()
		for _, c := range children {
			require.NoError(b, c.cmd.Process.Signal(syscall.SIGTERM))
		}
		total := waitChildren(b, children, processExitBudget)
		after, reuses := srv.RefreshStats()
		require.Zero(b, reuses, "no refresh token presented twice")
		require.Equal(b, n, after-before, "the fake Pleo refreshed each connection once")
		require.Equal(b, n, total.Refreshed, "the helpers saved every refresh")
		wrong := checkKeptAlive(b, store, m, srv, toks)
		require.Empty(b, firstFew(wrong), "every connection refreshed once and stored alive: %d are not", len(wrong))
		rate, ceiling := float64(n)/elapsed.Seconds(), float64(n)/bare.Seconds()
		var each []string
		for _, c := range children {
			r, _ := c.report()
			each = append(each, strconv.Itoa(r.Refreshed))
		}
		b.Logf("%d connections (granted in %s, stored in %s): kept alive in %s by %d processes (%s each), %.0f/s (%d failed attempts); "+
			"the fake Pleo's ceiling, %d bare refreshes from %d goroutines, %s: %.0f/s; ratio %.3f",
			n, granting.Round(time.Millisecond), storing.Round(time.Millisecond), elapsed.Round(time.Millisecond), procs, strings.Join(each, ", "),
			rate, total.Failed, n, workers, bare.Round(time.Millisecond), ceiling, rate/ceiling)
		b.ReportMetric(rate, "conns/s")
		b.ReportMetric(ceiling, "ceiling-refreshes/s")
		srv.Close()
		closeStore()
		b.StartTimer()
	}
}

// grantMany makes a grant at srv for each of n companies, through the flow
// and concurrently, and returns their tokens, company i's at i.
func grantMany(b *testing.B, srv *pleooauthtest.Server, cfg *oauth2.Config, key []byte, n int) []*oauth2.Token {
	b.Helper()
	flow, err := connect.NewFlow(cfg, key)
	require.NoError(b, err)
	toks := make([]*oauth2.Token, n)
	forEach(b, n, 8, func(i int) error {
		tok, _, err := authorizeCompany(srv, flow, i)
		toks[i] = tok
		return err
	})
	return toks
}

// refreshBare refreshes each of toks once with x/oauth2 alone, from
// workers goroutines, and puts the rotated tokens in their place.
func refreshBare(b *testing.B, cfg *oauth2.Config, toks []*oauth2.Token, workers int) {
	b.Helper()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	forEach(b, len(toks), workers, func(i int) error {
		tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: toks[i].RefreshToken}).Token()
		if err == nil {
			toks[i] = tok
		}
		return err
	})
}

// storeDue stores company i's connection with toks[i], as Complete stores
// a new one (active, healthy, customer i's), but due for keep-alive an
// hour ago.
func storeDue(b *testing.B, store connect.Store, m *connect.Manager, toks []*oauth2.Token) {
	b.Helper()
	now := time.Now()
	forEach(b, len(toks), 8, func(i int) error {
		id := companyID(i)
		_, err := store.Put(context.Background(), &connect.Record{
			Connection: connect.Connection{ID: id, Account: fmt.Sprintf("customer-%d", i), Status: connect.StatusActive,
				Scopes: []string{"users:read"}, CreatedAt: now, UpdatedAt: now, TokenExpiry: toks[i].Expiry,
				Health: connect.HealthOK, KeepAliveAt: now.Add(-time.Hour)},
			Tokens: connect.SealTokens(m, id, toks[i]),
		})
		return err
	})
}

// checkKeptAlive checks every connection after keep-alive: active and
// healthy, next due a period on, its refresh token from before (toks)
// rotated out at the fake Pleo and the stored one its live grant's
// current one. It returns what is wrong.
func checkKeptAlive(b *testing.B, store connect.Store, m *connect.Manager, srv *pleooauthtest.Server, toks []*oauth2.Token) []string {
	b.Helper()
	var mu sync.Mutex
	var wrong []string
	nextDue := time.Now().Add(connect.DefaultKeepAlive / 2)
	forEach(b, len(toks), 8, func(i int) error {
		id := companyID(i)
		rec, err := store.Get(context.Background(), id)
		if err != nil {
			return err
		}
		stored, err := connect.OpenTokens(m, id, rec.Tokens)
		if err != nil {
			return err
		}
		g, current, ok := srv.Lookup(stored.RefreshToken)
		_, before, known := srv.Lookup(toks[i].RefreshToken)
		if rec.Status != connect.StatusActive || rec.Health != connect.HealthOK || rec.LastError != "" || !rec.KeepAliveAt.After(nextDue) ||
			!ok || !current || !g.Live || g.Subject != id || !known || before {
			mu.Lock()
			defer mu.Unlock()
			wrong = append(wrong, fmt.Sprintf("%s: %s, health %s, last error %q, next due %s; stored refresh token known %v, current %v, live %v; the one before known %v, current %v",
				id, rec.Status, rec.Health, rec.LastError, rec.KeepAliveAt.Format(time.RFC3339), ok, current, g.Live, known, before))
		}
		return nil
	})
	return wrong
}

// forEach calls f for 0 to n-1 from workers goroutines, and fails b at the
// first error.
func forEach(b *testing.B, n, workers int, f func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && !failed.Load(); i = int(next.Add(1)) - 1 {
				if err := f(i); err != nil {
					failed.Store(true)
					b.Errorf("item %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		b.FailNow()
	}
}

// procs4Workers is the number of workers 4 helper processes run.
const procs4Workers = 4 * processWorkers
