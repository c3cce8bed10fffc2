package connect

import (
	"context"
	"io"
	"net/http"
)

// apiTransport sends requests to Pleo's API as one connection, and handles
// a 401 (see [Manager.Client]).
type apiTransport struct {
	m    *Manager
	ctx  context.Context
	id   string
	base http.RoundTripper
}

func (t *apiTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := t.m.Token(t.ctx, t.id)
	if err != nil {
		closeBody(r)
		return nil, err
	}
	resp, err := t.base.RoundTrip(withBearer(r, tok.AccessToken))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if err := t.m.ReportUnauthorized(t.ctx, t.id, tok.AccessToken); err != nil {
		return resp, nil
	}
	fresh, err := t.m.Token(t.ctx, t.id)
	if err != nil || fresh.AccessToken == tok.AccessToken {
		return resp, nil
	}
	again, ok := replay(r)
	if !ok {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return t.base.RoundTrip(withBearer(again, fresh.AccessToken))
}

// withBearer returns a copy of r carrying the access token: a RoundTripper
// must not change the request it is given.
func withBearer(r *http.Request, token string) *http.Request {
	c := r.Clone(r.Context())
	c.Header.Set("Authorization", "Bearer "+token)
	return c
}

// replay returns r with a fresh body for a second try, if it can be sent
// again: it has no body, or GetBody gives a new one.
func replay(r *http.Request) (*http.Request, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return r, true
	}
	if r.GetBody == nil {
		return nil, false
	}
	body, err := r.GetBody()
	if err != nil {
		return nil, false
	}
	c := r.Clone(r.Context())
	c.Body = body
	return c, true
}

// closeBody closes r's body, as a RoundTripper must even when it fails.
func closeBody(r *http.Request) {
	if r.Body != nil {
		r.Body.Close()
	}
}
