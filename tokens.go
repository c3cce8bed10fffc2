package pleooauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// ErrReauthorizationRequired is returned by [TokenSource.Token] when Pleo
// refuses the refresh token (invalid_grant, or Pleo's
// invalid_refresh_token): it expired, was revoked, or an old one was
// reused and Pleo invalidated them all. Pleo: "Always treat refresh token
// failures as terminal." Send the user through the authorization flow
// again; do not retry.
var ErrReauthorizationRequired = errors.New("pleooauth: reauthorization required")

// TokenStore keeps one authorization's tokens. Pleo rotates refresh tokens
// on every refresh and invalidates all of them when an old one is reused,
// so the store must hold the newest token before it is used.
type TokenStore interface {
	// Load returns the stored token, or an error (ErrNoToken when there is
	// none).
	Load(ctx context.Context) (*oauth2.Token, error)
	// Save stores tok, replacing the one before.
	Save(ctx context.Context, tok *oauth2.Token) error
}

// ErrNoToken is returned by a [TokenStore]'s Load when it holds no token.
var ErrNoToken = errors.New("pleooauth: no token stored")

// MemoryStore is a [TokenStore] in memory, safe for concurrent use. The
// zero value is empty and ready.
type MemoryStore struct {
	mu  sync.Mutex
	tok *oauth2.Token
}

// Load returns a copy of the stored token.
func (m *MemoryStore) Load(context.Context) (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tok == nil {
		return nil, ErrNoToken
	}
	tok := *m.tok
	return &tok, nil
}

// Save stores a copy of tok.
func (m *MemoryStore) Save(_ context.Context, tok *oauth2.Token) error {
	if tok == nil {
		return errors.New("pleooauth: MemoryStore.Save: nil token")
	}
	cp := *tok
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tok = &cp
	return nil
}

// FileStore is a [TokenStore] in a JSON file readable by its owner only
// (0600). Save writes a new file beside it and renames it into place, so a
// crash never leaves half a token behind. It is safe for concurrent use
// within one process.
type FileStore struct {
	Path string

	mu sync.Mutex
}

// maxTokenFileBytes bounds the token file FileStore reads: a token file is
// a few kilobytes at most.
const maxTokenFileBytes = 1 << 20

// storedToken is the file's form: the fields of oauth2.Token that matter.
type storedToken struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Scope        string    `json:"scope,omitempty"`
}

// Load reads the token file.
func (s *FileStore) Load(context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := readFileAtMost(s.Path, maxTokenFileBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoToken
	}
	if err != nil {
		return nil, fmt.Errorf("pleooauth: reading token file: %w", err)
	}
	var st storedToken
	if err := json.Unmarshal(data, &st); err != nil {
		// The file's content is tokens: say where, not what.
		return nil, fmt.Errorf("pleooauth: token file %s is not valid JSON", s.Path)
	}
	tok := &oauth2.Token{AccessToken: st.AccessToken, TokenType: st.TokenType, RefreshToken: st.RefreshToken, Expiry: st.Expiry}
	if st.Scope != "" {
		tok = tok.WithExtra(map[string]any{"scope": st.Scope})
	}
	return tok, nil
}

// Save writes tok to the file atomically, with mode 0600.
func (s *FileStore) Save(_ context.Context, tok *oauth2.Token) error {
	if tok == nil {
		return errors.New("pleooauth: FileStore.Save: nil token")
	}
	st := storedToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	if scope, ok := tok.Extra("scope").(string); ok {
		st.Scope = scope
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("pleooauth: encoding token: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := filepath.Dir(s.Path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(s.Path)+".*")
	if err != nil {
		return fmt.Errorf("pleooauth: saving token: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	// CreateTemp makes the file 0600 already; say so for the reader.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("pleooauth: saving token: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("pleooauth: saving token: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("pleooauth: saving token: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pleooauth: saving token: %w", err)
	}
	if err := os.Rename(tmp, s.Path); err != nil {
		return fmt.Errorf("pleooauth: saving token: %w", err)
	}
	// The rename is durable only once the directory is synced: a crash
	// right after it could otherwise bring the old file back, and with it
	// a refresh token Pleo has already rotated out.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("pleooauth: saving token: %w", err)
	}
	return nil
}

// syncDir flushes a directory's entries to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// DefaultExpiryDelta is how long before its expiry a token is refreshed.
const DefaultExpiryDelta = 30 * time.Second

// TokenSource hands out a valid access token for one authorization,
// refreshing it when it is about to expire. Unlike the TokenSource of
// x/oauth2, it refreshes at most once at a time however many goroutines ask
// (Pleo: "Only one refresh request is made at a time"), saves every new
// token to its [TokenStore] before returning it (the rotated refresh token
// is not lost), and turns a refused refresh token into
// [ErrReauthorizationRequired] with no retry. It implements
// oauth2.TokenSource, so oauth2.NewClient can use it.
type TokenSource struct {
	ctx   context.Context
	cfg   *oauth2.Config
	store TokenStore
	delta time.Duration
	now   func() time.Time

	mu      sync.Mutex
	tok     *oauth2.Token // the newest token, once loaded
	unsaved bool          // tok was refreshed but could not be saved yet
	dead    error         // set once reauthorization is required
}

// TokenSourceOption adjusts a [TokenSource].
type TokenSourceOption func(*TokenSource)

// WithExpiryDelta sets how early a token is refreshed
// ([DefaultExpiryDelta]).
func WithExpiryDelta(d time.Duration) TokenSourceOption {
	return func(ts *TokenSource) { ts.delta = d }
}

// WithTokenClock sets the clock that decides expiry (time.Now by default).
func WithTokenClock(now func() time.Time) TokenSourceOption {
	return func(ts *TokenSource) { ts.now = now }
}

// NewTokenSource returns a TokenSource for the authorization whose tokens
// store holds. ctx carries the HTTP client for the token endpoint, as in
// x/oauth2 ([oauth2.HTTPClient]), and is used for every refresh.
func NewTokenSource(ctx context.Context, cfg *oauth2.Config, store TokenStore, opts ...TokenSourceOption) *TokenSource {
	ts := &TokenSource{ctx: ctx, cfg: cfg, store: store, delta: DefaultExpiryDelta, now: time.Now}
	for _, opt := range opts {
		opt(ts)
	}
	return ts
}

// Token returns a valid access token, refreshing and saving a new one when
// the current one expires within the expiry delta.
func (ts *TokenSource) Token() (*oauth2.Token, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.dead != nil {
		return nil, ts.dead
	}
	if ts.tok == nil {
		tok, err := ts.store.Load(ts.ctx)
		if err != nil {
			return nil, err
		}
		ts.tok = tok
	}
	if ts.unsaved {
		if err := ts.store.Save(ts.ctx, ts.tok); err != nil {
			return nil, fmt.Errorf("pleooauth: the refreshed token could not be saved: %w", err)
		}
		ts.unsaved = false
	}
	if ts.tok.AccessToken != "" && (ts.tok.Expiry.IsZero() || ts.now().Add(ts.delta).Before(ts.tok.Expiry)) {
		return ts.tok, nil
	}
	if ts.tok.RefreshToken == "" {
		ts.dead = fmt.Errorf("%w: the access token expired and there is no refresh token", ErrReauthorizationRequired)
		return nil, ts.dead
	}
	// An expired-looking token makes x/oauth2 refresh once, and only once.
	tok, err := ts.cfg.TokenSource(ts.ctx, &oauth2.Token{RefreshToken: ts.tok.RefreshToken}).Token()
	err = scrubTokenError(err)
	if err != nil {
		var rerr *oauth2.RetrieveError
		if errors.As(err, &rerr) && (rerr.ErrorCode == "invalid_grant" || rerr.ErrorCode == "invalid_refresh_token") {
			ts.dead = fmt.Errorf("%w: Pleo refused the refresh token (%s)", ErrReauthorizationRequired, rerr.ErrorCode)
			return nil, ts.dead
		}
		return nil, err
	}
	if tok.ExpiresIn > 0 {
		// x/oauth2 dates the expiry by time.Now; date it by this source's
		// clock, which decides when to refresh.
		tok.Expiry = ts.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	ts.tok = tok
	if err := ts.store.Save(ts.ctx, tok); err != nil {
		// Pleo has rotated the refresh token: the one in the store no longer
		// works. Keep the new one in memory and try to save it again on the
		// next call, but hand out no token that is not saved.
		ts.unsaved = true
		return nil, fmt.Errorf("pleooauth: the refreshed token could not be saved: %w", err)
	}
	return tok, nil
}
