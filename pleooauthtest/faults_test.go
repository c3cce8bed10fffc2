package pleooauthtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/partnerkit/pleooauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// holdRefreshes returns an option that holds every refresh while hold is
// true.
func holdRefreshes(hold *atomic.Bool) Option {
	return WithTokenFaults(func(r TokenRequest) Fault {
		return Fault{ProcessLate: r.GrantType == "refresh_token" && hold.Load()}
	})
}

// setupHolding is a fixture whose refreshes are held until the returned
// hold is set to false.
func setupHolding(t *testing.T) (*fixture, *atomic.Bool) {
	t.Helper()
	hold := new(atomic.Bool)
	hold.Store(true)
	return setup(t, nil, holdRefreshes(hold)), hold
}

// TestProcessLateRefresh: a held refresh leaves the client with an error
// and rotates nothing until ProcessLate; then it rotates as if processed
// on arrival, so presenting the old refresh token again is a reuse.
func TestProcessLateRefresh(t *testing.T) {
	t.Parallel()
	f, hold := setupHolding(t)
	tok := f.login(t)

	_, err := f.refresh(tok.RefreshToken)
	require.Error(t, err, "the connection is closed without an answer")
	var rerr *oauth2.RetrieveError
	assert.NotErrorAs(t, err, &rerr, "no OAuth answer at all")
	_, info := f.introspect(t, clientID, clientSecret, tok.RefreshToken)
	assert.Equal(t, true, info["active"], "not processed yet")
	refreshes, reuses := f.srv.RefreshStats()
	assert.Equal(t, [2]int{0, 0}, [2]int{refreshes, reuses})
	before := len(f.srv.Requests())

	// Printing the server while the request is held shows none of it.
	basic := base64.StdEncoding.EncodeToString([]byte(clientID + ":" + clientSecret))
	for _, dump := range []string{fmt.Sprintf("%+v", f.srv), fmt.Sprintf("%#v", f.srv)} {
		for _, secret := range []string{clientSecret, basic, tok.RefreshToken} {
			assert.NotContains(t, dump, secret)
		}
	}

	assert.Equal(t, 1, f.srv.ProcessLate())
	assert.Equal(t, 0, f.srv.ProcessLate(), "each held request is processed once")
	_, info = f.introspect(t, clientID, clientSecret, tok.RefreshToken)
	assert.Equal(t, false, info["active"], "rotated")
	refreshes, reuses = f.srv.RefreshStats()
	assert.Equal(t, [2]int{1, 0}, [2]int{refreshes, reuses})
	assert.Equal(t, http.StatusUnauthorized, f.api(t, tok.AccessToken), "the old access token went with the rotation")
	g, current, ok := f.srv.Lookup(tok.RefreshToken)
	require.True(t, ok)
	assert.False(t, current)
	assert.True(t, g.Live)

	// Recorded when processed, with its answer, and nothing secret.
	reqs := f.srv.Requests()
	require.Len(t, reqs, before+3, "the held refresh, then the introspection and the API call after it")
	late := reqs[before]
	assert.Equal(t, http.MethodPost, late.Method)
	assert.Equal(t, tokenPath, late.Path)
	assert.Equal(t, clientID, late.ClientID)
	assert.Equal(t, http.StatusOK, late.Status)
	assert.Empty(t, late.Error)
	assert.Equal(t, "refresh_token", late.Params.Get("grant_type"))
	assert.Equal(t, pleooauth.Redacted, late.Params.Get("refresh_token"))
	all, err := json.Marshal(reqs)
	require.NoError(t, err)
	for _, secret := range []string{clientSecret, basic, tok.RefreshToken, tok.AccessToken} {
		assert.NotContains(t, string(all), secret)
	}

	// The client, not knowing, presents the old refresh token again.
	hold.Store(false)
	_, err = f.refresh(tok.RefreshToken)
	assert.Equal(t, "invalid_grant", errorCode(t, err))
	refreshes, reuses = f.srv.RefreshStats()
	assert.Equal(t, [2]int{1, 1}, [2]int{refreshes, reuses})
	grants := f.srv.Grants()
	require.Len(t, grants, 1)
	assert.False(t, grants[0].Live)
	assert.Equal(t, "refresh_token_reused", grants[0].Revoked)
}

// TestProcessLateAfterRetry: the client retried and got through before the
// held request was processed; processing it later is then a reuse, and is
// recorded with the error it was answered (to nobody).
func TestProcessLateAfterRetry(t *testing.T) {
	t.Parallel()
	f, hold := setupHolding(t)
	tok := f.login(t)
	_, err := f.refresh(tok.RefreshToken)
	require.Error(t, err)

	hold.Store(false)
	tok2, err := f.refresh(tok.RefreshToken)
	require.NoError(t, err, "not processed yet, so the retry succeeds")
	assert.Equal(t, http.StatusOK, f.api(t, tok2.AccessToken))

	assert.Equal(t, 1, f.srv.ProcessLate())
	refreshes, reuses := f.srv.RefreshStats()
	assert.Equal(t, [2]int{1, 1}, [2]int{refreshes, reuses})
	assert.Equal(t, http.StatusUnauthorized, f.api(t, tok2.AccessToken), "the late reuse revoked the grant")
	reqs := f.srv.Requests()
	last := reqs[len(reqs)-2] // then the API call
	assert.Equal(t, tokenPath, last.Path)
	assert.Equal(t, http.StatusBadRequest, last.Status)
	assert.Equal(t, "invalid_grant", last.Error)
	assert.Equal(t, clientID, last.ClientID)
}

// TestProcessLateOrder: held requests are processed oldest first, each
// with the client it authenticated as.
func TestProcessLateOrder(t *testing.T) {
	t.Parallel()
	var hold atomic.Bool
	f := setup(t, nil, holdRefreshes(&hold))
	tok := f.login(t)
	code, pkce := f.authorize(t, f.otherCfg)
	otherTok, err := f.otherCfg.Exchange(f.ctx, code, pkce.ExchangeOption())
	require.NoError(t, err)

	hold.Store(true)
	_, err = f.refresh(tok.RefreshToken)
	require.Error(t, err)
	_, err = f.otherCfg.TokenSource(f.ctx, &oauth2.Token{RefreshToken: otherTok.RefreshToken}).Token()
	require.Error(t, err)
	before := len(f.srv.Requests())

	assert.Equal(t, 2, f.srv.ProcessLate())
	reqs := f.srv.Requests()[before:]
	require.Len(t, reqs, 2)
	assert.Equal(t, clientID, reqs[0].ClientID)
	assert.Equal(t, otherID, reqs[1].ClientID)
	for _, r := range reqs {
		assert.Equal(t, http.StatusOK, r.Status)
	}
	for _, rt := range []string{tok.RefreshToken, otherTok.RefreshToken} {
		_, current, ok := f.srv.Lookup(rt)
		require.True(t, ok)
		assert.False(t, current, "rotated")
	}
}

// TestProcessLateConcurrently: requests are held and processed from many
// goroutines at once; with -race it checks the locking.
func TestProcessLateConcurrently(t *testing.T) {
	t.Parallel()
	f, _ := setupHolding(t)
	const n = 10
	var processed atomic.Int64
	var wg sync.WaitGroup
	tokens := make(chan string, n)
	for range n {
		wg.Go(func() {
			pkce := pleooauth.NewPKCE()
			callback, err := f.srv.Authorize(f.cfg.AuthCodeURL("s", pkce.AuthCodeOption()))
			if !assert.NoError(t, err) {
				return
			}
			tok, err := f.cfg.Exchange(f.ctx, callback.Query().Get("code"), pkce.ExchangeOption())
			if !assert.NoError(t, err) {
				return
			}
			tokens <- tok.RefreshToken
			_, err = f.refresh(tok.RefreshToken)
			assert.Error(t, err)
			processed.Add(int64(f.srv.ProcessLate()))
		})
	}
	wg.Wait()
	close(tokens)
	processed.Add(int64(f.srv.ProcessLate()))
	assert.Equal(t, int64(n), processed.Load())
	refreshes, reuses := f.srv.RefreshStats()
	assert.Equal(t, [2]int{n, 0}, [2]int{refreshes, reuses})
	for rt := range tokens {
		_, current, ok := f.srv.Lookup(rt)
		assert.True(t, ok)
		assert.False(t, current)
	}
}

// TestProcessLateYieldsToStatus: a fault with a 5xx Status is answered at
// once, and nothing is held.
func TestProcessLateYieldsToStatus(t *testing.T) {
	t.Parallel()
	f := setup(t, nil, WithTokenFaults(func(r TokenRequest) Fault {
		if r.GrantType != "refresh_token" {
			return Fault{}
		}
		return Fault{Status: http.StatusServiceUnavailable, ProcessLate: true}
	}))
	tok := f.login(t)
	_, err := f.refresh(tok.RefreshToken)
	var rerr *oauth2.RetrieveError
	require.ErrorAs(t, err, &rerr)
	assert.Equal(t, http.StatusServiceUnavailable, rerr.Response.StatusCode)
	assert.Equal(t, 0, f.srv.ProcessLate())
	_, current, ok := f.srv.Lookup(tok.RefreshToken)
	require.True(t, ok)
	assert.True(t, current)
}

// TestFaultsLeaveTheBodyToTheEndpoint: with faults configured but none
// applied, requests are parsed and checked as without.
func TestFaultsLeaveTheBodyToTheEndpoint(t *testing.T) {
	t.Parallel()
	var decided []TokenRequest
	var mu sync.Mutex
	f := setup(t, nil, WithTokenFaults(func(r TokenRequest) Fault {
		mu.Lock()
		defer mu.Unlock()
		decided = append(decided, r)
		return Fault{}
	}))
	tok := f.login(t)
	_, err := f.refresh(tok.RefreshToken)
	require.NoError(t, err)

	assert.Equal(t, http.StatusBadRequest, f.postJSONToken(t))

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []TokenRequest{
		{GrantType: "authorization_code", ClientID: clientID},
		{GrantType: "refresh_token", ClientID: clientID},
		{GrantType: "", ClientID: clientID},
	}, decided)
}
