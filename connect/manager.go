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
	"time"

	"github.com/partnerkit/pleooauth"
	"golang.org/x/oauth2"
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
