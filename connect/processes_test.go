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
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
// workers' Token calls answered.
type childReport struct {
	Tokens, Reauth, Pending, Other int
}

// A helper's standard output: a line "unknown ID" for every refresh
// whose outcome was unknown, as it happens, then its childReport as JSON.
const unknownLine = "unknown "

// processChild is a helper process: workers asking for random
// connections' tokens until the duration ends.
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
	// Starting can meet a store kept busy by the other helpers on a loaded
	// machine: it is tried again for a while, as a deployment restarts an
	// instance that failed to start; an error that lasts fails the helper.
	var m *connect.Manager
	var ids []string
	startBy := time.Now().Add(processStartBudget)
	for {
		var closeStore func()
		m, ids, closeStore, err = startProcessChild(ctx, cfg, server, key, logger)
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
	outMu.Lock()
	defer outMu.Unlock()
	if err := json.NewEncoder(os.Stdout).Encode(childReport{Tokens: int(tokens.Load()), Reauth: int(reauth.Load()),
		Pending: int(pending.Load()), Other: int(other.Load())}); err != nil {
		return fail(err)
	}
	return 0
}

// startProcessChild opens the store, makes the helper's Manager and lists
// every connection.
func startProcessChild(ctx context.Context, cfg *oauth2.Config, server string, key []byte, logger *slog.Logger) (*connect.Manager, []string, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, closeStore, err := openProcessStore(ctx, os.Getenv(envStore))
	if err != nil {
		if closeStore != nil {
			closeStore()
		}
		return nil, nil, nil, err
	}
	m, err := processManager(cfg, server, store, key, connect.WithLogger(logger))
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
// killed and started again every few seconds; then every connection is
// judged against the fake Pleo's ground truth. It asserts safety, never
// throughput: how much gets refreshed is logged.
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
	m, err := processManager(cfg, srv.URL, store, key,
		connect.WithLogger(slog.New(unknownOutcomes{seen: func(string) { parentUnknown.Add(1) }})))
	require.NoError(t, err)

	connectMany(t, srv, cfg, key, conns, m.Complete)

	// The helpers run for d; one is killed and another started in its
	// place every 2 to 4 seconds. The first kill comes early whatever the
	// helpers have done by then (a loaded machine may not have them
	// started yet), so that every run kills.
	began := time.Now()
	end := began.Add(d)
	start := func(left time.Duration) *child { return startChild(t, spec, srv.URL, secret, key, left, false) }
	children := make([]*child, procs)
	for i := range children {
		children[i] = start(d)
	}
	all := slices.Clone(children)
	kills := 0
	for {
		pause := 2*time.Second + time.Duration(rand.IntN(2000))*time.Millisecond
		if kills == 0 {
			pause = min(processFirstKill, d/2)
		} else if time.Now().Add(pause + 2*time.Second).After(end) {
			break
		}
		time.Sleep(pause)
		i := rand.IntN(procs)
		children[i].kill(t)
		kills++
		refreshes, _ := srv.RefreshStats()
		t.Logf("%s: kill %d; %d refreshes so far", time.Since(began).Round(time.Millisecond), kills, refreshes)
		children[i] = start(time.Until(end))
		all = append(all, children[i])
	}
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
		ids[i] = fmt.Sprintf("urn:pleo:company:00000000-0000-4000-8000-%012d", i)
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
	// flight; a live process loses one only when it could not tell the
	// outcome, which it logs.
	require.LessOrEqual(t, lost, kills*processWorkers+unknown, "at most one lost answer per worker killed or outcome unknown")
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
	exchange := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())
	for i := range n {
		authURL, sealed := flow.Start(fmt.Sprintf("customer-%d", i))
		cb, err := srv.AuthorizeAs(authURL, fmt.Sprintf("urn:pleo:company:00000000-0000-4000-8000-%012d", i))
		require.NoError(t, err)
		tok, account, err := flow.Finish(exchange, httptest.NewRequest(http.MethodGet, cb.String(), nil), sealed)
		require.NoError(t, err)
		_, err = complete(context.Background(), tok, account)
		require.NoError(t, err)
	}
}

// child is a helper process.
type child struct {
	cmd            *exec.Cmd
	stdout, stderr *bytes.Buffer // read only once done is closed
	done           chan struct{} // closed when it has exited and its output is read
	err            error         // cmd.Wait's, once done is closed
}

// startChild starts a helper: for d, or for one sweep of every connection.
// A helper still running when the test ends is killed.
func startChild(t testing.TB, spec, serverURL, secret string, key []byte, d time.Duration, sweep bool) *child {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envStore+"="+spec, envServer+"="+serverURL, envSecret+"="+secret,
		envKey+"="+base64.StdEncoding.EncodeToString(key), envDuration+"="+d.String())
	if sweep {
		cmd.Env = append(cmd.Env, envSweep+"=1")
	}
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
	}
	return total
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

// procs4Workers is the number of workers 4 helper processes run.
const procs4Workers = 4 * processWorkers
