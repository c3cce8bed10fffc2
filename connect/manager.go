package connect

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/internal/pleoapi"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
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

// Manager keeps many Pleo companies' connections alive, shared with every
// other instance of the backend through a [Store]: it completes the flow
// into a connection, hands out access tokens, refreshes them at most once
// at a time per connection across all instances, and disconnects.
//
// A Manager is safe for concurrent use. Make one per process and share it.
type Manager struct {
	managerOptions
	cfg   *oauth2.Config
	store Store
	keys  *keyring
	owner string // this instance's name in leases

	// The in-process cache of valid tokens: this process's memory only.
	cache sync.Map // connection ID -> *entry
}

// entry is a connection's place in the in-process cache, with the lock
// that makes this process refresh it once at a time.
type entry struct {
	mu      sync.Mutex
	tok     *oauth2.Token
	version int64

	// valid is tok while it may be handed out, read without the lock:
	// set with tok (by keep), nil when tok is nil or not valid.
	valid atomic.Pointer[validToken]
}

// validToken is a cached token and the time it stops being handed out
// from the cache: its expiry less the expiry delta (zero: never). On the
// real clock that time carries a monotonic reading, so checking it costs
// one monotonic clock reading (time.Until) rather than a wall one.
type validToken struct {
	tok   *oauth2.Token
	until time.Time
}

// keep caches tok at version in e, whose lock the caller holds.
func (m *Manager) keep(e *entry, tok *oauth2.Token, version int64) {
	e.tok, e.version = tok, version
	if !m.valid(tok) {
		e.valid.Store(nil)
		return
	}
	v := &validToken{tok: tok}
	if !tok.Expiry.IsZero() {
		now := m.now()
		v.until = now.Add(tok.Expiry.Sub(now) - m.delta)
	}
	e.valid.Store(v)
}

// cached returns e's token when it is valid now, without the lock: the
// path every API call takes.
func (m *Manager) cached(e *entry) *oauth2.Token {
	v := e.valid.Load()
	switch {
	case v == nil:
		return nil
	case v.until.IsZero():
		return v.tok
	case m.realClock:
		if time.Until(v.until) > 0 {
			return v.tok
		}
	case m.now().Before(v.until):
		return v.tok
	}
	return nil
}

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
func (c clockOption) flow(f *Flow)              { f.now = c }

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

// NewManager makes a Manager for the client cfg (from
// [pleooauth.Registration.OAuth2Config]) over store.
func NewManager(cfg *oauth2.Config, store Store, opts ...Option) (*Manager, error) {
	if cfg == nil || store == nil {
		return nil, errors.New("connect: NewManager needs an *oauth2.Config and a Store")
	}
	o := managerOptions{
		hc: http.DefaultClient, now: time.Now, realClock: true, sleep: defaultSleep, delta: DefaultExpiryDelta,
		lease: DefaultLeaseTTL, reqTTL: DefaultRefreshTimeout, quarantine: DefaultQuarantine,
		keepAlive: DefaultKeepAlive, failingAfter: DefaultFailingAfter, jitter: cryptoJitter,
	}
	for _, opt := range opts {
		opt.manager(&o)
	}
	keys, err := newKeyring(o.keys)
	if err != nil {
		return nil, err
	}
	o.keys = nil // the keyring has them; nothing else keeps a copy to print
	if o.endpoints, err = endpointsFor(cfg, o.endpoints); err != nil {
		return nil, err
	}
	if o.reqTTL <= 0 || o.lease <= 2*o.reqTTL {
		return nil, fmt.Errorf("connect: the lease (%s) must be longer than two refresh timeouts (%s each)", o.lease, o.reqTTL)
	}
	if err := checkKeepAlive(&o); err != nil {
		return nil, err
	}
	if o.quarantine <= o.reqTTL {
		return nil, fmt.Errorf("connect: the quarantine (%s) must be longer than the refresh timeout (%s)", o.quarantine, o.reqTTL)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	o.tel.start(o.log)
	o.tel.observeConnections(store, o.log)
	name := make([]byte, 12)
	_, _ = rand.Read(name)
	return &Manager{managerOptions: o, cfg: cfg, store: store, keys: keys, owner: base64.RawURLEncoding.EncodeToString(name)}, nil
}

// Config returns the *oauth2.Config the Manager uses.
func (m *Manager) Config() *oauth2.Config { return m.cfg }

// Endpoints returns the endpoints of the Pleo the Manager talks to; API
// calls go to their APIBaseURL.
func (m *Manager) Endpoints() pleooauth.Endpoints { return m.endpoints }

// endpointsFor returns the endpoints a Manager for cfg talks to: e, whose
// authorization server must be cfg's, or when e is zero, Staging's or
// Production's as cfg's token endpoint says.
func endpointsFor(cfg *oauth2.Config, e pleooauth.Endpoints) (pleooauth.Endpoints, error) {
	if e == (pleooauth.Endpoints{}) {
		for _, known := range []pleooauth.Endpoints{pleooauth.StagingEndpoints, pleooauth.ProductionEndpoints} {
			if cfg.Endpoint.TokenURL == known.TokenURL {
				return known, nil
			}
		}
		return e, fmt.Errorf("connect: the config's token endpoint %s is neither Staging's nor Production's, and WithEndpoints was not given", cfg.Endpoint.TokenURL)
	}
	e.APIBaseURL = strings.TrimSuffix(e.APIBaseURL, "/")
	switch {
	case e.IntrospectionURL == "" || e.APIBaseURL == "":
		return e, errors.New("connect: WithEndpoints needs an IntrospectionURL and an APIBaseURL")
	case cfg.Endpoint.TokenURL != e.TokenURL || cfg.Endpoint.AuthURL != e.AuthURL:
		return e, fmt.Errorf("connect: the config's endpoints (%s, %s) are not those given to WithEndpoints (%s, %s)", cfg.Endpoint.AuthURL, cfg.Endpoint.TokenURL, e.AuthURL, e.TokenURL)
	}
	return e, nil
}

// oauthContext carries the Manager's HTTP client to x/oauth2.
func (m *Manager) oauthContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, m.hc)
}

// Complete makes a connection of a finished authorization: it introspects
// the access token to learn the Pleo company (or organisation) the grant
// is for, seals the tokens and stores them under it, and returns the
// connection. account is the partner's reference for the customer who
// connected ([Flow.Finish] returns it).
//
// The same account connecting the same company again replaces its grant:
// the connection becomes active with the new tokens and keeps its
// CreatedAt. A company connected under another account is refused with
// [ErrConnectedToAnotherAccount] and the new grant is not stored, unless
// the Manager was made [WithAccountTakeover]; a disconnected company may be
// connected by any account.
//
// A replaced grant, or a refused one, is not revoked at Pleo: Pleo's only
// revocation is DELETE /v1/installations/me, which revokes every token of
// the company's installation of the app, the grant being stored among
// them. Its tokens are dropped: the refresh token is never presented again
// and the access token expires within its lifetime (expires_in).
func (m *Manager) Complete(ctx context.Context, tok *oauth2.Token, account string) (*Connection, error) {
	if tok == nil || tok.AccessToken == "" {
		return nil, errors.New("connect: Complete needs the token from the code exchange")
	}
	info, err := m.introspect(ctx, m.now().Add(m.reqTTL), "", tok.AccessToken, "access_token")
	if err != nil {
		return nil, err
	}
	if !info.Active || info.Subject == "" {
		return nil, errors.New("connect: Pleo says the new access token is not active, or names no subject")
	}
	tok = m.onClock(tok)
	scopes := strings.Fields(info.Scope)
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		scopes = strings.Fields(s)
	}
	for range maxRounds {
		old, err := m.store.Get(ctx, info.Subject)
		if err != nil && !errors.Is(err, ErrNoConnection) {
			return nil, err
		}
		var version int64
		moving := old != nil && old.Account != account && old.Status != StatusDisconnected
		if moving && !m.takeover {
			m.log.WarnContext(ctx, "connect: connection refused: the company is connected under another account",
				"connection", info.Subject, "account", account, "connected_account", old.Account)
			return nil, fmt.Errorf("%w: %s", ErrConnectedToAnotherAccount, info.Subject)
		}
		if old != nil {
			version = old.Version
		}
		now := m.now()
		rec := &Record{
			Connection: Connection{
				ID: info.Subject, Account: account, Status: StatusActive, Scopes: scopes,
				CreatedAt: now, UpdatedAt: now, TokenExpiry: tok.Expiry,
				Health: HealthOK, KeepAliveAt: now.Add(m.keepAlive - m.jitter(m.keepAlive/10)),
			},
			Tokens:  m.keys.seal(info.Subject, tok),
			Version: version,
		}
		stored, err := m.store.Put(ctx, rec)
		if errors.Is(err, ErrVersionConflict) {
			continue // written meanwhile: look at it again
		}
		if err != nil {
			return nil, fmt.Errorf("connect: storing the connection: %w", err)
		}
		m.remember(stored.ID, tok, stored.Version)
		if moving {
			m.log.WarnContext(ctx, "connect: connection moved to another account", "connection", stored.ID, "account", account, "previous_account", old.Account)
		}
		m.log.InfoContext(ctx, "connect: connected", "connection", stored.ID, "account", account)
		c := stored.Connection
		return &c, nil
	}
	return nil, fmt.Errorf("connect: connection %s kept changing while it was stored", info.Subject)
}

// Get returns the connection with that ID, or an error matching
// [ErrNoConnection]. It does not check who may see it: a handler serving
// one of the partner's customers uses [Manager.ForAccount].
func (m *Manager) Get(ctx context.Context, id string) (*Connection, error) {
	rec, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, hintID(id, err)
	}
	return &rec.Connection, nil
}

// hintID adds to a missing connection's error, when its ID is a bare
// UUID, that connection IDs are subject URNs.
func hintID(id string, err error) error {
	if !errors.Is(err, ErrNoConnection) || len(id) != 36 || strings.Count(id, "-") != 4 || strings.Trim(strings.ToLower(id), "0123456789abcdef-") != "" {
		return err
	}
	return fmt.Errorf("%w (connection IDs are Pleo subject URNs, such as urn:pleo:company:%s)", err, id)
}

// List yields the connections q selects, ordered by ID, reading the store a
// page at a time (q.PageSize() a page). q names one account, or sets
// AllAccounts ([Query.Check]). It stops at the first error, which it
// yields.
func (m *Manager) List(ctx context.Context, q Query) iter.Seq2[Connection, error] {
	return func(yield func(Connection, error) bool) {
		if err := q.Check(); err != nil {
			yield(Connection{}, err)
			return
		}
		for {
			page, err := m.store.List(ctx, q)
			if err != nil {
				yield(Connection{}, err)
				return
			}
			for _, c := range page {
				if !yield(c, nil) {
					return
				}
			}
			if len(page) < q.PageSize() {
				return
			}
			q.After = page[len(page)-1].ID
		}
	}
}

// Disconnect ends a connection: it calls Pleo's DELETE
// /v1/installations/me (Pleo: it "will revoke all access and refresh
// tokens" of the installation) with the access token the store holds,
// refreshed first if it is due, under the connection's lease; then, fenced
// by the record's version, it erases the tokens and marks the connection
// [StatusDisconnected]. A grant stored meanwhile (the company connected
// again) is revoked in turn before the mark, so no grant the store held is
// left live. A 401 from Pleo counts as revoked only when Pleo also refuses
// the grant's refresh token. A connection whose grant is already gone is
// marked without the call. Disconnecting one company never touches
// another's. While a refresh's outcome is unknown it returns
// [ErrRefreshPending]: call it again once the quarantine has passed.
func (m *Manager) Disconnect(ctx context.Context, id string) error {
	for range maxRounds {
		err := m.disconnectOnce(ctx, id)
		if errors.Is(err, errAgain) {
			continue
		}
		if err == nil {
			m.cache.Delete(id)
			m.log.InfoContext(ctx, "connect: disconnected", "connection", id)
		}
		return err
	}
	return fmt.Errorf("connect: connection %s kept changing while it was disconnected", id)
}

// disconnectOnce takes one step of Disconnect: errAgain when the record
// changed and Disconnect must look again.
func (m *Manager) disconnectOnce(ctx context.Context, id string) error {
	tok, rec, err := m.current(ctx, id, "")
	switch {
	case errors.Is(err, ErrDisconnected):
		return nil
	case errors.Is(err, ErrReauthorizationRequired):
		// Pleo refused the grant, or its tokens were lost: nothing to call.
		rec, err := m.store.Get(ctx, id)
		if err != nil {
			return err
		}
		if rec.Status != StatusReauthorizationRequired {
			return errAgain
		}
		held, err := m.acquire(ctx, rec)
		if err != nil {
			return err
		}
		return m.markDisconnected(ctx, held)
	case err != nil:
		return err
	}
	held, err := m.acquire(ctx, rec)
	if err != nil {
		return err
	}
	status, err := m.deleteInstallation(ctx, id, tok.AccessToken)
	switch {
	case err != nil:
		m.release(ctx, id)
		return err
	case status/100 == 2:
		return m.markDisconnected(ctx, held)
	case status == http.StatusUnauthorized:
		// Pleo refused the stored access token: expired early by a clock,
		// or the grant is revoked. A refresh tells which; the next round
		// calls again with its token, or marks the refused grant.
		m.release(ctx, id)
		if _, _, err := m.current(ctx, id, tok.AccessToken); err != nil && !errors.Is(err, ErrReauthorizationRequired) {
			return err
		}
		return errAgain
	}
	m.release(ctx, id)
	return fmt.Errorf("connect: disconnect: Pleo's installations API answered %d %s", status, http.StatusText(status))
}

// markDisconnected erases held's tokens and marks it disconnected, fenced
// by its version, and releases the lease.
func (m *Manager) markDisconnected(ctx context.Context, held *Record) error {
	held.Status, held.Tokens, held.RefreshSentAt = StatusDisconnected, nil, time.Time{}
	held.TokenExpiry, held.LastError, held.UpdatedAt = time.Time{}, "", m.now()
	_, err := m.write(context.WithoutCancel(ctx), held)
	if err != nil {
		m.release(ctx, held.ID)
		if errors.Is(err, ErrVersionConflict) {
			return errAgain // a grant stored meanwhile: revoke it too
		}
		return fmt.Errorf("connect: marking the connection disconnected: %w", err)
	}
	return nil
}

// ReportUnauthorized tells the Manager that Pleo's API answered 401 to
// accessToken, an access token [Manager.Token] gave for the connection (""
// means the one this process has cached). It drops that token from the
// cache, then judges the grant the store holds:
//
//   - the store holds newer tokens (another instance refreshed, or the
//     company connected again): nothing else changes; it returns nil, and
//     Token gives the new token;
//   - Pleo's introspection says the token is still active: the 401 had
//     another cause; nothing changes and it returns nil;
//   - otherwise the token is refreshed at once: if Pleo refuses the refresh
//     token, the grant was revoked (the company uninstalled the app, say),
//     the connection becomes [StatusReauthorizationRequired] with last
//     error "revoked", and it returns an error matching
//     [ErrReauthorizationRequired]; if Pleo gives new tokens (the old one
//     had expired by Pleo's clock), it returns nil.
//
// A disconnected or already marked connection is left as it is, and its
// status error returned.
func (m *Manager) ReportUnauthorized(ctx context.Context, id, accessToken string) error {
	e := m.entry(id)
	e.mu.Lock()
	if e.tok != nil && (accessToken == "" || e.tok.AccessToken == accessToken) {
		accessToken = e.tok.AccessToken
		m.keep(e, nil, e.version)
	}
	e.mu.Unlock()
	rec, err := m.store.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := statusError(rec); err != nil {
		return err
	}
	tok, err := m.keys.open(id, rec.Tokens)
	if err != nil {
		return err
	}
	if accessToken != "" && tok.AccessToken != accessToken || !rec.RefreshSentAt.IsZero() {
		return nil // newer tokens, or a refresh under way that Token settles
	}
	if m.cfg.ClientSecret != "" {
		info, err := m.introspect(ctx, m.now().Add(m.reqTTL), id, tok.AccessToken, "access_token")
		if err != nil {
			return err
		}
		if info.Active {
			return nil
		}
	}
	_, _, err = m.current(ctx, id, tok.AccessToken)
	if errors.Is(err, ErrReauthorizationRequired) {
		m.log.WarnContext(ctx, "connect: Pleo's API refused the connection's token and its refresh", "connection", id)
		return fmt.Errorf("%w: %s (%s)", ErrReauthorizationRequired, id, reasonRevoked)
	}
	return err
}

// deleteInstallation calls DELETE /v1/installations/me with accessToken,
// connection id's, and returns Pleo's status.
func (m *Manager) deleteInstallation(ctx context.Context, id, accessToken string) (int, error) {
	ctx, cancel := m.withDeadline(ctx, m.now().Add(m.reqTTL))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, m.endpoints.APIBaseURL+pleoapi.InstallationsPath, nil)
	if err != nil {
		return 0, fmt.Errorf("connect: disconnect: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := m.tel.do(m.hc, req, spanDeleteInstallation, id)
	if err != nil {
		return 0, fmt.Errorf("connect: disconnect: calling Pleo's installations API: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, nil
}

// introspection is what Pleo's introspection endpoint answers.
type introspection struct {
	Active  bool   `json:"active"`
	Scope   string `json:"scope"`
	Subject string `json:"urn:pleo:params:oauth:subject_urn"`
}

// introspect asks Pleo about connection id's token ("" before Pleo names
// it) by deadline (RFC 7662), with HTTP Basic as Pleo requires ("Only the
// client that obtained the token may introspect it").
func (m *Manager) introspect(ctx context.Context, deadline time.Time, id, token, hint string) (*introspection, error) {
	ctx, cancel := m.withDeadline(ctx, deadline)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.endpoints.IntrospectionURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("connect: introspection: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(m.cfg.ClientID), url.QueryEscape(m.cfg.ClientSecret))
	resp, err := m.tel.do(m.hc, req, spanIntrospect, id)
	if err != nil {
		return nil, fmt.Errorf("connect: introspection: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("connect: introspection answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	var info introspection
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&info); err != nil {
		return nil, errors.New("connect: introspection answered something that is not JSON")
	}
	return &info, nil
}

// TokenSource returns an oauth2.TokenSource for the connection, for
// oauth2.NewClient or any client of x/oauth2's. Its Token calls
// [Manager.Token] with ctx.
func (m *Manager) TokenSource(ctx context.Context, id string) oauth2.TokenSource {
	return &tokenSource{ctx: ctx, m: m, id: id}
}

type tokenSource struct {
	ctx context.Context
	m   *Manager
	id  string
}

func (ts *tokenSource) Token() (*oauth2.Token, error) { return ts.m.Token(ts.ctx, ts.id) }

// Client returns an HTTP client that calls Pleo's API as the connection:
// every request carries a valid access token from [Manager.Token] (called
// with ctx). A 401 from Pleo's API is handled for the caller: the grant is
// judged as [Manager.ReportUnauthorized] does, and when that leaves the
// connection with a newer access token (another instance refreshed, or the
// token had expired at Pleo), the request is sent once more with it, if
// it can be replayed (no body, or GetBody set); otherwise the 401 is
// returned, and the connection's status tells whether it needs
// reauthorization. It is not oauth2.NewClient, whose ReuseTokenSource
// decides expiry by time.Now and its own margin.
func (m *Manager) Client(ctx context.Context, id string) *http.Client {
	base := m.hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{
		Transport: &apiTransport{m: m, ctx: ctx, id: id, base: base},
		Timeout:   m.hc.Timeout,
	}
}

// remember puts a connection's token in the in-process cache.
func (m *Manager) remember(id string, tok *oauth2.Token, version int64) {
	e := m.entry(id)
	e.mu.Lock()
	defer e.mu.Unlock()
	if version >= e.version {
		m.keep(e, tok, version)
	}
}

func (m *Manager) entry(id string) *entry {
	if e, ok := m.cache.Load(id); ok {
		return e.(*entry)
	}
	e, _ := m.cache.LoadOrStore(id, &entry{})
	return e.(*entry)
}
