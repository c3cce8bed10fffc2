package connect

import (
	"context"
	"io"
	"net/http"

	"golang.org/x/oauth2"
)

// apiTransport sends requests to Pleo's API as one connection, and handles
// a 401 (see [Manager.Client]).
type apiTransport struct {
	m    *Manager
	ctx  context.Context
	id   string
	base http.RoundTripper
}

func (t *apiTransport) RoundTrip(r *http.Request) (resp *http.Response, err error) {
	ctx, r, span := t.m.tel.startCall(t.ctx, r, t.id)
	defer func() { endSpan(span, resp, err) }()
	tok, err := t.m.Token(ctx, t.id)
	if err != nil {
		closeBody(r)
		return nil, err
	}
	resp, err = t.base.RoundTrip(withToken(r, tok))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if err := t.m.ReportUnauthorized(ctx, t.id, tok.AccessToken); err != nil {
		return resp, nil
	}
	fresh, err := t.m.Token(ctx, t.id)
	if err != nil || fresh.AccessToken == tok.AccessToken {
		return resp, nil
	}
	body, ok := replayBody(r)
	if !ok {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	again := withToken(r, fresh)
	again.Body = body
	return t.base.RoundTrip(again)
}

// withToken returns a copy of r carrying tok (x/oauth2's SetAuthHeader):
// a RoundTripper must not change the request it is given.
func withToken(r *http.Request, tok *oauth2.Token) *http.Request {
	c := r.Clone(r.Context())
	tok.SetAuthHeader(c)
	return c
}

// replayBody returns r's body afresh for a second try, if it can be sent
// again: it has none, or GetBody gives a new one.
func replayBody(r *http.Request) (io.ReadCloser, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return r.Body, true
	}
	if r.GetBody == nil {
		return nil, false
	}
	body, err := r.GetBody()
	return body, err == nil
}

// closeBody closes r's body, as a RoundTripper must even when it fails.
func closeBody(r *http.Request) {
	if r.Body != nil {
		r.Body.Close()
	}
}
