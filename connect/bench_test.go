package connect_test

// Benchmarks of the connections' hot paths, each beside its baseline.
// docs/performance.md quotes the medians of eight interleaved rounds, each round one
// invocation that runs every benchmark once, in this file's order:
//
//	go test -run '^$' -bench '^Benchmark(TokenCached|ReuseTokenSource|TokenColdPostgres|PgxSelectByID|RefreshMemory|RefreshPostgres|NaiveRefreshPostgres|BareRefresh)$' -benchmem -count 1 ./connect
//
// with PLEOOAUTH_TEST_POSTGRES set for the PostgreSQL ones. Wall-clock
// numbers drift from run to run by more than some of the differences
// measured, so a benchmark is compared with its baseline of the same
// rounds, never of another batch.

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
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
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"golang.org/x/oauth2"
)

// benchFixture is a fake Pleo, a config for it and a Manager over store
// with one connection. The fake Pleo runs on clock; the Manager too, unless
// made by newBenchFixtureRealClock.
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
	return newBenchFixtureOn(b, store, true)
}

// newBenchFixtureRealClock is a benchFixture whose Manager is made as in
// production, without WithClock: on time.Now. A benchmark of a path that
// reads the clock on every call (a cached Token) must not measure the fake
// clock instead, whose Now (a mutex and a copy) costs far less than
// time.Now, which reads two clocks (wall and monotonic).
func newBenchFixtureRealClock(b *testing.B, store connect.Store, opts ...connect.Option) *benchFixture {
	b.Helper()
	return newBenchFixtureOn(b, store, false, opts...)
}

func newBenchFixtureOn(b *testing.B, store connect.Store, managerOnFakeClock bool, more ...connect.Option) *benchFixture {
	b.Helper()
	reg := testRegistration("https://client.example/oauth/callback")
	creds, err := pleooauth.NewCredentials(testClientID, testClientSecret)
	if err != nil {
		b.Fatal(err)
	}
	clock := pleooauthtest.NewClock(time.Now())
	srv := pleooauthtest.NewServer(reg, creds, pleooauthtest.WithClock(clock.Now))
	b.Cleanup(srv.Close)
	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(srv.Endpoints()))
	if err != nil {
		b.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	opts := []connect.Option{connect.WithKeys(key), connect.WithHTTPClient(srv.Client()),
		connect.WithEndpoints(srv.Endpoints())}
	if managerOnFakeClock {
		opts = append(opts, connect.WithClock(clock.Now))
	}
	mgr, err := connect.NewManager(cfg, store, append(opts, more...)...)
	if err != nil {
		b.Fatal(err)
	}
	fl, err := connect.NewFlow(cfg, key, connect.WithClock(clock.Now))
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

// BenchmarkTokenCached is Token for a valid token: the in-process cache,
// with the Manager on time.Now as in production. Baseline:
// BenchmarkReuseTokenSource.
func BenchmarkTokenCached(b *testing.B) {
	f := newBenchFixtureRealClock(b, connect.NewMemoryStore())
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

// BenchmarkTokenCachedWithMeter is BenchmarkTokenCached with the Manager's
// metrics going to an SDK MeterProvider, as in production: a cache hit is
// counted, and must cost next to nothing. Baseline: BenchmarkTokenCached,
// measured interleaved with it:
//
//	for i in $(seq 8); do go test -run '^$' -bench '^BenchmarkTokenCached(WithMeter)?$' -benchmem -count 1 ./connect; done
func BenchmarkTokenCachedWithMeter(b *testing.B) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	b.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	f := newBenchFixtureRealClock(b, connect.NewMemoryStore(), connect.WithMeterProvider(provider))
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
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		b.Fatal(err)
	}
	if hits := lookupCount(rm, "hit"); hits < int64(b.N) {
		b.Fatalf("%d cache hits counted, want at least %d", hits, b.N)
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

// postgresStore is a pgstore over a database of the benchmark's own, on
// the database's clock as in production. The refresh benchmarks move the
// fake Pleo's clock (the Manager's) and not the database's, and that is
// right: the store's clock is only ever compared with a lease's expiry or
// a refresh marker, and every refresh of a benchmark completes (its Update
// clears the marker and frees the lease), so no iteration meets a lease or
// a marker of another. pgstore.WithClock would measure a configuration
// production does not run (a time bound into every statement instead of
// NULL and the database's now()).
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
// PostgreSQL read of the connection and the tokens' decryption, with the
// Manager on time.Now as in production. Baseline: BenchmarkPgxSelectByID.
func BenchmarkTokenColdPostgres(b *testing.B) {
	_, store := postgresStore(b)
	f := newBenchFixtureRealClock(b, store)
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
// key, the columns the store's Get reads (every column of the record and
// the database's time, which Get returns as ReadAt) scanned: the baseline
// of BenchmarkTokenColdPostgres.
func BenchmarkPgxSelectByID(b *testing.B) {
	pool, store := postgresStore(b)
	f := newBenchFixture(b, store)
	ctx := context.Background()
	var (
		id, account, status, lastError, owner string
		scopes                                []string
		created, updated                      time.Time
		expiry, lastRefresh, until, sent      *time.Time
		readAt                                time.Time
		tokens                                []byte
		version                               int64
	)
	b.ReportAllocs()
	for b.Loop() {
		err := pool.QueryRow(ctx, `SELECT id, account, status, scopes, created_at, updated_at, token_expiry, last_refresh_at, last_error, tokens, version, lease_owner, lease_until, refresh_sent_at, now()
			FROM pleooauth_connections WHERE id = $1`, f.id).Scan(&id, &account, &status, &scopes, &created, &updated, &expiry, &lastRefresh, &lastError, &tokens, &version, &owner, &until, &sent, &readAt)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchRefresh refreshes the connection once per iteration, through the
// lease: the clock moves past the access token's expiry each time. The
// Manager has the token it refreshes cached (from Complete, then from the
// iteration before), as an instance that keeps refreshing a connection
// does: no read precedes the claim.
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
// two durable writes, the claim (the lease and the "refresh sent" marker
// in one conditional UPDATE, at the cached token's version) and the save
// of the rotated tokens, fenced by the version, that frees the lease.
// Baseline: BenchmarkNaiveRefreshPostgres, on the same fixture.
func BenchmarkRefreshPostgres(b *testing.B) {
	_, store := postgresStore(b)
	benchRefresh(b, store)
}

// BenchmarkNaiveRefreshPostgres is what a partner without coordination
// writes, the baseline of BenchmarkRefreshPostgres: one x/oauth2 refresh
// against the same fake server (as BenchmarkBareRefresh), then the new
// tokens, sealed with AES-GCM as the Manager seals them (a value of much
// the same size), saved with one UPDATE of a row of its own table in the
// same database: one durable write, no read, no lease, no fence.
func BenchmarkNaiveRefreshPostgres(b *testing.B) {
	pool, store := postgresStore(b)
	f := newBenchFixture(b, store)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE naive_tokens (id text PRIMARY KEY, tokens bytea NOT NULL, expiry timestamptz)`); err != nil {
		b.Fatal(err)
	}
	block, err := aes.NewCipher(f.key)
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	seal := func(tok *oauth2.Token) []byte {
		plain, err := json.Marshal(struct {
			A string `json:"a"`
			R string `json:"r"`
			T string `json:"t"`
			E int64  `json:"e"`
		}{tok.AccessToken, tok.RefreshToken, tok.TokenType, tok.Expiry.UnixNano()})
		if err != nil {
			b.Fatal(err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		_, _ = rand.Read(nonce)
		return aead.Seal(nonce, nonce, plain, []byte(f.id))
	}
	if _, err := pool.Exec(ctx, `INSERT INTO naive_tokens (id, tokens, expiry) VALUES ($1, $2, $3)`, f.id, seal(f.tok), f.tok.Expiry); err != nil {
		b.Fatal(err)
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, f.srv.Client())
	rt := f.tok.RefreshToken
	b.ReportAllocs()
	for b.Loop() {
		tok, err := f.cfg.TokenSource(octx, &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `UPDATE naive_tokens SET tokens = $2, expiry = $3 WHERE id = $1`, f.id, seal(tok), tok.Expiry); err != nil {
			b.Fatal(err)
		}
		rt = tok.RefreshToken
	}
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
