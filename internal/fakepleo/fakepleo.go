// Package fakepleo starts the fake Pleo the way this module's tests of the
// runtime side use it: a pleooauthtest server for one registered client on
// a clock the test moves, the config that client builds for it, and the
// Manager a backend would run against it.
package fakepleo

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// Pleo is a running fake Pleo with what a test needs around it.
type Pleo struct {
	*pleooauthtest.Server
	Clock  *pleooauthtest.Clock // the server's clock, and the Managers'
	Config *oauth2.Config       // the registered client's config, pointed at the server
	Key    []byte               // 32 random bytes, for sealing flows and tokens
}

// Start starts a fake Pleo for reg with the client's credentials and the
// options given, and stops it when the test ends.
func Start(t testing.TB, reg *pleooauth.Registration, clientID, clientSecret string, opts ...pleooauthtest.Option) *Pleo {
	t.Helper()
	creds, err := pleooauth.NewCredentials(clientID, clientSecret)
	require.NoError(t, err)
	clock := pleooauthtest.NewClock(time.Now())
	srv := pleooauthtest.NewServer(reg, creds, append([]pleooauthtest.Option{pleooauthtest.WithClock(clock.Now)}, opts...)...)
	t.Cleanup(srv.Close)
	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(srv.Endpoints()))
	require.NoError(t, err)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &Pleo{Server: srv, Clock: clock, Config: cfg, Key: key}
}

// Manager makes a Manager over store that talks to the fake Pleo, on its
// clock, sealing with Key; opts come after those.
// A memory store without a clock of its own is put on the fake's clock.
func (p *Pleo) Manager(t testing.TB, store connect.Store, opts ...connect.Option) *connect.Manager {
	t.Helper()
	if ms, ok := store.(*connect.MemoryStore); ok && ms.Now == nil {
		ms.Now = p.Clock.Now
	}
	m, err := connect.NewManager(p.Config, store, append([]connect.Option{
		connect.WithKeys(p.Key),
		connect.WithHTTPClient(p.Client()),
		connect.WithEndpoints(p.Endpoints()),
		connect.WithClock(p.Clock.Now),
	}, opts...)...)
	require.NoError(t, err)
	return m
}
