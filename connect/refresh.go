package connect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
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
	reasonRevoked        = "revoked"
	reasonNoRefreshToken = "no_refresh_token"
)

// errAgain says that the record changed, or a lease came free, while an
// instance worked on it: read it again and start over.
var errAgain = ErrVersionConflict

// maxRounds bounds how often one call starts over on a record that keeps
// changing under it.
const maxRounds = 16

// Token returns a valid access token for the connection (id is its
// subject URN), refreshed first when it expires within the expiry delta,
// at most once at a time across every instance sharing the store (the
// package documentation's "Refreshing" section says how). A valid token
// comes from this process's cache, without touching the store.
//
// Errors: [ErrReauthorizationRequired] once Pleo has refused the grant
// (terminal); [ErrDisconnected] after a disconnect; [ErrRefreshPending]
// while an earlier refresh's outcome is quarantined; [ErrNoConnection] for
// an unknown ID. Any other error is transient: ask again later.
func (m *Manager) Token(ctx context.Context, id string) (*oauth2.Token, error) {
	e := m.entry(id)
	if tok := m.cached(e); tok != nil {
		m.tel.hit()
		return tok, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if m.valid(e.tok) {
		m.tel.hit()
		return e.tok, nil
	}
	m.tel.miss()
	if e.tok != nil && e.tok.RefreshToken != "" {
		// The cached token is due: claim its refresh at the version it was
		// cached from, with no read first. The claim fails, writing
		// nothing, if the record changed since; then read it.
		tok, rec, err := m.claimAndSend(ctx, id, e.version, e.tok, false)
		if err == nil {
			m.keep(e, tok, rec.Version)
			return tok, nil
		}
		if !errors.Is(err, errAgain) {
			return nil, err
		}
	}
	tok, rec, err := m.current(ctx, id, "")
	if err != nil {
		return nil, err
	}
	m.keep(e, tok, rec.Version)
	return tok, nil
}

// current returns a valid access token of the connection as the store
// holds it, and the record it came from, refreshing it first when it
// expires within the delta, when a refresh's outcome must be settled, or
// when its access token is stale (one Pleo's API refused).
func (m *Manager) current(ctx context.Context, id, stale string) (*oauth2.Token, *Record, error) {
	for range maxRounds {
		rec, err := m.store.Get(ctx, id)
		if err != nil {
			return nil, nil, hintID(id, err)
		}
		if err := statusError(rec); err != nil {
			return nil, rec, err
		}
		tok, err := m.keys.open(id, rec.Tokens)
		if err != nil {
			return nil, nil, err
		}
		if rec.RefreshSentAt.IsZero() && m.valid(tok) && (stale == "" || tok.AccessToken != stale) {
			return tok, rec, nil
		}
		tok, rec, err = m.refresh(ctx, rec, tok, stale != "")
		if errors.Is(err, errAgain) {
			continue
		}
		return tok, rec, err
	}
	return nil, nil, fmt.Errorf("connect: connection %s kept changing while it was refreshed", id)
}

// claimAndSend claims the refresh of the connection at version (the lease
// and the "refresh sent" marker, in one write) and sends it with tok's
// refresh token. The request's deadline is fixed before the claim is
// written, so the request is never sent after it, however long the write
// takes. When the store refuses the claim (the record moved on, or another
// instance holds the lease), it returns errAgain with the record as the
// store holds it now.
func (m *Manager) claimAndSend(ctx context.Context, id string, version int64, tok *oauth2.Token, forced bool) (*oauth2.Token, *Record, error) {
	deadline := m.now().Add(m.reqTTL)
	claimed, ok, err := m.store.Claim(ctx, id, m.owner, version, m.lease)
	if err != nil {
		return nil, nil, fmt.Errorf("connect: claiming the refresh: %w", hintID(id, err))
	}
	if !ok {
		return nil, claimed, errAgain
	}
	return m.send(ctx, claimed, tok, deadline, forced)
}

// refresh refreshes rec, whose tokens tok are, or settles the outcome of
// the refresh its marker says was sent. It returns errAgain when the
// record changed or another instance's lease ended: read it again.
// forced says Pleo's API refused the stored access token: a refused
// refresh then means the grant was revoked.
func (m *Manager) refresh(ctx context.Context, rec *Record, tok *oauth2.Token, forced bool) (*oauth2.Token, *Record, error) {
	if !rec.RefreshSentAt.IsZero() {
		return m.settle(ctx, rec, tok)
	}
	if tok.RefreshToken == "" {
		held, err := m.acquire(ctx, rec)
		if err != nil {
			return nil, nil, err
		}
		return nil, nil, m.fail(ctx, held, reasonNoRefreshToken)
	}
	newTok, got, err := m.claimAndSend(ctx, rec.ID, rec.Version, tok, forced)
	if errors.Is(err, errAgain) && got != nil {
		return nil, nil, m.waitFor(ctx, rec, got)
	}
	return newTok, got, err
}

// settle decides what became of a refresh that was sent and whose answer
// was never saved (rec's marker): nothing happens until the quarantine
// since the marker has passed on the store's clock, so that the request
// can no longer be processed late; then Pleo's introspection says whether
// the refresh token was spent. If it was not, the refresh goes ahead; if it
// was, the new tokens are lost and the connection needs reauthorization.
func (m *Manager) settle(ctx context.Context, rec *Record, tok *oauth2.Token) (*oauth2.Token, *Record, error) {
	if wait := rec.RefreshSentAt.Add(m.quarantine).Sub(rec.ReadAt); wait > 0 {
		if rec.LeaseOwner != "" && rec.LeaseOwner != m.owner && rec.LeaseUntil.After(rec.ReadAt) {
			// The instance that sent it may still save its answer.
			return nil, nil, m.waitForLease(ctx, rec)
		}
		return nil, nil, fmt.Errorf("%w: connection %s: a refresh sent at %s has no saved answer; it is settled after %s",
			ErrRefreshPending, rec.ID, rec.RefreshSentAt.Format(time.RFC3339), wait.Round(time.Second))
	}
	held, err := m.acquire(ctx, rec)
	if err != nil {
		return nil, nil, err
	}
	if m.cfg.ClientSecret == "" {
		// A public client cannot introspect: the outcome stays unknown.
		return nil, nil, m.fail(ctx, held, reasonOutcomeUnknown)
	}
	deadline := m.now().Add(m.reqTTL)
	info, err := m.introspect(ctx, deadline, rec.ID, tok.RefreshToken, "refresh_token")
	if err != nil {
		m.failed(held)
		m.note(ctx, held)
		return nil, nil, fmt.Errorf("connect: connection %s: a refresh's outcome is unknown and introspection failed: %w", rec.ID, err)
	}
	if !info.Active {
		// Pleo spent it: the new tokens were issued and lost.
		return nil, nil, m.fail(ctx, held, reasonOutcomeUnknown)
	}
	m.log.InfoContext(ctx, "connect: a lost refresh never reached Pleo; refreshing", "connection", rec.ID)
	newTok, saved, err := m.claimAndSend(ctx, held.ID, held.Version, tok, false)
	if err != nil {
		m.release(ctx, held.ID) // a refused or failed claim leaves this lease held
	}
	return newTok, saved, err
}

// acquire takes rec's lease, and returns the record under it; errAgain
// when rec changed meanwhile or another held the lease until now.
func (m *Manager) acquire(ctx context.Context, rec *Record) (*Record, error) {
	held, ok, err := m.store.Acquire(ctx, rec.ID, m.owner, m.lease)
	if err != nil {
		return nil, fmt.Errorf("connect: taking the lease: %w", err)
	}
	if !ok {
		return nil, m.waitFor(ctx, rec, held)
	}
	if held.Version != rec.Version {
		m.release(ctx, rec.ID)
		return nil, errAgain
	}
	return held, nil
}

// waitFor is what a caller does when the store refused it rec's lease or
// claim and returned now: start over at once if the record changed,
// otherwise wait for the other instance's lease. It returns errAgain or
// why it stopped waiting.
func (m *Manager) waitFor(ctx context.Context, rec, now *Record) error {
	if now.Version != rec.Version {
		return errAgain
	}
	return m.waitForLease(ctx, now)
}

// send sends the refresh that claimed (this instance's lease, its marker
// written) stands for, unless deadline has passed, and saves what came of
// it.
func (m *Manager) send(ctx context.Context, claimed *Record, tok *oauth2.Token, deadline time.Time, forced bool) (_ *oauth2.Token, _ *Record, err error) {
	ctx, run := m.tel.startRefresh(ctx, claimed.ID)
	defer run.end(&err)
	// Work that must finish once started (saving rotated tokens) does not
	// stop when the caller gives up.
	bg := context.WithoutCancel(ctx)
	rec := claimed
	if !m.now().Before(deadline) {
		// The marker's write took the whole refresh timeout (a stall, a slow
		// commit): sending now could outlive the window others wait out.
		rec.RefreshSentAt = time.Time{}
		m.failed(rec)
		m.note(bg, rec)
		return nil, nil, fmt.Errorf("connect: connection %s: the store took longer than the refresh timeout to record the refresh; nothing was sent", rec.ID)
	}
	newTok, outcome, err := m.sendRefresh(bg, tok.RefreshToken, deadline)
	run.sent(outcome)
	switch outcome {
	case refreshed:
		if newTok.RefreshToken == "" {
			newTok.RefreshToken = tok.RefreshToken
		}
		now := m.now()
		spent := rec.Tokens
		rec.Tokens = m.keys.seal(rec.ID, newTok)
		rec.TokenExpiry, rec.LastRefreshAt, rec.UpdatedAt = newTok.Expiry, now, now
		rec.LastError, rec.RefreshSentAt = "", time.Time{}
		m.succeeded(rec)
		if s, ok := newTok.Extra("scope").(string); ok && s != "" {
			rec.Scopes = strings.Fields(s)
		}
		saved, err := m.saveRotated(bg, rec, spent, newTok)
		if err != nil {
			return nil, nil, err
		}
		m.log.InfoContext(ctx, "connect: refreshed", "connection", rec.ID)
		return newTok, saved, nil
	case refused:
		reason := errorCode(err)
		if forced {
			reason = reasonRevoked
		}
		return nil, nil, m.fail(bg, rec, reason)
	case notSent, answered:
		rec.RefreshSentAt, rec.LastError = time.Time{}, reasonUnavailable
		if outcome == answered {
			rec.LastError = errorCode(err)
		}
		m.failed(rec)
		m.note(bg, rec)
		return nil, nil, fmt.Errorf("connect: connection %s: the refresh failed without spending the refresh token; it is retried on the next call: %w", rec.ID, err)
	default: // unknown: the marker stays
		rec.LastError = reasonOutcomeUnknown
		m.failed(rec)
		m.note(bg, rec)
		m.log.WarnContext(ctx, "connect: refresh outcome unknown", "connection", rec.ID, "error", err)
		return nil, nil, fmt.Errorf("%w: connection %s: the refresh got no usable answer; its refresh token is not presented again until Pleo confirms it unused: %w", ErrRefreshPending, rec.ID, err)
	}
}

// note writes rec (what became of a refresh that need not land: a failed
// write leaves the marker for the next call to settle) and releases the
// lease either way.
func (m *Manager) note(ctx context.Context, rec *Record) {
	if _, err := m.store.Update(ctx, rec, m.owner, true); err != nil {
		m.release(ctx, rec.ID)
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
	return fmt.Errorf("connect: connection %s has an unknown status %q", rec.ID, rec.Status)
}

// waitForLease waits while another instance holds held's lease: until the
// record changes (the other saved), the lease is released or expires (by
// the store's clock: the time left at held.ReadAt, counted on this
// instance's), or ctx ends. It returns errAgain, or ctx's error.
func (m *Manager) waitForLease(ctx context.Context, held *Record) error {
	defer m.tel.waited(ctx, time.Now())
	left := held.LeaseUntil.Sub(held.ReadAt)
	start := m.now()
	pause := 5 * time.Millisecond
	for m.now().Sub(start) < left {
		if err := m.sleep(ctx, min(pause, left)); err != nil {
			return fmt.Errorf("connect: waiting for another instance's refresh: %w", err)
		}
		pause = min(pause*2, 100*time.Millisecond)
		rec, err := m.store.Get(ctx, held.ID)
		if err != nil {
			return err
		}
		if rec.Version != held.Version || rec.LeaseOwner != held.LeaseOwner || !rec.LeaseUntil.Equal(held.LeaseUntil) {
			break
		}
	}
	return errAgain
}

// release gives up this instance's lease of the connection.
func (m *Manager) release(ctx context.Context, id string) {
	_ = m.store.Release(context.WithoutCancel(ctx), id, m.owner)
}

// defaultSleep waits d, or until ctx ends.
func defaultSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fail marks the connection reauthorization required, erasing nothing
// (the tokens are useless, and harmless), and releases the lease. It
// returns errAgain when the record changed meanwhile.
func (m *Manager) fail(ctx context.Context, rec *Record, reason string) error {
	rec.Status, rec.LastError, rec.RefreshSentAt, rec.UpdatedAt = StatusReauthorizationRequired, reason, time.Time{}, m.now()
	if _, err := m.write(context.WithoutCancel(ctx), rec); err != nil {
		m.release(ctx, rec.ID)
		if errors.Is(err, ErrVersionConflict) {
			return errAgain
		}
		return fmt.Errorf("connect: marking connection %s: %w", rec.ID, err)
	}
	m.log.WarnContext(ctx, "connect: reauthorization required", "connection", rec.ID, "reason", reason)
	return fmt.Errorf("%w: %s (%s)", ErrReauthorizationRequired, rec.ID, reason)
}

// writeBudget bounds how long a write that must land is tried, in pauses
// between tries and in wall time alike.
const writeBudget = time.Minute

// write writes rec and releases the lease, trying again with backoff for
// up to writeBudget while the store fails: it is for what must land, such
// as rotated tokens (Pleo has already spent the old refresh token) or a
// grant found dead. The write is fenced by the record's version, not by
// the lease, so it lands as long as no other write came first, however
// long the store was away. A version conflict is returned at once.
func (m *Manager) write(ctx context.Context, rec *Record) (*Record, error) {
	r := m.retrier()
	for {
		saved, err := m.store.Update(ctx, rec, m.owner, true)
		if err == nil || errors.Is(err, ErrVersionConflict) || errors.Is(err, ErrNoConnection) || !r.again(ctx) {
			return saved, err
		}
	}
}

// retrier paces the tries of what must land: pauses from 10 ms doubling
// to 5 s, for up to writeBudget in pauses and in wall time alike, so that
// it ends on a frozen clock too.
type retrier struct {
	m      *Manager
	start  time.Time
	paused time.Duration
	pause  time.Duration
}

func (m *Manager) retrier() *retrier {
	return &retrier{m: m, start: time.Now(), pause: 10 * time.Millisecond}
}

// again waits before the next try, and reports false when the budget is
// spent.
func (r *retrier) again(ctx context.Context) bool {
	if r.paused+r.pause > writeBudget || time.Since(r.start)+r.pause > writeBudget {
		return false
	}
	if r.m.sleep(context.WithoutCancel(ctx), r.pause) != nil {
		return false
	}
	r.paused += r.pause
	r.pause = min(r.pause*2, 5*time.Second)
	return true
}

// saveRotated saves rotated tokens with write. spent is the sealed tokens
// the refresh was made from. When another write came first, it looks at
// what that write was:
//
//   - another instance gave this very refresh up for lost (its answer came
//     here after the quarantine): the record still holds spent and says
//     refresh_outcome_unknown, and the tokens are saved over it, so the
//     grant is not lost after all;
//   - the connection was disconnected meanwhile: the grant these tokens
//     are of is revoked at Pleo, so no live grant outlives the disconnect;
//   - the company connected again: these tokens are of the grant it
//     replaced, and are dropped (see [Manager.Complete]).
func (m *Manager) saveRotated(ctx context.Context, rec *Record, spent []byte, tok *oauth2.Token) (*Record, error) {
	for range maxRounds {
		saved, err := m.write(ctx, rec)
		if err == nil {
			return saved, nil
		}
		if !errors.Is(err, ErrVersionConflict) {
			return nil, fmt.Errorf("connect: connection %s: the refreshed tokens could not be saved; the next call settles with Pleo what became of them: %w", rec.ID, err)
		}
		cur, gerr := m.store.Get(ctx, rec.ID)
		switch {
		case gerr != nil:
			return nil, fmt.Errorf("connect: connection %s changed while it was refreshed: %w", rec.ID, gerr)
		case cur.Status == StatusReauthorizationRequired && cur.LastError == reasonOutcomeUnknown && bytes.Equal(cur.Tokens, spent):
			m.log.WarnContext(ctx, "connect: a refresh given up for lost was answered after all; saving it", "connection", rec.ID)
			rec.Version = cur.Version
			continue
		case cur.Status == StatusDisconnected:
			m.revokeUnstored(ctx, rec.ID, tok)
		}
		return nil, fmt.Errorf("connect: connection %s changed while it was refreshed; the refreshed tokens are dropped: %w", rec.ID, err)
	}
	return nil, fmt.Errorf("connect: connection %s kept changing while it was refreshed", rec.ID)
}

// revokeUnstored revokes at Pleo the grant of tokens no record holds (a
// connection disconnected while they were being refreshed): DELETE
// /v1/installations/me with the access token, refreshed first if Pleo no
// longer takes it. Nothing else holds these tokens, so no lease is needed.
func (m *Manager) revokeUnstored(ctx context.Context, id string, tok *oauth2.Token) {
	for r := m.retrier(); ; {
		status, err := m.deleteInstallation(ctx, id, tok.AccessToken)
		revoked := err == nil && status/100 == 2
		if err == nil && status == http.StatusUnauthorized && tok.RefreshToken != "" {
			fresh, outcome, _ := m.sendRefresh(ctx, tok.RefreshToken, m.now().Add(m.reqTTL))
			switch outcome {
			case refreshed:
				tok = fresh // the next try revokes with the new access token
			case refused:
				revoked = true // the grant is dead already
			case unknown:
				// Presenting it again could be a reuse: leave it to expire.
				m.log.WarnContext(ctx, "connect: disconnected while it was refreshed; the refreshed grant could not be revoked", "connection", id)
				return
			}
		}
		if revoked || !r.again(ctx) {
			m.log.WarnContext(ctx, "connect: disconnected while it was refreshed; revoking the refreshed grant", "connection", id, "revoked", revoked, "status", status, "error", err)
			return
		}
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

// sendRefresh sends one refresh request through x/oauth2, by deadline, and
// tells what came of it. Whether the request was written to the
// connection (httptrace's WroteRequest) tells a refresh that never left
// from one whose answer was lost.
func (m *Manager) sendRefresh(ctx context.Context, refreshToken string, deadline time.Time) (*oauth2.Token, outcome, error) {
	ctx, cancel := m.withDeadline(ctx, deadline)
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

// withDeadline bounds ctx by deadline, a time on the Manager's clock.
func (m *Manager) withDeadline(ctx context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, deadline.Sub(m.now()))
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
