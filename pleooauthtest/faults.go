package pleooauthtest

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"
)

// TokenRequest describes a request to the token endpoint, for
// [WithTokenFaults] to decide on.
type TokenRequest struct {
	GrantType string // authorization_code or refresh_token
	ClientID  string // as the request named it; not yet authenticated
}

// Fault is what the token endpoint does wrong with one request, for tests
// of how a client copes. The zero Fault is none.
type Fault struct {
	// Status, if 500 or more, is answered at once, before the request is
	// processed: nothing is issued or rotated.
	Status int
	// Delay is waited (on the real clock) before the request is processed,
	// or until the client gives up.
	Delay time.Duration
	// DropAfterProcessing processes the request (a refresh rotates the
	// refresh token) and then closes the connection without answering: the
	// client cannot know whether it worked, which is the case a client
	// must never answer by presenting the same refresh token again.
	DropAfterProcessing bool
	// ProcessLate holds the request: the server closes the connection at
	// once without an answer (so the client, which has written its
	// request, cannot know whether it was processed), and processes it
	// later, when the test calls [Server.ProcessLate]; a held refresh then
	// rotates the refresh token exactly as if it had been processed on
	// arrival (its answer goes nowhere). This models a request Pleo's edge
	// queued and processed after the client gave up. A Status of 500 or
	// more is answered instead.
	ProcessLate bool
}

// WithTokenFaults makes the token endpoint misbehave: decide is called for
// every request to it and returns the [Fault] to apply, the zero Fault for
// none. It is called from the server's goroutines, concurrently.
func WithTokenFaults(decide func(TokenRequest) Fault) Option {
	return func(s *Server) { s.opts.faults = decide }
}

// fault applies the fault decided for r before processing. It reports
// whether the request is done with (answered, held or abandoned), and
// returns whether to drop the connection after processing. It leaves r's
// body unread, for tokenRequest to parse.
func (s *Server) fault(w http.ResponseWriter, r *http.Request) (done, dropAfter bool) {
	if s.opts.faults == nil {
		return false, false
	}
	// Read the body once and put it back, so that a held request keeps it
	// and tokenRequest parses it as it would without faults. ParseForm
	// reads no more than this either.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormSize+1))
	if err != nil {
		return true, false // the client went away
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var form url.Values
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		form, _ = url.ParseQuery(string(body))
	}
	clientID := form.Get("client_id")
	if user, _, ok := r.BasicAuth(); ok {
		clientID = user
	}
	f := s.opts.faults(TokenRequest{GrantType: form.Get("grant_type"), ClientID: clientID})
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true, false
		}
	}
	if f.Status >= 500 {
		_ = r.ParseForm() // for the record
		s.record(r, clientID, f.Status, "")
		http.Error(w, http.StatusText(f.Status), f.Status)
		return true, false
	}
	if f.ProcessLate {
		s.hold(r, body)
		drop(w)
		return true, false
	}
	return false, f.DropAfterProcessing
}

// maxFormSize is how much of a body http.Request.ParseForm reads.
const maxFormSize = 10 << 20

// heldRequest is a token request held by [Fault.ProcessLate], and its
// body. The server keeps it by pointer, so that printing the server shows
// no header or body.
type heldRequest struct {
	r    *http.Request
	body []byte
}

// hold keeps a copy of r, whose body is body, for [Server.ProcessLate].
func (s *Server) hold(r *http.Request, body []byte) {
	h := &heldRequest{r: r.Clone(context.Background()), body: body}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = append(s.held, h)
}

// request returns the held request again, unparsed, for tokenRequest.
func (h *heldRequest) request() *http.Request {
	c := h.r.Clone(context.Background())
	c.Body, c.ContentLength = io.NopCloser(bytes.NewReader(h.body)), int64(len(h.body))
	c.Form, c.PostForm = nil, nil
	return c
}

// ProcessLate processes every request held by [Fault.ProcessLate] now,
// oldest first, and returns how many it processed. Each is recorded in
// [Server.Requests] as it is processed; its answer goes nowhere. It may
// be called from any goroutine, and after [Server.Close].
func (s *Server) ProcessLate() int {
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.mu.Unlock()
	for _, h := range held {
		r := h.request()
		clientID, _, oerr := s.tokenRequest(r)
		status, code := http.StatusOK, ""
		if oerr != nil {
			status, code = oerr.status, oerr.code
		}
		s.record(r, clientID, status, code)
	}
	return len(held)
}

// drop closes the request's connection without an answer.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream instead
	}
	_ = conn.Close()
}
