package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/partnerkit/pleooauth/internal/pleoapi"
)

// Disconnect ends a connection: it calls Pleo's DELETE
// /v1/installations/me (Pleo: it "will revoke all access and refresh
// tokens" of the installation) with the access token the store holds,
// refreshed first if it is due, under the connection's lease; then, fenced
// by the record's version, it erases the tokens and marks the connection
// [StatusDisconnected]. A grant stored meanwhile (the company connected
// again) is revoked in turn before the mark, so no grant the store held is
// left live. A 401 from Pleo counts as revoked only when Pleo also refuses
// the grant's refresh token. A connection whose grant is already gone is
// marked without the call. Disconnecting one company never touches
// another's. While a refresh's outcome is unknown it returns
// [ErrRefreshPending]: call it again once the quarantine has passed.
func (m *Manager) Disconnect(ctx context.Context, id string) error {
	for range maxRounds {
		err := m.disconnectOnce(ctx, id)
		if errors.Is(err, errAgain) {
			continue
		}
		if err == nil {
			m.cache.Delete(id)
			m.log.InfoContext(ctx, "connect: disconnected", "connection", id)
		}
		return err
	}
	return fmt.Errorf("connect: connection %s kept changing while it was disconnected", id)
}

// disconnectOnce takes one step of Disconnect: errAgain when the record
// changed and Disconnect must look again.
func (m *Manager) disconnectOnce(ctx context.Context, id string) error {
	tok, rec, err := m.current(ctx, id, "")
	switch {
	case errors.Is(err, ErrDisconnected):
		return nil
	case errors.Is(err, ErrReauthorizationRequired):
		// Pleo refused the grant, or its tokens were lost: nothing to call.
		rec, err := m.store.Get(ctx, id)
		if err != nil {
			return err
		}
		if rec.Status != StatusReauthorizationRequired {
			return errAgain
		}
		held, err := m.acquire(ctx, rec)
		if err != nil {
			return err
		}
		return m.markDisconnected(ctx, held)
	case err != nil:
		return err
	}
	held, err := m.acquire(ctx, rec)
	if err != nil {
		return err
	}
	status, err := m.deleteInstallation(ctx, id, tok.AccessToken)
	switch {
	case err != nil:
		m.release(ctx, id)
		return err
	case status/100 == 2:
		return m.markDisconnected(ctx, held)
	case status == http.StatusUnauthorized:
		// Pleo refused the stored access token: expired early by a clock,
		// or the grant is revoked. A refresh tells which; the next round
		// calls again with its token, or marks the refused grant.
		m.release(ctx, id)
		if _, _, err := m.current(ctx, id, tok.AccessToken); err != nil && !errors.Is(err, ErrReauthorizationRequired) {
			return err
		}
		return errAgain
	}
	m.release(ctx, id)
	return fmt.Errorf("connect: disconnect: Pleo's installations API answered %d %s", status, http.StatusText(status))
}

// markDisconnected erases held's tokens and marks it disconnected, fenced
// by its version, and releases the lease.
func (m *Manager) markDisconnected(ctx context.Context, held *Record) error {
	held.Status, held.Tokens, held.RefreshSentAt = StatusDisconnected, nil, time.Time{}
	held.TokenExpiry, held.LastError, held.UpdatedAt = time.Time{}, "", m.now()
	_, err := m.write(context.WithoutCancel(ctx), held)
	if err != nil {
		m.release(ctx, held.ID)
		if errors.Is(err, ErrVersionConflict) {
			return errAgain // a grant stored meanwhile: revoke it too
		}
		return fmt.Errorf("connect: marking the connection disconnected: %w", err)
	}
	return nil
}

// deleteInstallation calls DELETE /v1/installations/me with accessToken,
// connection id's, and returns Pleo's status.
func (m *Manager) deleteInstallation(ctx context.Context, id, accessToken string) (int, error) {
	ctx, cancel := m.withDeadline(ctx, m.now().Add(m.reqTTL))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, m.endpoints.APIBaseURL+pleoapi.InstallationsPath, nil)
	if err != nil {
		return 0, fmt.Errorf("connect: disconnect: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := m.tel.do(m.hc, req, spanDeleteInstallation, id)
	if err != nil {
		return 0, fmt.Errorf("connect: disconnect: calling Pleo's installations API: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, nil
}
