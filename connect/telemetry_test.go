package connect_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/internal/pleoapi"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
)

// scope is the instrumentation scope the Manager's metrics and spans carry.
const scope = "github.com/partnerkit/pleooauth/connect"

// telemetry is where a test's Managers send their metrics and spans: an
// SDK MeterProvider read by a ManualReader, and an SDK TracerProvider
// recorded by a SpanRecorder.
type telemetry struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	opts   []connect.Option // give them to the Managers
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tracers := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() {
		_ = meters.Shutdown(context.Background())
		_ = tracers.Shutdown(context.Background())
	})
	return &telemetry{reader: reader, spans: spans, opts: []connect.Option{connect.WithMeterProvider(meters), connect.WithTracerProvider(tracers)}}
}

// metrics collects the package's metrics, by name.
func (tel *telemetry) metrics(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tel.reader.Collect(t.Context(), &rm))
	got := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, scope, sm.Scope.Name, "the instrumentation scope is the package's import path")
		for _, m := range sm.Metrics {
			got[m.Name] = m
		}
	}
	return got
}

// counts returns a counter's values by the value of its attribute key.
func (tel *telemetry) counts(t *testing.T, name string, key attribute.Key) map[string]int64 {
	t.Helper()
	return sumByAttribute(tel.metrics(t)[name], key)
}

func sumByAttribute(m metricdata.Metrics, key attribute.Key) map[string]int64 {
	got := map[string]int64{}
	if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, dp := range sum.DataPoints {
			v, _ := dp.Attributes.Value(key)
			got[v.AsString()] += dp.Value
		}
	}
	return got
}

// lookupCount is how many cache lookups rm counts with result ("hit" or
// "miss").
func lookupCount(rm metricdata.ResourceMetrics, result string) int64 {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "pleooauth.connect.token.cache.lookups" {
				return sumByAttribute(m, "result")[result]
			}
		}
	}
	return 0
}

// recorded returns a histogram's number of recorded values by the value
// of its attribute key (the attribute-less histogram's under "").
func (tel *telemetry) recorded(t *testing.T, name string, key attribute.Key) map[string]uint64 {
	t.Helper()
	m, ok := tel.metrics(t)[name]
	require.True(t, ok, "no %s", name)
	hist, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "%s is not a histogram of float64", name)
	assert.Equal(t, "s", m.Unit)
	got := map[string]uint64{}
	for _, dp := range hist.DataPoints {
		v, _ := dp.Attributes.Value(key)
		got[v.AsString()] += dp.Count
		assert.Equal(t, []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}, dp.Bounds, "buckets for seconds")
	}
	return got
}

// ended returns the ended spans named name.
func (tel *telemetry) ended(name string) []sdktrace.ReadOnlySpan {
	var got []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == name {
			got = append(got, s)
		}
	}
	return got
}

// only returns the one ended span named name.
func (tel *telemetry) only(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	got := tel.ended(name)
	require.Len(t, got, 1, "spans named %s", name)
	return got[0]
}

// attr returns the value of a span's attribute key, "" if it has none.
func attr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.String()
		}
	}
	return ""
}

// TestTelemetryCountsCacheHitsAndMisses: Token served from the in-process
// cache counts a hit; one that reads the store counts a miss.
func TestTelemetryCountsCacheHitsAndMisses(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	f := newFlowFixture(t, redirect)
	m := f.manager(t, connect.NewMemoryStore(), tel.opts...)
	f.connect(t, m, "acme", company1) // Complete caches the token

	_, err := m.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"hit": 1, "miss": 0}, tel.counts(t, "pleooauth.connect.token.cache.lookups", "result"))

	connect.Forget(m, company1)
	_, err = m.Token(t.Context(), company1) // read from the store, and cached
	require.NoError(t, err)
	_, err = m.Token(t.Context(), company1)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"hit": 2, "miss": 1}, tel.counts(t, "pleooauth.connect.token.cache.lookups", "result"))

	lookups := tel.metrics(t)["pleooauth.connect.token.cache.lookups"]
	assert.Equal(t, "{lookup}", lookups.Unit)
	assert.NotEmpty(t, lookups.Description)
	sum, ok := lookups.Data.(metricdata.Sum[int64])
	require.True(t, ok)
	assert.True(t, sum.IsMonotonic, "a counter")
	assert.Equal(t, metricdata.CumulativeTemporality, sum.Temporality)
}

// conflictStore is a MemoryStore whose Update, once refuse is set,
// answers as if another write had come first.
type conflictStore struct {
	*connect.MemoryStore
	refuse atomic.Bool
}

func (s *conflictStore) Update(ctx context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	if s.refuse.Load() {
		return nil, connect.ErrVersionConflict
	}
	return s.MemoryStore.Update(ctx, rec, owner, release)
}

// TestTelemetryCountsRefreshesByOutcome: each way a refresh ends is
// counted once under its outcome, with its duration, and its span says the
// outcome, the connection, and the error when there is one.
func TestTelemetryCountsRefreshesByOutcome(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		outcome string
		fault   pleooauthtest.Fault // the refresh's, at the token endpoint
		// prepare returns the Manager that refreshes, given the one that
		// connected company1 over store, and its token.
		prepare func(t *testing.T, f *flowFixture, tel *telemetry, store *conflictStore, m *connect.Manager, tok *oauth2.Token) *connect.Manager
		wantErr error
	}{
		{name: "new tokens", outcome: "ok"},
		{
			name: "the grant is dead", outcome: "refused", wantErr: connect.ErrReauthorizationRequired,
			prepare: func(t *testing.T, f *flowFixture, _ *telemetry, _ *conflictStore, m *connect.Manager, tok *oauth2.Token) *connect.Manager {
				// The refresh token is used elsewhere twice: Pleo revokes the grant.
				for range 2 {
					_, _ = f.cfg.TokenSource(f.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
				}
				return m
			},
		},
		{name: "no usable answer", outcome: "unknown", fault: pleooauthtest.Fault{Status: http.StatusBadGateway}, wantErr: connect.ErrRefreshPending},
		{
			name: "nothing listening", outcome: "not_sent",
			prepare: func(t *testing.T, f *flowFixture, tel *telemetry, store *conflictStore, _ *connect.Manager, _ *oauth2.Token) *connect.Manager {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				closed := "http://" + ln.Addr().String() + pleoapi.TokenPath
				require.NoError(t, ln.Close())
				cfg, endpoints := f.withTokenURL(closed)
				down, err := connect.NewManager(cfg, store, append([]connect.Option{connect.WithKeys(f.key), connect.WithHTTPClient(f.srv.Client()),
					connect.WithEndpoints(endpoints), connect.WithClock(f.clock.Now)}, tel.opts...)...)
				require.NoError(t, err)
				return down
			},
		},
		{
			name: "another error", outcome: "error",
			prepare: func(t *testing.T, f *flowFixture, tel *telemetry, store *conflictStore, _ *connect.Manager, _ *oauth2.Token) *connect.Manager {
				cfg := *f.cfg
				cfg.ClientSecret = "not-the-secret" // Pleo answers invalid_client
				wrong, err := connect.NewManager(&cfg, store, append([]connect.Option{connect.WithKeys(f.key), connect.WithHTTPClient(f.srv.Client()),
					connect.WithEndpoints(f.srv.Endpoints()), connect.WithClock(f.clock.Now)}, tel.opts...)...)
				require.NoError(t, err)
				return wrong
			},
		},
		{
			name: "rotated but not saved", outcome: "unsaved",
			prepare: func(t *testing.T, _ *flowFixture, _ *telemetry, store *conflictStore, m *connect.Manager, _ *oauth2.Token) *connect.Manager {
				store.refuse.Store(true)
				return m
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t)
			f := newFlowFixture(t, redirect, pleooauthtest.WithTokenFaults(func(r pleooauthtest.TokenRequest) pleooauthtest.Fault {
				if r.GrantType == "refresh_token" {
					return tt.fault
				}
				return pleooauthtest.Fault{}
			}))
			store := &conflictStore{MemoryStore: connect.NewMemoryStore()}
			store.Now = f.clock.Now
			m := f.manager(t, store, tel.opts...)
			tok, _ := f.connect(t, m, "acme", company1)
			if tt.prepare != nil {
				m = tt.prepare(t, f, tel, store, m, tok)
			}
			f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)

			_, err := m.Token(t.Context(), company1)
			if tt.outcome == "ok" {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			}

			assert.Equal(t, map[string]int64{tt.outcome: 1}, tel.counts(t, "pleooauth.connect.refreshes", "outcome"))
			assert.Equal(t, map[string]uint64{tt.outcome: 1}, tel.recorded(t, "pleooauth.connect.refresh.duration", "outcome"), "a duration recorded")
			span := tel.only(t, "pleooauth.connect.refresh")
			assert.Equal(t, company1, attr(span, "pleo.connection.id"))
			assert.Equal(t, tt.outcome, attr(span, "outcome"))
			if tt.outcome == "ok" {
				assert.Equal(t, codes.Unset, span.Status().Code)
				return
			}
			assert.Equal(t, codes.Error, span.Status().Code)
			if tt.outcome == "unsaved" {
				// Token settles what became of the tokens: it returns ErrRefreshPending.
				assert.Contains(t, span.Status().Description, "the refreshed tokens are dropped")
			} else {
				assert.Equal(t, err.Error(), span.Status().Description, "the error Token returned")
			}
			assert.NotEmpty(t, attr(span, "error.type"))
		})
	}
}

// TestTelemetryCountsLeaseWaits: two instances over one store; one
// refreshes and, while its request is at Pleo, the other finds the lease
// taken and waits for it, then takes the new token. The wait is counted
// and timed; the refresh is counted once.
func TestTelemetryCountsLeaseWaits(t *testing.T) {
	t.Parallel()
	arrived, proceed := make(chan struct{}), make(chan struct{})
	var gate, release sync.Once
	t.Cleanup(func() { release.Do(func() { close(proceed) }) })
	f := newFlowFixture(t, redirect, pleooauthtest.WithTokenFaults(func(r pleooauthtest.TokenRequest) pleooauthtest.Fault {
		if r.GrantType == "refresh_token" {
			gate.Do(func() { close(arrived); <-proceed })
		}
		return pleooauthtest.Fault{}
	}))
	tel := newTelemetry(t)
	store := connect.NewMemoryStore()
	a, b := f.manager(t, store, tel.opts...), f.manager(t, store, tel.opts...)
	f.connect(t, a, "acme", company1)
	waiting := make(chan struct{})
	var waits sync.Once
	connect.SetSleep(b, func(ctx context.Context, d time.Duration) error {
		waits.Do(func() { close(waiting) })
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	})
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)

	refreshed := make(chan *oauth2.Token, 1)
	go func() {
		tok, err := a.Token(t.Context(), company1)
		assert.NoError(t, err)
		refreshed <- tok
	}()
	<-arrived // a holds the lease, its refresh at Pleo
	took := make(chan *oauth2.Token, 1)
	go func() {
		tok, err := b.Token(t.Context(), company1)
		assert.NoError(t, err)
		took <- tok
	}()
	<-waiting // b waits for a's lease
	release.Do(func() { close(proceed) })
	tokA, tokB := <-refreshed, <-took
	require.NotNil(t, tokA)
	require.NotNil(t, tokB)
	assert.Equal(t, tokA.AccessToken, tokB.AccessToken, "b took a's new token")

	metrics := tel.metrics(t)
	waited := metrics["pleooauth.connect.lease.waits"]
	assert.Equal(t, map[string]int64{"": 1}, sumByAttribute(waited, ""), "one wait, by b (no attributes)")
	assert.Equal(t, "{wait}", waited.Unit)
	assert.Equal(t, map[string]uint64{"": 1}, tel.recorded(t, "pleooauth.connect.lease.wait.duration", ""))
	assert.Equal(t, map[string]int64{"ok": 1}, tel.counts(t, "pleooauth.connect.refreshes", "outcome"), "one refresh, by a")
	assert.Equal(t, map[string]int64{"hit": 0, "miss": 2}, tel.counts(t, "pleooauth.connect.token.cache.lookups", "result"), "the two Managers' counts add up")
	for name, m := range metrics {
		assert.True(t, strings.HasPrefix(name, "pleooauth.connect."), name)
		assert.NotEmpty(t, m.Unit, name)
		assert.NotEmpty(t, m.Description, name)
	}
	assert.Len(t, metrics, 6, "every instrument recorded but the event delivery lag (no handler here)")
}

// TestTelemetrySpans: a refresh, an introspection, the installation DELETE
// of Disconnect and an API call through Client each have a span naming
// the connection; the HTTP ones are client spans with the method and
// Pleo's status; the refresh an API call needed is its child.
func TestTelemetrySpans(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	f := newFlowFixture(t, redirect)
	m := f.manager(t, connect.NewMemoryStore(), tel.opts...)
	f.connect(t, m, "acme", company1)
	complete := tel.only(t, "pleooauth.connect.introspect")
	assert.Empty(t, attr(complete, "pleo.connection.id"), "Complete's introspection is what tells the connection")

	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)
	resp, err := m.Client(t.Context(), company1).Get(f.srv.URL + pleoapi.EmployeesPath)
	require.NoError(t, err)
	resp.Body.Close()
	require.NoError(t, m.ReportUnauthorized(t.Context(), company1, ""), "the token is active")
	require.NoError(t, m.Disconnect(t.Context(), company1))

	api := tel.only(t, "pleooauth.connect.api")
	refresh := tel.only(t, "pleooauth.connect.refresh")
	introspections := tel.ended("pleooauth.connect.introspect")
	require.Len(t, introspections, 2)
	introspect := introspections[1]
	del := tel.only(t, "pleooauth.connect.delete_installation")
	for _, tt := range []struct {
		span           sdktrace.ReadOnlySpan
		kind           trace.SpanKind
		method, status string
	}{
		{api, trace.SpanKindClient, http.MethodGet, "200"},
		{refresh, trace.SpanKindInternal, "", ""},
		{introspect, trace.SpanKindClient, http.MethodPost, "200"},
		{del, trace.SpanKindClient, http.MethodDelete, "204"},
	} {
		name := tt.span.Name()
		assert.Equal(t, scope, tt.span.InstrumentationScope().Name, name)
		assert.Equal(t, company1, attr(tt.span, "pleo.connection.id"), name)
		assert.Equal(t, tt.kind, tt.span.SpanKind(), name)
		assert.Equal(t, tt.method, attr(tt.span, "http.request.method"), name)
		assert.Equal(t, tt.status, attr(tt.span, "http.response.status_code"), name)
		assert.Equal(t, codes.Unset, tt.span.Status().Code, name)
	}
	assert.Equal(t, "ok", attr(refresh, "outcome"))
	assert.Equal(t, api.SpanContext().SpanID(), refresh.Parent().SpanID(), "the refresh is the API call's child")
	assert.Equal(t, api.SpanContext().TraceID(), refresh.SpanContext().TraceID())
}

// tokenTap is a transport that keeps every token the token endpoint
// issues through it.
type tokenTap struct {
	base   http.RoundTripper
	mu     sync.Mutex
	tokens []string
}

func (tt *tokenTap) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := tt.base.RoundTrip(r)
	if err != nil || r.URL.Path != pleoapi.TokenPath {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(body, &tok) == nil {
		tt.keep(tok.AccessToken, tok.RefreshToken)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (tt *tokenTap) keep(tokens ...string) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	for _, tok := range tokens {
		if tok != "" {
			tt.tokens = append(tt.tokens, tok)
		}
	}
}

// TestTelemetryRecordsNoSecret: across a connection's life (connected,
// API calls, refreshes, a 401, a revoked grant, a refresh without an
// answer settled later, a disconnect), no span name, attribute, event or
// status, and no metric attribute, holds a token the fake Pleo issued or
// the client secret; the errors recorded are there, scrubbed.
func TestTelemetryRecordsNoSecret(t *testing.T) {
	t.Parallel()
	var fault atomic.Int32 // an HTTP status for the next refresh, 0 for none
	f := newFlowFixture(t, redirect, pleooauthtest.WithTokenFaults(func(r pleooauthtest.TokenRequest) pleooauthtest.Fault {
		if r.GrantType == "refresh_token" {
			return pleooauthtest.Fault{Status: int(fault.Swap(0))}
		}
		return pleooauthtest.Fault{}
	}))
	tel := newTelemetry(t)
	tap := &tokenTap{base: f.srv.Client().Transport}
	m := f.manager(t, connect.NewMemoryStore(), append(tel.opts, connect.WithHTTPClient(&http.Client{Transport: tap}))...)
	ctx := t.Context()
	call := func(id string) int {
		t.Helper()
		resp, err := m.Client(ctx, id).Get(f.srv.URL + pleoapi.EmployeesPath)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}

	tok1, _ := f.connect(t, m, "acme", company1)
	tok2, _ := f.connect(t, m, "acme", company2)
	tap.keep(tok1.AccessToken, tok1.RefreshToken, tok2.AccessToken, tok2.RefreshToken)
	assert.Equal(t, http.StatusOK, call(company1))
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)
	assert.Equal(t, http.StatusOK, call(company1), "after a refresh")
	require.NoError(t, m.ReportUnauthorized(ctx, company1, ""))

	// The company uninstalls the app at Pleo: the next call is refused,
	// and so is the refresh.
	cur, err := m.Token(ctx, company1)
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodDelete, f.srv.URL+pleoapi.InstallationsPath, nil)
	req.Header.Set("Authorization", "Bearer "+cur.AccessToken)
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, call(company1))
	assertStatus(t, m, company1, connect.StatusReauthorizationRequired)

	// A refresh without an answer, settled after the quarantine.
	fault.Store(http.StatusServiceUnavailable)
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)
	_, err = m.Token(ctx, company2)
	require.ErrorIs(t, err, connect.ErrRefreshPending)
	f.clock.Advance(connect.DefaultQuarantine)
	_, err = m.Token(ctx, company2)
	require.NoError(t, err)
	require.NoError(t, m.Disconnect(ctx, company2))

	var dump strings.Builder
	spans := tel.spans.Ended()
	for _, s := range spans {
		fmt.Fprintf(&dump, "%s %s %q\n", s.Name(), s.Status().Code, s.Status().Description)
		for _, kv := range s.Attributes() {
			fmt.Fprintf(&dump, "  %s=%s\n", kv.Key, kv.Value.String())
		}
		for _, e := range s.Events() {
			fmt.Fprintf(&dump, "  event %s\n", e.Name)
			for _, kv := range e.Attributes {
				fmt.Fprintf(&dump, "    %s=%s\n", kv.Key, kv.Value.String())
			}
		}
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, tel.reader.Collect(ctx, &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			fmt.Fprintf(&dump, "%s %s %s %+v\n", m.Name, m.Unit, m.Description, m.Data)
		}
	}
	recorded := dump.String()

	// The life above went where it should: every kind of span, the errors.
	for _, want := range []string{"pleooauth.connect.api", "pleooauth.connect.refresh", "pleooauth.connect.introspect",
		"pleooauth.connect.delete_installation", "outcome=refused", "outcome=unknown", "outcome=ok", "reauthorization required",
		"a refresh's outcome is not known yet", "http.response.status_code=401"} {
		assert.Contains(t, recorded, want)
	}
	tap.mu.Lock()
	tokens := tap.tokens
	tap.mu.Unlock()
	assert.GreaterOrEqual(t, len(tokens), 8, "two grants, a refresh of each, their access and refresh tokens")
	for _, secret := range append(tokens, testClientSecret) {
		require.GreaterOrEqual(t, len(secret), 16, "a token long enough not to match by chance")
		for _, enc := range []string{secret, url.QueryEscape(secret), hex.EncodeToString([]byte(secret)),
			base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawURLEncoding.EncodeToString([]byte(secret))} {
			assert.NotContains(t, recorded, enc)
		}
	}
	basic := base64.StdEncoding.EncodeToString([]byte(testClientID + ":" + testClientSecret))
	assert.NotContains(t, recorded, basic, "the client's Basic credentials")
}

// TestTelemetryGaugesConnectionsAndEventLag: the connections gauge gives
// the store's count by status and health whenever metrics are collected,
// and each event the handler takes records how long after its change it
// came.
func TestTelemetryGaugesConnectionsAndEventLag(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	f := newFlowFixture(t, redirect)
	store := connect.NewMemoryStore()
	h := &handled{}
	m := f.manager(t, store, append(tel.opts, connect.WithEventHandler(h.handle))...)
	f.connect(t, m, "acme", company1)
	f.connect(t, m, "acme", company2)
	f.connect(t, m, "globex", company3)
	require.NoError(t, m.Disconnect(t.Context(), company2))
	rec, err := store.Get(t.Context(), company3)
	require.NoError(t, err)
	rec.Health, rec.FailingSince = connect.HealthFailing, rec.ReadAt
	_, err = store.Update(t.Context(), rec, "", false)
	require.NoError(t, err)

	gauge, ok := tel.metrics(t)["pleooauth.connect.connections"]
	require.True(t, ok, "no connections gauge")
	assert.Equal(t, "{connection}", gauge.Unit)
	points, ok := gauge.Data.(metricdata.Gauge[int64])
	require.True(t, ok, "a gauge of int64")
	got := map[string]int64{}
	for _, dp := range points.DataPoints {
		status, _ := dp.Attributes.Value("status")
		health, _ := dp.Attributes.Value("health")
		got[status.AsString()+"/"+health.AsString()] = dp.Value
	}
	assert.Equal(t, map[string]int64{"active/ok": 1, "active/failing": 1, "disconnected/ok": 1}, got)

	f.clock.Advance(3 * time.Second)
	require.NoError(t, connect.DeliverOnce(t.Context(), m))
	lag, ok := tel.metrics(t)["pleooauth.connect.event.delivery.lag"]
	require.True(t, ok, "no delivery lag")
	hist, ok := lag.Data.(metricdata.Histogram[float64])
	require.True(t, ok)
	require.Len(t, hist.DataPoints, 1)
	assert.Equal(t, uint64(len(h.evs)), hist.DataPoints[0].Count, "one lag per event delivered")
	assert.Equal(t, 5, len(h.evs))
	least, ok := hist.DataPoints[0].Min.Value()
	require.True(t, ok)
	assert.GreaterOrEqual(t, least, 3.0, "the lag is the time since the change, on the Manager's clock")
}
