package connect_test

// Benchmarks of the connections' hot paths, each beside its baseline in
// the same run. The README quotes their ratios:
//
//	go test -run '^$' -bench . -benchmem ./connect
//
// with PLEOOAUTH_TEST_POSTGRES set for the PostgreSQL ones.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/pgstore"
	"github.com/partnerkit/pleooauth/internal/pgtest"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"golang.org/x/oauth2"
)

// benchFixture is a fake Pleo, a config for it and a Manager over store
// with one connection.
type benchFixture struct {
	srv   *pleooauthtest.Server
	cfg   *oauth2.Config
	mgr   *connect.Manager
	store connect.Store
	clock *pleooauthtest.Clock
	key   []byte
	id    string
	tok   *oauth2.Token
}

func newBenchFixture(b *testing.B, store connect.Store) *benchFixture {
	b.Helper()
	reg := testRegistration("https://client.example/oauth/callback")
	creds, err := pleooauth.NewCredentials(testClientID, testClientSecret)
	if err != nil {
		b.Fatal(err)
	}
	clock := pleooauthtest.NewClock(time.Now())
	srv := pleooauthtest.NewServer(reg, creds, pleooauthtest.WithClock(clock.Now))
	b.Cleanup(srv.Close)
	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoint(srv.Endpoint()))
	if err != nil {
		b.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	mgr, err := connect.NewManager(cfg, store, connect.WithKeys(key), connect.WithHTTPClient(srv.Client()),
		connect.WithIntrospectionURL(srv.IntrospectionURL()), connect.WithAPIBaseURL(srv.URL), connect.WithClock(clock.Now))
	if err != nil {
		b.Fatal(err)
	}
	fl, err := connect.NewFlow(cfg, key, connect.WithFlowClock(clock.Now))
	if err != nil {
		b.Fatal(err)
	}
	authURL, sealed := fl.Start("acme")
	cb, err := srv.AuthorizeAs(authURL, company1)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())
	tok, account, err := fl.Finish(ctx, httptest.NewRequest(http.MethodGet, cb.String(), nil), sealed)
	if err != nil {
		b.Fatal(err)
	}
	c, err := mgr.Complete(context.Background(), tok, account)
	if err != nil {
		b.Fatal(err)
	}
	return &benchFixture{srv: srv, cfg: cfg, mgr: mgr, store: store, clock: clock, key: key, id: c.ID, tok: tok}
}

// BenchmarkTokenCached is Token for a valid token: the in-process cache.
// Baseline: BenchmarkReuseTokenSource.
func BenchmarkTokenCached(b *testing.B) {
	f := newBenchFixture(b, connect.NewMemoryStore())
	ctx := context.Background()
	if _, err := f.mgr.Token(ctx, f.id); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.mgr.Token(ctx, f.id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReuseTokenSource is x/oauth2's cached token source handing out
// a valid token: the baseline of BenchmarkTokenCached.
func BenchmarkReuseTokenSource(b *testing.B) {
	f := newBenchFixture(b, connect.NewMemoryStore())
	ts := oauth2.ReuseTokenSource(f.tok, f.cfg.TokenSource(context.Background(), f.tok))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ts.Token(); err != nil {
			b.Fatal(err)
		}
	}
}

func postgresStore(b *testing.B) (*pgxpool.Pool, connect.Store) {
	b.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.Database(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	store, err := pgstore.New(context.Background(), pool)
	if err != nil {
		b.Fatal(err)
	}
	return pool, store
}

// BenchmarkTokenColdPostgres is Token with the in-process cache empty: one
// PostgreSQL read of the connection and the tokens' decryption. Baseline:
// BenchmarkPgxSelectByID.
func BenchmarkTokenColdPostgres(b *testing.B) {
	_, store := postgresStore(b)
	f := newBenchFixture(b, store)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		connect.Forget(f.mgr, f.id)
		if _, err := f.mgr.Token(ctx, f.id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPgxSelectByID is a bare pgx SELECT of the same row by primary
// key, every column scanned: the baseline of BenchmarkTokenColdPostgres.
func BenchmarkPgxSelectByID(b *testing.B) {
	pool, store := postgresStore(b)
	f := newBenchFixture(b, store)
	ctx := context.Background()
	var (
		id, account, status, lastError, owner string
		scopes                                []string
		created, updated                      time.Time
		expiry, lastRefresh, until, sent      *time.Time
		tokens                                []byte
		version                               int64
	)
	b.ReportAllocs()
	for b.Loop() {
		err := pool.QueryRow(ctx, `SELECT id, account, status, scopes, created_at, updated_at, token_expiry, last_refresh_at, last_error, tokens, version, lease_owner, lease_until, refresh_sent_at
			FROM pleooauth_connections WHERE id = $1`, f.id).Scan(&id, &account, &status, &scopes, &created, &updated, &expiry, &lastRefresh, &lastError, &tokens, &version, &owner, &until, &sent)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchRefresh refreshes the connection once per iteration, through the
// lease: the clock moves past the access token's expiry each time.
func benchRefresh(b *testing.B, store connect.Store) {
	f := newBenchFixture(b, store)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)
		if _, err := f.mgr.Token(ctx, f.id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefreshMemory is a refresh through the lease over a MemoryStore:
// what the coordination itself costs. Baseline: BenchmarkBareRefresh.
func BenchmarkRefreshMemory(b *testing.B) { benchRefresh(b, connect.NewMemoryStore()) }

// BenchmarkRefreshPostgres is a refresh through the lease over PostgreSQL:
// the read, the lease, the marker and the fenced save are four round trips.
func BenchmarkRefreshPostgres(b *testing.B) {
	_, store := postgresStore(b)
	benchRefresh(b, store)
}

// BenchmarkBareRefresh is one refresh with x/oauth2 against the same fake
// server, the rotated refresh token kept for the next: the baseline.
func BenchmarkBareRefresh(b *testing.B) {
	f := newBenchFixture(b, connect.NewMemoryStore())
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, f.srv.Client())
	rt := f.tok.RefreshToken
	b.ReportAllocs()
	for b.Loop() {
		tok, err := f.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			b.Fatal(err)
		}
		rt = tok.RefreshToken
	}
}
