package connect

import (
	"context"
	"fmt"
	"iter"
	"net/http"
)

// AccountConnections is one of the partner's accounts' view of the
// connections: it reaches only the connections that account made, so a
// handler serving a customer cannot show, call or disconnect another
// customer's company whatever ID a request names. The example backend
// uses it. Make one per request with [Manager.ForAccount]: it checks the
// account when it is called, so do not keep what it returns (a Client,
// say) beyond the request.
type AccountConnections struct {
	m       *Manager
	account string
}

// ForAccount returns the view of account's connections. An empty account
// reaches none.
func (m *Manager) ForAccount(account string) *AccountConnections {
	return &AccountConnections{m: m, account: account}
}

// Get returns the account's connection with that ID; a connection of
// another account, like a missing one, is an error matching
// [ErrNoConnection].
func (a *AccountConnections) Get(ctx context.Context, id string) (*Connection, error) {
	c, err := a.m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.account == "" || c.Account != a.account {
		return nil, fmt.Errorf("%w: %s", ErrNoConnection, id)
	}
	return c, nil
}

// List yields the account's connections that q selects (q's Account and
// AllAccounts are ignored), as [Manager.List] does.
func (a *AccountConnections) List(ctx context.Context, q Query) iter.Seq2[Connection, error] {
	q.Account, q.AllAccounts = a.account, false
	return a.m.List(ctx, q)
}

// Client returns [Manager.Client] for the account's connection with that
// ID, or an error matching [ErrNoConnection] for another account's. The
// account is checked now, not on each request the client makes: use it
// for the request at hand, since the company may be disconnected and
// connected again by another account later.
func (a *AccountConnections) Client(ctx context.Context, id string) (*http.Client, error) {
	if _, err := a.Get(ctx, id); err != nil {
		return nil, err
	}
	return a.m.Client(ctx, id), nil
}

// Disconnect is [Manager.Disconnect] for the account's connection with
// that ID, or an error matching [ErrNoConnection] for another account's.
func (a *AccountConnections) Disconnect(ctx context.Context, id string) error {
	if _, err := a.Get(ctx, id); err != nil {
		return err
	}
	return a.m.Disconnect(ctx, id)
}
