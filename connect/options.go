package connect

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/partnerkit/pleooauth"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of the Manager's timing options.
const (
	// DefaultExpiryDelta is how long before its expiry an access token is
	// refreshed.
	DefaultExpiryDelta = 30 * time.Second
	// DefaultLeaseTTL is how long an instance holds a connection's lease
	// at most, on the store's clock. It covers the longest step taken
	// under one lease, an introspection and a refresh (two refresh
	// timeouts), so a lease expires only when its holder died or stalled.
	DefaultLeaseTTL = 30 * time.Second
	// DefaultRefreshTimeout bounds one request to Pleo's token,
	// introspection or installations endpoint.
	DefaultRefreshTimeout = 10 * time.Second
	// DefaultQuarantine is how long, on the store's clock, a refresh whose
	// answer was lost stays unsettled: until then no instance presents or
	// introspects its refresh token. Pleo does not say how late it may
	// process a request its edge has accepted; five minutes is far above
	// the usual gateway time-outs (60 to 100 seconds), so a request still
	// queued then has been processed or dropped.
	DefaultQuarantine = 5 * time.Minute
)

// Option configures a [Manager].
type Option interface{ manager(*managerOptions) }

// FlowOption configures a [Flow].
type FlowOption interface{ flow(*Flow) }

// ClockOption configures both a Manager and a Flow: [WithClock].
type ClockOption interface {
	Option
	FlowOption
}

type managerOption func(*managerOptions)

func (f managerOption) manager(o *managerOptions) { f(o) }

type flowOption func(*Flow)

func (f flowOption) flow(fl *Flow) { f(fl) }

type clockOption func() time.Time

func (c clockOption) manager(o *managerOptions) { o.now, o.realClock = c, false }

func (c clockOption) flow(f *Flow) { f.now = c }

// managerOptions are the Manager's settings, from its Options.
type managerOptions struct {
	keys         [][]byte // the keyring is made from them
	hc           *http.Client
	now          func() time.Time
	realClock    bool                                       // now is time.Now, not a WithClock
	sleep        func(context.Context, time.Duration) error // waits on the Manager's clock
	log          *slog.Logger
	endpoints    pleooauth.Endpoints
	delta        time.Duration
	lease        time.Duration
	reqTTL       time.Duration
	quarantine   time.Duration
	keepAlive    time.Duration
	failingAfter time.Duration
	jitter       func(time.Duration) time.Duration // a random duration in [0, d)
	onEvent      func(context.Context, Event) error
	takeover     bool
	tel          telemetry // WithMeterProvider, WithTracerProvider; instruments made by NewManager
}

// WithKeys sets the keys that seal tokens at rest (AES-GCM), each 16, 24
// or 32 bytes from crypto/rand, kept as secret as the client secret and
// shared by every instance. Required. The first key seals; every key
// opens, so a new key is rotated in by putting it first and keeping the
// old one until every connection has been saved again (each refresh
// re-seals). A later WithKeys replaces an earlier one.
func WithKeys(keys ...[]byte) Option {
	return managerOption(func(o *managerOptions) { o.keys = keys })
}

// WithHTTPClient sets the client for Pleo's token, introspection and API
// endpoints (http.DefaultClient by default).
func WithHTTPClient(c *http.Client) Option {
	return managerOption(func(o *managerOptions) { o.hc = c })
}

// WithClock sets the clock (time.Now by default) of a Manager, where it
// decides when an access token is due for a refresh and bounds each
// request, or of a Flow, where it dates and expires flows. Leases and
// refresh markers are on the store's clock, not this one; see the package
// documentation for what skewed instance clocks still do.
func WithClock(now func() time.Time) ClockOption { return clockOption(now) }

// WithLogger sets where the Manager logs refreshes and failures (never a
// token). By default it logs nothing.
func WithLogger(l *slog.Logger) Option {
	return managerOption(func(o *managerOptions) { o.log = l })
}

// WithEndpoints sets the Pleo the Manager talks to: its token
// introspection endpoint and its API, and the authorization server, which
// must be the config's. Without it, the config's token endpoint picks
// [pleooauth.StagingEndpoints] or [pleooauth.ProductionEndpoints]; give it
// for any other Pleo, such as pleooauthtest's Server.Endpoints.
func WithEndpoints(e pleooauth.Endpoints) Option {
	return managerOption(func(o *managerOptions) { o.endpoints = e })
}

// WithExpiryDelta sets how long before expiry a token is refreshed
// ([DefaultExpiryDelta]).
func WithExpiryDelta(d time.Duration) Option {
	return managerOption(func(o *managerOptions) { o.delta = d })
}

// WithLeaseTTL sets how long a lease lasts on the store's clock
// ([DefaultLeaseTTL]). It must cover an introspection and a refresh, two
// refresh timeouts: NewManager refuses a shorter one.
func WithLeaseTTL(d time.Duration) Option {
	return managerOption(func(o *managerOptions) { o.lease = d })
}

// WithRefreshTimeout bounds each request the Manager sends to Pleo
// ([DefaultRefreshTimeout]): a refresh, counted from before its claim is
// written to the store (a refresh not sent by then is not sent), an
// introspection (by Complete, ReportUnauthorized, and before a refresh
// whose outcome is unknown), and the DELETE of Disconnect. It does not
// bound API calls made through [Manager.Client] (the HTTP client's own
// timeout does), nor the store's calls (the context does). The lease must
// be longer than two of it (an introspection and a refresh under one
// lease), and the quarantine longer than one; NewManager refuses others.
func WithRefreshTimeout(d time.Duration) Option {
	return managerOption(func(o *managerOptions) { o.reqTTL = d })
}

// WithQuarantine sets how long a refresh whose answer was lost stays
// unsettled ([DefaultQuarantine]): until then, counted on the store's
// clock from when the refresh was recorded, no instance presents or
// introspects its refresh token, and [Manager.Token] returns
// [ErrRefreshPending]. It must exceed the refresh timeout by the longest
// Pleo may take to process a request it received; NewManager refuses one
// not longer than the refresh timeout.
func WithQuarantine(d time.Duration) Option {
	return managerOption(func(o *managerOptions) { o.quarantine = d })
}

// WithAccountTakeover lets [Manager.Complete] move a company connected
// under one of the partner's accounts to the account that connected it
// last. Without it, Complete refuses with [ErrConnectedToAnotherAccount].
func WithAccountTakeover() Option {
	return managerOption(func(o *managerOptions) { o.takeover = true })
}

// WithMeterProvider sets the provider of the Manager's metrics (the package
// documentation's "Telemetry" section lists them): otel.GetMeterProvider()
// by default, which records nothing until the program sets one.
func WithMeterProvider(p metric.MeterProvider) Option {
	return managerOption(func(o *managerOptions) { o.tel.meters = p })
}

// WithTracerProvider sets the provider of the Manager's spans (the package
// documentation's "Telemetry" section lists them): otel.GetTracerProvider()
// by default, which records nothing until the program sets one.
func WithTracerProvider(p trace.TracerProvider) Option {
	return managerOption(func(o *managerOptions) { o.tel.tracers = p })
}
