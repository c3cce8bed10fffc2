package connect

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// Last-error reasons a connection can show besides Pleo's error codes.
const (
	reasonOutcomeUnknown = "refresh_outcome_unknown"
	reasonUnavailable    = "token_endpoint_unavailable"
)

// Token returns a valid access token for the connection, refreshing it
// when it expires within the expiry delta. The token comes from this
// process's cache while it is valid; a token about to expire is read again
// from the store, where another instance may have refreshed it already. A
// connection another instance disconnects is seen here when the cached
// token is next read from the store; meanwhile Pleo's API answers 401 to
// it, and [Manager.ReportUnauthorized] clears it at once.
//
// Refreshing is coordinated through the store, so that at most one
// instance refreshes a connection at a time and none presents a refresh
// token another has rotated (Pleo revokes the whole grant when one is
// reused):
//
//   - The instance takes the connection's lease (a row with an expiry, not a
//     database lock held across the HTTP call), reads the tokens again under
//     it, and uses them if another instance has refreshed meanwhile.
//   - It records that a refresh is being sent, sends it with a time limit
//     shorter than the lease, and saves the new tokens fenced by the record's
//     version and the lease, before returning the access token.
//   - Instances that find the lease taken wait, with the caller's context and
//     at most until the lease expires, and take the other's tokens when they
//     land.
//
// When Pleo refuses the refresh token (invalid_grant, invalid_refresh_token),
// the connection becomes [StatusReauthorizationRequired] and Token returns
// [ErrReauthorizationRequired]: terminal, never retried. A refresh that
// never reached Pleo (the connection was refused) is simply retried on a
// later call.
//
// A refresh whose outcome is unknown (the request was sent and no usable
// answer came: a time-out, a dropped connection, a 5xx, or an instance that
// died holding the lease) is never retried with the same refresh token:
// Pleo may have rotated it, and presenting it again would revoke the grant.
// Instead the next Token call, once the original request can no longer be
// in flight, asks Pleo's introspection endpoint whether that refresh token
// is still active. If it is, Pleo never used it and the refresh goes ahead;
// if it is not, Pleo rotated it and its answer is lost, so the connection
// becomes [StatusReauthorizationRequired] (last error
// refresh_outcome_unknown): the company must connect again. Until
// introspection answers, Token returns an error and hands out nothing. A
// public client, which cannot introspect, goes straight to
// reauthorization required.
func (m *Manager) Token(ctx context.Context, id string) (*oauth2.Token, error) {
	e := m.entry(id)
	e.mu.Lock()
	defer e.mu.Unlock()
	if m.valid(e.tok) {
		return e.tok, nil
	}
	for {
		rec, err := m.store.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := statusError(rec); err != nil {
			return nil, err
		}
		tok, err := m.keys.open(id, rec.Tokens)
		if err != nil {
			return nil, err
		}
		if m.valid(tok) && rec.RefreshSentAt.IsZero() {
			e.tok, e.version = tok, rec.Version
			return tok, nil
		}
		now := m.now()
		held, ok, err := m.store.Acquire(ctx, id, m.owner, now, now.Add(m.lease))
		if err != nil {
			return nil, fmt.Errorf("pleooauth: taking the refresh lease: %w", err)
		}
		if !ok {
			if err := m.waitForLease(ctx, held); err != nil {
				return nil, err
			}
			continue
		}
		if held.Version != rec.Version {
			tok = nil // changed since the read: open it again
		}
		tok, version, err := m.refreshHeld(ctx, held, tok)
		if errors.Is(err, ErrVersionConflict) {
			continue // the record changed under us (a new grant): read it again
		}
		if err != nil {
			return nil, err
		}
		e.tok, e.version = tok, version
		return tok, nil
	}
}

// onClock returns tok with its expiry dated by the Manager's clock, which
// decides when to refresh: x/oauth2 dates it by time.Now. A token without
// expires_in is returned as it is.
func (m *Manager) onClock(tok *oauth2.Token) *oauth2.Token {
	if tok.ExpiresIn <= 0 {
		return tok
	}
	cp := *tok
	cp.Expiry = m.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	return &cp
}

// valid reports whether tok can be handed out: not expiring within delta.
func (m *Manager) valid(tok *oauth2.Token) bool {
	return tok != nil && tok.AccessToken != "" && (tok.Expiry.IsZero() || m.now().Add(m.delta).Before(tok.Expiry))
}

func statusError(rec *Record) error {
	switch rec.Status {
	case StatusActive:
		return nil
	case StatusDisconnected:
		return fmt.Errorf("%w: %s", ErrDisconnected, rec.ID)
	case StatusReauthorizationRequired:
		if rec.LastError != "" {
			return fmt.Errorf("%w: %s (%s)", ErrReauthorizationRequired, rec.ID, rec.LastError)
		}
		return fmt.Errorf("%w: %s", ErrReauthorizationRequired, rec.ID)
	}
	return fmt.Errorf("pleooauth: connection %s has an unknown status %q", rec.ID, rec.Status)
}

// waitForLease waits while another instance holds the lease of held: until
// the record's version changes (the other saved its tokens), the lease is
// released or expires, or ctx ends.
func (m *Manager) waitForLease(ctx context.Context, held *Record) error {
	pause := 5 * time.Millisecond
	for {
		if !m.now().Before(held.LeaseUntil) {
			return nil
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("pleooauth: waiting for another instance's refresh: %w", ctx.Err())
		case <-t.C:
		}
		pause = min(pause*2, 100*time.Millisecond)
		rec, err := m.store.Get(ctx, held.ID)
		if err != nil {
			return err
		}
		if rec.Version != held.Version || rec.LeaseOwner != held.LeaseOwner || !rec.LeaseUntil.Equal(held.LeaseUntil) {
			return nil
		}
	}
}

// acquireWaiting takes the connection's lease, waiting for another holder.
func (m *Manager) acquireWaiting(ctx context.Context, id string) (*Record, error) {
	for {
		now := m.now()
		rec, ok, err := m.store.Acquire(ctx, id, m.owner, now, now.Add(m.lease))
		if err != nil {
			return nil, err
		}
		if ok {
			return rec, nil
		}
		if err := m.waitForLease(ctx, rec); err != nil {
			return nil, err
		}
	}
}

// refreshHeld refreshes the connection whose lease this instance holds,
// and releases the lease on every path. tok is rec's tokens when the
// caller has opened them already, or nil.
func (m *Manager) refreshHeld(ctx context.Context, rec *Record, tok *oauth2.Token) (*oauth2.Token, int64, error) {
	// Work that must finish once started (saving rotated tokens) does not
	// stop when the caller gives up.
	bg := context.WithoutCancel(ctx)
	id := rec.ID
	release := func() { _ = m.store.Release(bg, id, m.owner) }
	if err := statusError(rec); err != nil {
		release()
		return nil, 0, err
	}
	if tok == nil {
		var err error
		if tok, err = m.keys.open(rec.ID, rec.Tokens); err != nil {
			release()
			return nil, 0, err
		}
	}
	if m.valid(tok) && rec.RefreshSentAt.IsZero() {
		// Another instance refreshed between our read and our lease.
		release()
		return tok, rec.Version, nil
	}
	if tok.RefreshToken == "" {
		return nil, 0, m.fail(bg, rec, "no_refresh_token")
	}
	if !rec.RefreshSentAt.IsZero() {
		// A refresh was sent and its answer never saved.
		if m.now().Before(rec.RefreshSentAt.Add(m.reqTTL)) {
			// Its request may still be in flight: do not even ask yet.
			release()
			return nil, 0, fmt.Errorf("pleooauth: connection %s: a refresh sent at %s has no answer yet; try again shortly", rec.ID, rec.RefreshSentAt.Format(time.RFC3339))
		}
		if err := m.resolveUnknown(bg, rec, tok.RefreshToken); err != nil {
			return nil, 0, err
		}
	}

	// Record that a refresh is being sent, fenced by the lease: from here
	// the refresh token may be spent.
	rec.RefreshSentAt = m.now()
	marked, err := m.store.Update(bg, rec, m.owner, false)
	if err != nil {
		release()
		return nil, 0, err
	}
	rec = marked
	newTok, outcome, err := m.sendRefresh(bg, tok.RefreshToken)
	switch outcome {
	case refreshed:
		if newTok.RefreshToken == "" {
			newTok.RefreshToken = tok.RefreshToken
		}
		now := m.now()
		rec.Tokens = m.keys.seal(rec.ID, newTok)
		rec.TokenExpiry, rec.LastRefreshAt, rec.UpdatedAt = newTok.Expiry, now, now
		rec.LastError, rec.RefreshSentAt = "", time.Time{}
		if s, ok := newTok.Extra("scope").(string); ok && s != "" {
			rec.Scopes = strings.Fields(s)
		}
		saved, err := m.saveRotated(bg, rec)
		if err != nil {
			return nil, 0, err
		}
		m.log.InfoContext(ctx, "pleooauth: refreshed", "connection", rec.ID)
		return newTok, saved.Version, nil
	case refused:
		return nil, 0, m.fail(bg, rec, errorCode(err))
	case notSent, answered:
		rec.RefreshSentAt, rec.LastError = time.Time{}, reasonUnavailable
		if outcome == answered {
			rec.LastError = errorCode(err)
		}
		if _, uerr := m.store.Update(bg, rec, m.owner, true); uerr != nil {
			release()
		}
		return nil, 0, fmt.Errorf("pleooauth: connection %s: the refresh failed without spending the refresh token; it is retried on the next call: %w", rec.ID, err)
	default: // unknown
		rec.LastError = reasonOutcomeUnknown
		if _, uerr := m.store.Update(bg, rec, m.owner, true); uerr != nil {
			release()
		}
		m.log.WarnContext(ctx, "pleooauth: refresh outcome unknown", "connection", rec.ID, "error", err)
		return nil, 0, fmt.Errorf("pleooauth: connection %s: the refresh got no usable answer; it is not retried with the same refresh token until Pleo confirms it is unused: %w", rec.ID, err)
	}
}

// resolveUnknown decides what became of a refresh whose answer was lost:
// Pleo's introspection says whether the refresh token is still active. It
// returns nil when the refresh may go ahead; otherwise it has marked the
// connection or released the lease, and says why.
func (m *Manager) resolveUnknown(ctx context.Context, rec *Record, refreshToken string) error {
	if m.cfg.ClientSecret == "" {
		// A public client cannot introspect: the outcome stays unknown.
		return m.fail(ctx, rec, reasonOutcomeUnknown)
	}
	info, err := m.introspect(ctx, refreshToken, "refresh_token")
	if err != nil {
		_ = m.store.Release(ctx, rec.ID, m.owner)
		return fmt.Errorf("pleooauth: connection %s: a refresh's outcome is unknown and introspection failed; it is tried again on the next call: %w", rec.ID, err)
	}
	if !info.Active {
		// Pleo rotated it: the new tokens were issued and lost.
		return m.fail(ctx, rec, reasonOutcomeUnknown)
	}
	m.log.InfoContext(ctx, "pleooauth: lost refresh never reached Pleo; refreshing", "connection", rec.ID)
	return nil
}

// fail marks the connection reauthorization required, erasing nothing
// (the tokens are useless, and harmless), and releases the lease.
func (m *Manager) fail(ctx context.Context, rec *Record, reason string) error {
	rec.Status, rec.LastError, rec.RefreshSentAt, rec.UpdatedAt = StatusReauthorizationRequired, reason, time.Time{}, m.now()
	if _, err := m.store.Update(ctx, rec, m.owner, true); err != nil {
		_ = m.store.Release(ctx, rec.ID, m.owner)
		if errors.Is(err, ErrVersionConflict) {
			return err
		}
		return fmt.Errorf("pleooauth: marking connection %s: %w", rec.ID, err)
	}
	m.log.WarnContext(ctx, "pleooauth: reauthorization required", "connection", rec.ID, "reason", reason)
	return fmt.Errorf("%w: %s (%s)", ErrReauthorizationRequired, rec.ID, reason)
}

// saveRotated saves rotated tokens, trying again while the lease lasts:
// Pleo has already spent the old refresh token, so the new one must land.
func (m *Manager) saveRotated(ctx context.Context, rec *Record) (*Record, error) {
	deadline := rec.LeaseUntil
	pause := 10 * time.Millisecond
	for {
		saved, err := m.store.Update(ctx, rec, m.owner, true)
		if err == nil || errors.Is(err, ErrVersionConflict) {
			return saved, err
		}
		if !m.now().Add(pause).Before(deadline) {
			return nil, fmt.Errorf("pleooauth: connection %s: the refreshed tokens could not be saved; the next call checks with Pleo what became of them: %w", rec.ID, err)
		}
		time.Sleep(pause)
		pause = min(pause*2, time.Second)
	}
}

// The outcomes of sending a refresh.
type outcome int

const (
	refreshed outcome = iota // new tokens
	refused                  // Pleo refused the refresh token: terminal
	notSent                  // never reached Pleo: safe to retry
	answered                 // Pleo answered another error; nothing rotated
	unknown                  // may have reached Pleo: never retry blindly
)

// sendRefresh sends one refresh request through x/oauth2, within the
// refresh timeout, and tells what came of it. Whether the request was
// written to the connection (httptrace's WroteRequest) tells a refresh that
// never left from one whose answer was lost.
func (m *Manager) sendRefresh(ctx context.Context, refreshToken string) (*oauth2.Token, outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, m.reqTTL)
	defer cancel()
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	// An expired-looking token makes x/oauth2 refresh once, and only once.
	tok, err := m.cfg.TokenSource(m.oauthContext(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err == nil {
		return m.onClock(tok), refreshed, nil
	}
	err = scrubTokenError(err)
	var rerr *oauth2.RetrieveError
	switch {
	case errors.As(err, &rerr) && (rerr.ErrorCode == "invalid_grant" || rerr.ErrorCode == "invalid_refresh_token"):
		return nil, refused, err
	case rerr != nil && rerr.Response != nil && rerr.Response.StatusCode < 500:
		// Pleo answered with another error (invalid_client, say): it did
		// not rotate the refresh token.
		return nil, answered, err
	case !wrote.Load():
		return nil, notSent, err
	}
	// A 5xx, a time-out, a dropped connection, or a 200 that is not a
	// token: Pleo may have rotated the refresh token.
	return nil, unknown, err
}

// errorCode is the OAuth error code of a token-endpoint error, or, for an
// answer without one, "token_endpoint_" and the HTTP status.
func errorCode(err error) string {
	var rerr *oauth2.RetrieveError
	switch {
	case !errors.As(err, &rerr):
		return reasonUnavailable
	case rerr.ErrorCode != "":
		return rerr.ErrorCode
	case rerr.Response != nil:
		return "token_endpoint_" + strconv.Itoa(rerr.Response.StatusCode)
	}
	return reasonUnavailable
}
