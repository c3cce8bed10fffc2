package pleooauth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// login runs a whole flow and returns the first token.
func (f *flowFixture) login(t *testing.T) *oauth2.Token {
	t.Helper()
	fl := f.flow(t)
	authURL, sealed := fl.Start()
	tok, err := fl.Finish(f.ctx, f.callback(t, authURL), sealed)
	require.NoError(t, err)
	return tok
}

func (f *flowFixture) refreshRequests() int {
	n := 0
	for _, r := range f.srv.Requests() {
		if r.Path == pleooauthtest.TokenPath && r.Params.Get("grant_type") == "refresh_token" {
			n++
		}
	}
	return n
}

// expiring returns a store holding tok with its expiry moved to now, so
// the next Token call refreshes.
func expiring(t *testing.T, f *flowFixture, tok *oauth2.Token) *pleooauth.MemoryStore {
	t.Helper()
	tok.Expiry = f.clock.Now()
	store := &pleooauth.MemoryStore{}
	require.NoError(t, store.Save(t.Context(), tok))
	return store
}

func TestTokenSourceRefreshesOnceForManyGoroutines(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	first := f.login(t)
	store := expiring(t, f, first)
	ts := pleooauth.NewTokenSource(f.ctx, f.cfg, store, pleooauth.WithTokenClock(f.clock.Now))

	var wg sync.WaitGroup
	got := make([]*oauth2.Token, 50)
	errs := make([]error, 50)
	for i := range 50 {
		wg.Go(func() { got[i], errs[i] = ts.Token() })
	}
	wg.Wait()
	for i := range 50 {
		require.NoError(t, errs[i])
		assert.Equal(t, got[0].AccessToken, got[i].AccessToken)
	}
	assert.Equal(t, 1, f.refreshRequests(), "exactly one refresh")
	assert.NotEqual(t, first.RefreshToken, got[0].RefreshToken, "rotated")
	saved, err := store.Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, got[0].RefreshToken, saved.RefreshToken, "the rotated refresh token is saved")
}

func TestTokenSourceUsesAValidToken(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	tok := f.login(t)
	tok.Expiry = f.clock.Now().Add(time.Hour)
	store := &pleooauth.MemoryStore{}
	require.NoError(t, store.Save(t.Context(), tok))
	ts := pleooauth.NewTokenSource(f.ctx, f.cfg, store, pleooauth.WithTokenClock(f.clock.Now))
	got, err := ts.Token()
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, got.AccessToken)
	assert.Equal(t, 0, f.refreshRequests())

	// Within the expiry delta it refreshes.
	f.clock.Advance(time.Hour - pleooauth.DefaultExpiryDelta + time.Second)
	got, err = ts.Token()
	require.NoError(t, err)
	assert.NotEqual(t, tok.AccessToken, got.AccessToken)
	assert.Equal(t, 1, f.refreshRequests())
}

// failingStore fails to save while failing is set.
type failingStore struct {
	pleooauth.MemoryStore
	mu      sync.Mutex
	failing bool
}

func (s *failingStore) Save(ctx context.Context, tok *oauth2.Token) error {
	s.mu.Lock()
	failing := s.failing
	s.mu.Unlock()
	if failing {
		return errors.New("disk full")
	}
	return s.MemoryStore.Save(ctx, tok)
}

func TestTokenSourceStoreFailure(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, redirect)
	first := f.login(t)
	first.Expiry = f.clock.Now()
	store := &failingStore{}
	require.NoError(t, store.MemoryStore.Save(t.Context(), first))
	store.failing = true
	ts := pleooauth.NewTokenSource(f.ctx, f.cfg, store, pleooauth.WithTokenClock(f.clock.Now))

	tok, err := ts.Token()
	assert.Nil(t, tok, "a token that was not saved is not handed out")
	require.ErrorContains(t, err, "could not be saved: disk full")
	tok, err = ts.Token()
	assert.Nil(t, tok)
	require.Error(t, err)
	assert.Equal(t, 1, f.refreshRequests(), "no second refresh: the rotated token is kept to save again")

	store.mu.Lock()
	store.failing = false
	store.mu.Unlock()
	tok, err = ts.Token()
	require.NoError(t, err)
	saved, err := store.Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, tok.RefreshToken, saved.RefreshToken)
	assert.NotEqual(t, first.RefreshToken, saved.RefreshToken)
}

func TestTokenSourceReusedRefreshToken(t *testing.T) {
	t.Parallel()
	for _, opts := range [][]pleooauthtest.Option{nil, {pleooauthtest.WithInvalidRefreshTokenError()}} {
		f := newFlowFixture(t, redirect, opts...)
		first := f.login(t)
		// Two copies of the same stored token: one source rotates it, the
		// other then uses the old refresh token.
		a := pleooauth.NewTokenSource(f.ctx, f.cfg, expiring(t, f, first), pleooauth.WithTokenClock(f.clock.Now))
		stale := pleooauth.NewTokenSource(f.ctx, f.cfg, expiring(t, f, first), pleooauth.WithTokenClock(f.clock.Now))
		_, err := a.Token()
		require.NoError(t, err)

		_, err = stale.Token()
		require.ErrorIs(t, err, pleooauth.ErrReauthorizationRequired)
		before := f.refreshRequests()
		_, err = stale.Token()
		require.ErrorIs(t, err, pleooauth.ErrReauthorizationRequired)
		assert.Equal(t, before, f.refreshRequests(), "no retry")
		assert.NotContains(t, err.Error(), first.RefreshToken)
	}
}

func TestTokenSourceWithoutRefreshToken(t *testing.T) {
	t.Parallel()
	store := &pleooauth.MemoryStore{}
	require.NoError(t, store.Save(t.Context(), &oauth2.Token{AccessToken: "a", Expiry: time.Now().Add(-time.Minute)}))
	ts := pleooauth.NewTokenSource(t.Context(), &oauth2.Config{}, store)
	_, err := ts.Token()
	assert.ErrorIs(t, err, pleooauth.ErrReauthorizationRequired)

	_, err = pleooauth.NewTokenSource(t.Context(), &oauth2.Config{}, &pleooauth.MemoryStore{}).Token()
	assert.ErrorIs(t, err, pleooauth.ErrNoToken)
}

func TestFileStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := &pleooauth.FileStore{Path: filepath.Join(dir, "tokens.json")}
	_, err := store.Load(t.Context())
	require.ErrorIs(t, err, pleooauth.ErrNoToken)

	expiry := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tok := (&oauth2.Token{AccessToken: "access-1", TokenType: "Bearer", RefreshToken: "refresh-1", Expiry: expiry}).WithExtra(map[string]any{"scope": "users:read"})
	require.NoError(t, store.Save(t.Context(), tok))
	fi, err := os.Stat(store.Path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	got, err := store.Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "access-1", got.AccessToken)
	assert.Equal(t, "refresh-1", got.RefreshToken)
	assert.True(t, expiry.Equal(got.Expiry))
	assert.Equal(t, "users:read", got.Extra("scope"))

	// Replacing leaves no temporary files behind.
	require.NoError(t, store.Save(t.Context(), &oauth2.Token{AccessToken: "access-2", RefreshToken: "refresh-2"}))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
	got, err = store.Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "refresh-2", got.RefreshToken)

	require.NoError(t, os.WriteFile(store.Path, []byte("refresh-3 garbage"), 0o600))
	_, err = store.Load(t.Context())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "refresh-3")

	// A file far larger than any token file is refused, not read whole.
	require.NoError(t, os.WriteFile(store.Path, append([]byte(`{"access_token":"`), make([]byte, 2<<20)...), 0o600))
	_, err = store.Load(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "larger than 1048576 bytes")

	missingDir := &pleooauth.FileStore{Path: filepath.Join(dir, "nope", "tokens.json")}
	assert.Error(t, missingDir.Save(t.Context(), tok))
}
