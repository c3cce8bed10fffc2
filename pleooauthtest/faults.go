package pleooauthtest

import (
	"net/http"
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
}

// WithTokenFaults makes the token endpoint misbehave: decide is called for
// every request to it and returns the [Fault] to apply, the zero Fault for
// none. It is called from the server's goroutines, concurrently.
func WithTokenFaults(decide func(TokenRequest) Fault) Option {
	return func(s *Server) { s.opts.faults = decide }
}

// fault applies the fault decided for r before processing. It reports
// whether the request is done with (answered or abandoned), and returns
// whether to drop the connection after processing.
func (s *Server) fault(w http.ResponseWriter, r *http.Request) (done, dropAfter bool) {
	if s.opts.faults == nil {
		return false, false
	}
	_ = r.ParseForm()
	clientID := r.PostForm.Get("client_id")
	if user, _, ok := r.BasicAuth(); ok {
		clientID = user
	}
	f := s.opts.faults(TokenRequest{GrantType: r.PostForm.Get("grant_type"), ClientID: clientID})
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
		s.record(r, clientID, f.Status, "")
		http.Error(w, http.StatusText(f.Status), f.Status)
		return true, false
	}
	return false, f.DropAfterProcessing
}

// drop closes the request's connection without an answer.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream instead
	}
	_ = conn.Close()
}
