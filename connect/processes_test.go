package connect_test

// The refresh contract across processes: several OS processes (this test
// binary, run again as a helper) share one store and refresh hundreds of
// short-lived connections at once while one of them is killed with
// SIGKILL every few seconds. Pleo's record must show no refresh token
// presented twice, and every grant must be alive but those whose refresh
// Pleo answered after the killed process sent it and before it saved the
// answer.

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
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
	return processRegistration().OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoint(oauth2.Endpoint{
		AuthURL: serverURL + pleooauthtest.AuthorizePath, TokenURL: serverURL + pleooauthtest.TokenPath, AuthStyle: oauth2.AuthStyleInHeader,
	}))
}

func processManager(cfg *oauth2.Config, serverURL string, store connect.Store, key []byte) (*connect.Manager, error) {
	return connect.NewManager(cfg, store, connect.WithKeys(key),
		connect.WithHTTPClient(&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}),
		connect.WithIntrospectionURL(serverURL+pleooauthtest.IntrospectPath), connect.WithAPIBaseURL(serverURL),
		connect.WithExpiryDelta(processDelta), connect.WithLeaseTTL(processLease), connect.WithRefreshTimeout(processTimeout),
		connect.WithQuarantine(processQuarantine))
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

// childReport is what a helper prints when its time is up.
type childReport struct {
	Tokens, Reauth, Other int
}

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
	store, closeStore, err := openProcessStore(ctx, os.Getenv(envStore))
	if err != nil {
		return fail(err)
	}
	defer closeStore()
	cfg, err := processConfig(server, secret)
	if err != nil {
		return fail(err)
	}
	m, err := processManager(cfg, server, store, key)
	if err != nil {
		return fail(err)
	}
	var ids []string
	for c, err := range m.List(ctx, connect.Query{AllAccounts: true, Limit: 500}) {
		if err != nil {
			return fail(err)
		}
		ids = append(ids, c.ID)
	}
	deadline := time.Now().Add(d)
	var tokens, reauth, other atomic.Int64
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
	_ = json.NewEncoder(os.Stdout).Encode(childReport{Tokens: int(tokens.Load()), Reauth: int(reauth.Load()), Other: int(other.Load())})
	return 0
}

// runProcesses is the test: procs helpers over the store spec for d, one
// killed and started again every few seconds.
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
	m, err := processManager(cfg, srv.URL, store, key)
	require.NoError(t, err)

	connectMany(t, srv, cfg, key, conns, m.Complete)

	var mu sync.Mutex
	start := func(left time.Duration) *child { return startChild(t, spec, srv.URL, secret, key, left, false) }
	end := time.Now().Add(d)
	children := make([]*child, procs)
	for i := range children {
		children[i] = start(d)
	}
	kills := 0
	for {
		pause := 2*time.Second + time.Duration(rand.IntN(2000))*time.Millisecond
		if kills == 0 {
			pause = min(pause, d/2) // a short run gets its kill too
		}
		if kills > 0 && time.Now().Add(pause+2*time.Second).After(end) {
			break
		}
		time.Sleep(pause)
		i := rand.IntN(procs)
		mu.Lock()
		c := children[i]
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
		_ = c.cmd.Wait()
		kills++
		children[i] = start(time.Until(end))
		mu.Unlock()
	}
	total := waitChildren(t, children)
	refreshes, reuses := srv.RefreshStats()
	t.Logf("%d processes, %d connections, %s: %d kills; %d tokens handed out, %d refreshes at the fake Pleo, %d reuses; %d reauthorization answers, %d other errors (waits cut short, lost answers pending)",
		procs, conns, d, kills, total.Tokens, refreshes, reuses, total.Reauth, total.Other)
	assert.Equal(t, 0, reuses, "no refresh token was ever presented twice")
	assert.Greater(t, kills, 0)
	assert.Greater(t, refreshes, conns, "the connections were refreshed, most more than once")

	// Every grant is alive, but those whose answer was lost in a kill.
	lost := 0
	var unexplained []string
	for i := range conns {
		id := fmt.Sprintf("urn:pleo:company:00000000-0000-4000-8000-%012d", i)
		var tok *oauth2.Token
		var err error
		for range 20 { // a killed helper's lease or lost answer needs a moment
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			tok, err = m.Token(ctx, id)
			cancel()
			if err == nil || errors.Is(err, connect.ErrReauthorizationRequired) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		switch {
		case err == nil:
			require.True(t, introspectActive(t, srv, secret, tok.AccessToken), "%s: the access token is active", id)
			req, _ := http.NewRequest(http.MethodGet, srv.URL+pleooauthtest.EmployeesPath, nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s: the API answers", id)
		case errors.Is(err, connect.ErrReauthorizationRequired):
			// Accounted for only if the store says the answer was lost and
			// Pleo's record says the stored refresh token was rotated, not
			// revoked for reuse.
			rec, gerr := store.Get(ctx, id)
			require.NoError(t, gerr)
			stored, oerr := connect.OpenTokens(m, id, rec.Tokens)
			require.NoError(t, oerr)
			if rec.LastError != "refresh_outcome_unknown" || introspectActive(t, srv, secret, stored.RefreshToken) {
				unexplained = append(unexplained, fmt.Sprintf("%s: %s", id, rec.LastError))
			}
			lost++
		default:
			t.Fatalf("%s: %v", id, err)
		}
	}
	t.Logf("%d of %d grants lost, each a refresh Pleo answered and a killed process did not save (%d kills, %d workers each)", lost, conns, kills, processWorkers)
	assert.Empty(t, unexplained, "every lost grant is a lost answer")
	assert.LessOrEqual(t, lost, kills*processWorkers, "at most one lost answer per worker killed")
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
	cmd *exec.Cmd
	out *strings.Builder
}

// startChild starts a helper: for d, or for one sweep of every connection.
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
	out := &strings.Builder{}
	cmd.Stdout = out
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	return &child{cmd: cmd, out: out}
}

// waitChildren waits for every helper and adds up their reports.
func waitChildren(t testing.TB, children []*child) childReport {
	t.Helper()
	var total childReport
	for _, c := range children {
		require.NoError(t, c.cmd.Wait(), "a helper failed")
		var r childReport
		require.NoError(t, json.NewDecoder(strings.NewReader(c.out.String())).Decode(&r))
		total.Tokens += r.Tokens
		total.Reauth += r.Reauth
		total.Other += r.Other
	}
	return total
}

func introspectActive(t *testing.T, srv *pleooauthtest.Server, secret, token string) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.IntrospectionURL(), strings.NewReader("token="+token))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(processClientID, secret)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct{ Active bool }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return body.Active
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
			connect.WithIntrospectionURL(srv.IntrospectionURL()), connect.WithAPIBaseURL(srv.URL), connect.WithClock(now))
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
		total := waitChildren(b, children)
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
