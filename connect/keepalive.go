package connect

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Defaults of keep-alive.
const (
	// DefaultKeepAlive is how long a connection may go without a refresh
	// before [Manager.Run] refreshes it. Pleo's refresh tokens are "valid
	// for at least 60 days, but may expire or be revoked earlier"; a day
	// keeps every grant far from that limit and finds a dead one (the
	// company uninstalled the app) within a day.
	DefaultKeepAlive = 24 * time.Hour
	// DefaultFailingAfter is how long refreshes may keep failing without
	// Pleo refusing the grant before the connection's health becomes
	// [HealthFailing].
	DefaultFailingAfter = 72 * time.Hour
)

// Keep-alive's schedule.
const (
	// keepAliveBatch is how many due connections one sweep reads.
	keepAliveBatch = 100
	// keepAliveWorkers is how many of them an instance refreshes at once.
	keepAliveWorkers = 4
	// minBackoff and maxBackoff bound the wait after a failed attempt:
	// as long as the connection has been failing, so that attempts
	// thin out exponentially, at most one an hour. Pleo: back off on
	// transient failures; "do not retry indefinitely".
	minBackoff = 30 * time.Second
	maxBackoff = time.Hour
	// maxSweepEvery is the longest pause between two sweeps that found
	// fewer due connections than a batch.
	maxSweepEvery = time.Minute
)

// WithKeepAlive sets how long a connection may go without a refresh
// before [Manager.Run] refreshes it ([DefaultKeepAlive]). A connection
// whose tokens are refreshed for callers of Token anyway is left alone.
func WithKeepAlive(d time.Duration) Option {
	return managerOption(func(o *managerOptions) { o.keepAlive = d })
}

// WithFailingAfter sets how long refresh attempts may keep failing
// without Pleo refusing the grant (its token endpoint unreachable or
// answering 5xx or 429, answers lost) before the connection's health
// becomes [HealthFailing] ([DefaultFailingAfter]). The connection stays
// active and is still tried, with backoff.
func WithFailingAfter(d time.Duration) Option {
	return managerOption(func(o *managerOptions) { o.failingAfter = d })
}

// checkKeepAlive refuses keep-alive settings that cannot work.
func checkKeepAlive(o *managerOptions) error {
	if o.keepAlive <= 0 || o.failingAfter <= 0 {
		return fmt.Errorf("connect: the keep-alive period (%s) and the time before failing (%s) must be positive", o.keepAlive, o.failingAfter)
	}
	return nil
}

// succeeded records on rec, about to be saved with the tokens a refresh
// gave, that the connection is healthy, and schedules its next keep-alive
// a keep-alive period (less up to a tenth, so that connections made
// together spread out) after the store's time rec was read at.
func (m *Manager) succeeded(rec *Record) {
	rec.Health, rec.FailingSince = HealthOK, time.Time{}
	rec.KeepAliveAt = rec.ReadAt.Add(m.keepAlive - m.jitter(m.keepAlive/10))
}

// failed records on rec, about to be saved, that a refresh attempt failed
// without Pleo refusing the grant, at the store's time rec was read at
// (and dates the change on the Manager's clock, as every write does):
// the next attempt waits as long as the connection has been failing
// (between minBackoff and maxBackoff, less up to a fifth), and not before
// an unsettled refresh's quarantine ends; after failingAfter the
// connection is HealthFailing.
func (m *Manager) failed(rec *Record) {
	rec.UpdatedAt = m.now() // the record changes: its event is dated now
	now := rec.ReadAt
	if rec.FailingSince.IsZero() || rec.FailingSince.After(now) {
		rec.FailingSince = now
	}
	failing := now.Sub(rec.FailingSince)
	wait := min(max(failing, minBackoff), maxBackoff)
	next := now.Add(wait - m.jitter(wait/5))
	if settled := rec.RefreshSentAt.Add(m.quarantine); !rec.RefreshSentAt.IsZero() && settled.After(next) {
		next = settled
	}
	rec.KeepAliveAt = next
	if failing >= m.failingAfter {
		rec.Health = HealthFailing
	}
}

// cryptoJitter returns a random duration in [0, d), from crypto/rand: the
// Manager's jitter unless a test makes its schedules replayable.
func cryptoJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return time.Duration(binary.LittleEndian.Uint64(b[:]) % uint64(d))
}

// Run keeps the connections alive until ctx ends, then returns nil; with
// [WithEventHandler] it also delivers the events. Run it in every
// instance, in a goroutine of its own.
//
// Each active connection that has gone a keep-alive period
// ([WithKeepAlive]) without a refresh is refreshed, through the same lease
// and fencing as [Manager.Token]: across all instances running Run it is
// refreshed once, and never at the same time as a caller's refresh. So a
// refresh token never ages toward Pleo's limit, and a company that
// uninstalled the app is found within a period (its refresh is refused:
// [StatusReauthorizationRequired], as for Token). A refresh that fails
// without Pleo refusing the grant is tried again with exponential
// backoff, the next attempt's time kept in the store for every instance;
// after [WithFailingAfter] the connection's health is [HealthFailing].
//
// Run reads the due connections in batches, earliest first, from an index
// of the store, and pauses between batches for a random time, so that
// instances and restarts do not stampede. When ctx ends it lets the
// refreshes under way save their tokens and returns, leaving no lease
// behind.
func (m *Manager) Run(ctx context.Context) error {
	if m.onEvent != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.deliver(ctx)
		}()
		defer func() { <-done }()
	}
	for {
		n, err := m.sweep(ctx, keepAliveWorkers)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			m.log.WarnContext(ctx, "connect: keep-alive sweep failed", "error", err)
		}
		pause := min(m.keepAlive/24, maxSweepEvery)
		if n == keepAliveBatch {
			pause = time.Second // more are due: go on soon
		}
		if m.sleep(ctx, pause/2+m.jitter(pause)) != nil {
			return nil
		}
	}
}

// sweep keeps alive one batch of due connections, workers at a time, and
// returns how many the store gave.
func (m *Manager) sweep(ctx context.Context, workers int) (int, error) {
	due, err := m.store.Due(ctx, keepAliveBatch)
	if err != nil {
		return 0, fmt.Errorf("connect: reading the connections due for keep-alive: %w", err)
	}
	// Instances sweeping together read the same batch: each takes it in
	// its own order, so they work on different connections first.
	for i := len(due) - 1; i > 0; i-- {
		j := int(m.jitter(time.Duration(i + 1)))
		due[i], due[j] = due[j], due[i]
	}
	work := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range work {
				if err := m.keepAlive1(ctx, id); err != nil && ctx.Err() == nil {
					m.log.InfoContext(ctx, "connect: keep-alive refresh failed", "connection", id, "error", err)
				}
			}
		})
	}
	for _, c := range due {
		if ctx.Err() != nil {
			break
		}
		work <- c.ID
	}
	close(work)
	wg.Wait()
	return len(due), nil
}

// keepAlive1 refreshes the connection if it is still due as the store
// holds it now and no other instance works on it.
func (m *Manager) keepAlive1(ctx context.Context, id string) error {
	e := m.entry(id)
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, err := m.store.Get(ctx, id)
	if err != nil {
		return err
	}
	leased := rec.LeaseOwner != "" && rec.LeaseOwner != m.owner && rec.LeaseUntil.After(rec.ReadAt)
	if rec.Status != StatusActive || rec.KeepAliveAt.After(rec.ReadAt) || leased {
		return nil // refreshed, disconnected or taken meanwhile
	}
	tok, err := m.keys.open(id, rec.Tokens)
	if err != nil {
		return err
	}
	newTok, saved, err := m.refresh(ctx, rec, tok, false)
	switch {
	case err == nil:
		m.keep(e, newTok, saved.Version)
		return nil
	case errors.Is(err, errAgain):
		return nil // another instance got there first
	case errors.Is(err, ErrReauthorizationRequired), errors.Is(err, ErrRefreshPending):
		m.keep(e, nil, e.version) // no cached token outlives a dead or unsettled grant
	}
	return err
}
