package connect

import (
	"cmp"
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
	"time"

	"github.com/partnerkit/pleooauth"
	"golang.org/x/oauth2"
)

// Pleo's token introspection endpoints and API base URLs, the defaults of
// [WithIntrospectionURL] and [WithAPIBaseURL] for a config whose endpoint
// is [pleooauth.StagingEndpoint] or [pleooauth.ProductionEndpoint].
//
// Documentation: https://developers.pleo.io/docs/current/integration-design/auth/oauth/token-introspection
const (
	StagingIntrospectionURL    = "https://auth.staging.pleo.io/oauth/token/introspect"
	ProductionIntrospectionURL = "https://auth.pleo.io/oauth/token/introspect"
	StagingAPIBaseURL          = "https://external.staging.pleo.io"
	ProductionAPIBaseURL       = "https://external.pleo.io"
)

// Defaults of the Manager's timing options.
const (
	// DefaultExpiryDelta is how long before its expiry an access token is
	// refreshed.
	DefaultExpiryDelta = 30 * time.Second
	// DefaultLeaseTTL is how long an instance holds a connection's refresh
	// lease at most. It is longer than a refresh may take
	// ([DefaultRefreshTimeout]), so a lease expires only when its holder
	// died or stalled.
	DefaultLeaseTTL = 30 * time.Second
	// DefaultRefreshTimeout bounds one request to the token endpoint.
	DefaultRefreshTimeout = 10 * time.Second
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
}

// Option configures a [Manager].
type Option func(*managerOptions)

// managerOptions are the Manager's settings, from its Options.
type managerOptions struct {
	keys   [][]byte // the keyring is made from them
	hc     *http.Client
	now    func() time.Time
	log    *slog.Logger
	intro  string
	api    string
	delta  time.Duration
	lease  time.Duration
	reqTTL time.Duration
}

// WithKeys sets the keys that seal tokens at rest (AES-GCM), each 16, 24
// or 32 bytes from crypto/rand, kept as secret as the client secret and
// shared by every instance. Required. The first key seals; every key
// opens, so a new key is rotated in by putting it first and keeping the
// old one until every connection has been saved again (each refresh
// re-seals). A later WithKeys replaces an earlier one.
func WithKeys(keys ...[]byte) Option {
	return func(o *managerOptions) { o.keys = keys }
}

// WithHTTPClient sets the client for Pleo's token, introspection and API
// endpoints (http.DefaultClient by default).
func WithHTTPClient(c *http.Client) Option {
	return func(o *managerOptions) { o.hc = c }
}

// WithClock sets the clock that decides token expiry and leases (time.Now
// by default). Instances sharing a store must agree on the time.
func WithClock(now func() time.Time) Option {
	return func(o *managerOptions) { o.now = now }
}

// WithLogger sets where the Manager logs refreshes and failures (never a
// token). By default it logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(o *managerOptions) { o.log = l }
}

// WithIntrospectionURL sets Pleo's token introspection endpoint. The
// default follows the config's endpoint: Staging's or Production's.
func WithIntrospectionURL(u string) Option {
	return func(o *managerOptions) { o.intro = u }
}

// WithAPIBaseURL sets the base URL of Pleo's API, for Disconnect. The
// default follows the config's endpoint: Staging's or Production's.
func WithAPIBaseURL(u string) Option {
	return func(o *managerOptions) { o.api = strings.TrimSuffix(u, "/") }
}

// WithExpiryDelta sets how long before expiry a token is refreshed
// ([DefaultExpiryDelta]).
func WithExpiryDelta(d time.Duration) Option {
	return func(o *managerOptions) { o.delta = d }
}

// WithLeaseTTL sets how long a refresh lease lasts ([DefaultLeaseTTL]).
// It must be longer than the refresh timeout: NewManager refuses
// otherwise, since a lease that expires while its holder's request is in
// flight lets a second instance present the same refresh token.
func WithLeaseTTL(d time.Duration) Option {
	return func(o *managerOptions) { o.lease = d }
}

// WithRefreshTimeout bounds one request to the token or introspection
// endpoint ([DefaultRefreshTimeout]).
func WithRefreshTimeout(d time.Duration) Option {
	return func(o *managerOptions) { o.reqTTL = d }
}

// NewManager makes a Manager for the client cfg (from
// [pleooauth.Registration.OAuth2Config]) over store.
func NewManager(cfg *oauth2.Config, store Store, opts ...Option) (*Manager, error) {
	if cfg == nil || store == nil {
		return nil, errors.New("pleooauth: NewManager needs an *oauth2.Config and a Store")
	}
	o := managerOptions{hc: http.DefaultClient, now: time.Now, delta: DefaultExpiryDelta, lease: DefaultLeaseTTL, reqTTL: DefaultRefreshTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	keys, err := newKeyring(o.keys)
	if err != nil {
		return nil, err
	}
	o.keys = nil // the keyring has them; nothing else keeps a copy to print
	switch cfg.Endpoint.TokenURL {
	case pleooauth.StagingEndpoint.TokenURL:
		o.intro, o.api = cmp.Or(o.intro, StagingIntrospectionURL), cmp.Or(o.api, StagingAPIBaseURL)
	case pleooauth.ProductionEndpoint.TokenURL:
		o.intro, o.api = cmp.Or(o.intro, ProductionIntrospectionURL), cmp.Or(o.api, ProductionAPIBaseURL)
	}
	if o.intro == "" || o.api == "" {
		return nil, fmt.Errorf("pleooauth: the config's token endpoint %s is neither Pleo's Staging nor Production one: give WithIntrospectionURL and WithAPIBaseURL", cfg.Endpoint.TokenURL)
	}
	if o.lease <= o.reqTTL {
		return nil, fmt.Errorf("pleooauth: the lease (%s) must be longer than the refresh timeout (%s)", o.lease, o.reqTTL)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	name := make([]byte, 12)
	_, _ = rand.Read(name)
	return &Manager{managerOptions: o, cfg: cfg, store: store, keys: keys, owner: base64.RawURLEncoding.EncodeToString(name)}, nil
}

// Config returns the *oauth2.Config the Manager uses.
func (m *Manager) Config() *oauth2.Config { return m.cfg }

// HTTPClient returns the client the Manager talks to Pleo with.
func (m *Manager) HTTPClient() *http.Client { return m.hc }

// oauthContext carries the Manager's HTTP client to x/oauth2.
func (m *Manager) oauthContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, m.hc)
}

// Complete makes a connection of a finished authorization: it introspects
// the access token to learn the Pleo company (or organisation) the grant
// is for, seals the tokens and stores them under it, and returns the
// connection. The same company connecting again replaces its tokens and
// becomes active again; its CreatedAt stays. account is the partner's
// reference for the customer who connected ([Flow.Finish] returns it).
func (m *Manager) Complete(ctx context.Context, tok *oauth2.Token, account string) (*Connection, error) {
	if tok == nil || tok.AccessToken == "" {
		return nil, errors.New("pleooauth: Complete needs the token from the code exchange")
	}
	info, err := m.introspect(ctx, tok.AccessToken, "access_token")
	if err != nil {
		return nil, err
	}
	if !info.Active || info.Subject == "" {
		return nil, errors.New("pleooauth: Pleo says the new access token is not active, or names no subject")
	}
	now := m.now()
	tok = m.onClock(tok)
	scopes := strings.Fields(info.Scope)
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		scopes = strings.Fields(s)
	}
	rec := &Record{
		Connection: Connection{
			ID: info.Subject, Account: account, Status: StatusActive, Scopes: scopes,
			CreatedAt: now, UpdatedAt: now, TokenExpiry: tok.Expiry,
		},
		Tokens: m.keys.seal(info.Subject, tok),
	}
	stored, err := m.store.Put(ctx, rec)
	if err != nil {
		return nil, fmt.Errorf("pleooauth: storing the connection: %w", err)
	}
	m.remember(stored.ID, tok, stored.Version)
	m.log.InfoContext(ctx, "pleooauth: connected", "connection", stored.ID, "account", account)
	c := stored.Connection
	return &c, nil
}

// Get returns the connection with that ID, or an error matching
// [ErrNoConnection].
func (m *Manager) Get(ctx context.Context, id string) (*Connection, error) {
	rec, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return &rec.Connection, nil
}

// List yields the connections q selects, ordered by ID, reading the store a
// page at a time (q.PageSize() a page). It stops at the first error, which it
// yields.
func (m *Manager) List(ctx context.Context, q Query) iter.Seq2[Connection, error] {
	return func(yield func(Connection, error) bool) {
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
// /v1/installations/me with the connection's access token (Pleo: it
// "will revoke all access and refresh tokens" of the installation), then
// erases the tokens and marks the connection [StatusDisconnected]. A
// connection whose grant is already gone is marked disconnected without
// the call. Disconnecting one company never touches another's.
func (m *Manager) Disconnect(ctx context.Context, id string) error {
	tok, err := m.Token(ctx, id)
	switch {
	case errors.Is(err, ErrDisconnected):
		return nil
	case errors.Is(err, ErrReauthorizationRequired):
		// Nothing to revoke at Pleo; mark it below.
	case err != nil:
		return err
	default:
		if err := m.deleteInstallation(ctx, tok.AccessToken); err != nil {
			return err
		}
	}
	for {
		rec, err := m.acquireWaiting(ctx, id)
		if err != nil {
			return err
		}
		rec.Status, rec.Tokens, rec.RefreshSentAt = StatusDisconnected, nil, time.Time{}
		rec.TokenExpiry, rec.LastError, rec.UpdatedAt = time.Time{}, "", m.now()
		_, err = m.store.Update(ctx, rec, m.owner, true)
		if errors.Is(err, ErrVersionConflict) {
			continue // changed between Acquire and Update: read it again
		}
		if err != nil {
			return fmt.Errorf("pleooauth: marking the connection disconnected: %w", err)
		}
		m.cache.Delete(id)
		m.log.InfoContext(ctx, "pleooauth: disconnected", "connection", id)
		return nil
	}
}

// ReportUnauthorized tells the Manager that Pleo's API answered 401 to the
// access token [Manager.Token] gave for the connection. The Manager asks
// Pleo's introspection endpoint about that token: if it is no longer
// active, the grant was revoked at Pleo (the company uninstalled the app,
// say), and the connection becomes [StatusReauthorizationRequired] (last
// error "revoked"); ReportUnauthorized then returns an error matching
// [ErrReauthorizationRequired]. If the token is still active, the 401 had
// another cause, nothing changes, and it returns nil.
func (m *Manager) ReportUnauthorized(ctx context.Context, id string) error {
	tok, err := m.Token(ctx, id)
	if err != nil {
		return err
	}
	info, err := m.introspect(ctx, tok.AccessToken, "access_token")
	if err != nil {
		return err
	}
	if info.Active {
		return nil
	}
	rec, err := m.acquireWaiting(ctx, id)
	if err != nil {
		return err
	}
	m.cache.Delete(id)
	if err := statusError(rec); err != nil {
		// Disconnected or marked meanwhile: leave it as it is.
		_ = m.store.Release(ctx, id, m.owner)
		return err
	}
	return m.fail(context.WithoutCancel(ctx), rec, "revoked")
}

// deleteInstallation calls DELETE /v1/installations/me. A 401 means the
// token, and so the installation's grant, is already revoked.
func (m *Manager) deleteInstallation(ctx context.Context, accessToken string) error {
	ctx, cancel := context.WithTimeout(ctx, m.reqTTL)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, m.api+"/v1/installations/me", nil)
	if err != nil {
		return fmt.Errorf("pleooauth: disconnect: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := m.hc.Do(req)
	if err != nil {
		return fmt.Errorf("pleooauth: disconnect: calling Pleo's installations API: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusUnauthorized {
		return nil
	}
	return fmt.Errorf("pleooauth: disconnect: Pleo's installations API answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
}

// introspection is what Pleo's introspection endpoint answers.
type introspection struct {
	Active  bool   `json:"active"`
	Scope   string `json:"scope"`
	Subject string `json:"urn:pleo:params:oauth:subject_urn"`
}

// introspect asks Pleo about a token (RFC 7662), authenticating with HTTP
// Basic as Pleo requires ("Only the client that obtained the token may
// introspect it").
func (m *Manager) introspect(ctx context.Context, token, hint string) (*introspection, error) {
	ctx, cancel := context.WithTimeout(ctx, m.reqTTL)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.intro, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("pleooauth: introspection: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(m.cfg.ClientID), url.QueryEscape(m.cfg.ClientSecret))
	resp, err := m.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("pleooauth: introspection: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("pleooauth: introspection answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	var info introspection
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&info); err != nil {
		return nil, errors.New("pleooauth: introspection answered something that is not JSON")
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
// every request carries a valid access token from [Manager.Token]. It is
// not oauth2.NewClient, which puts x/oauth2's own ReuseTokenSource in
// front: that one decides expiry by time.Now and its own margin, so it
// would hand out a token the Manager (and its clock) already refreshed or
// found revoked.
func (m *Manager) Client(ctx context.Context, id string) *http.Client {
	base := m.hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{
		Transport: &oauth2.Transport{Source: m.TokenSource(ctx, id), Base: base},
		Timeout:   m.hc.Timeout,
	}
}

// remember puts a connection's token in the in-process cache.
func (m *Manager) remember(id string, tok *oauth2.Token, version int64) {
	e := m.entry(id)
	e.mu.Lock()
	defer e.mu.Unlock()
	if version >= e.version {
		e.tok, e.version = tok, version
	}
}

func (m *Manager) entry(id string) *entry {
	if e, ok := m.cache.Load(id); ok {
		return e.(*entry)
	}
	e, _ := m.cache.LoadOrStore(id, &entry{})
	return e.(*entry)
}
