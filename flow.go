package pleooauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Errors of the authorization flow.
var (
	// ErrFlowExpired: the sealed flow value is past its expiry; the user
	// took too long, or the value is an old one.
	ErrFlowExpired = errors.New("pleooauth: authorization flow expired")
	// ErrFlowInvalid: the sealed flow value is malformed, was tampered
	// with, was sealed with another key or for another client, or was
	// already used.
	ErrFlowInvalid = errors.New("pleooauth: authorization flow value is invalid")
	// ErrStateMismatch: the callback's state is not the one this flow sent;
	// never exchange the code (Pleo: "Never proceed with token exchange if
	// the state validation fails.").
	ErrStateMismatch = errors.New("pleooauth: callback state does not match")
	// ErrAccessDenied is matched by an [*AuthorizationError] whose code is
	// access_denied: the user said no. It is an answer, not a failure.
	ErrAccessDenied = errors.New("pleooauth: the user denied access")
)

// AuthorizationError is an error callback from the authorization server
// (RFC 6749 section 4.1.2.1): the redirect carried error instead of code.
// An access_denied one matches [ErrAccessDenied].
type AuthorizationError struct {
	Code        string // such as access_denied, invalid_scope, invalid_request
	Description string
}

func (e *AuthorizationError) Error() string {
	if e.Description == "" {
		return "pleooauth: authorization failed: " + e.Code
	}
	return fmt.Sprintf("pleooauth: authorization failed: %s: %s", e.Code, e.Description)
}

// Is reports whether target is [ErrAccessDenied] and the code is
// access_denied.
func (e *AuthorizationError) Is(target error) bool {
	return target == ErrAccessDenied && e.Code == "access_denied"
}

// DefaultFlowTTL is how long a started authorization may take to finish.
const DefaultFlowTTL = 10 * time.Minute

// Flow runs the authorization code flow with PKCE for one *oauth2.Config,
// with no server-side session store: [Flow.Start] returns the state and
// PKCE verifier sealed with AES-GCM under the caller's key, bound to an
// expiry and to the client ID, for the caller to keep (in a cookie,
// typically); [Flow.Finish] opens it again. Any instance of a backend that
// holds the same key can finish a flow another instance started.
//
// A Flow is safe for concurrent use. It remembers the sealed values it has
// finished until they expire and refuses them a second time; across
// instances, a replayed value carries a code that Pleo has already spent.
type Flow struct {
	cfg  *oauth2.Config
	aead cipher.AEAD
	ttl  time.Duration
	now  func() time.Time

	mu        sync.Mutex
	used      map[string]time.Time // nonces of finished values, until their expiry
	nextPrune time.Time            // when to drop expired nonces next
}

// FlowOption adjusts a [Flow].
type FlowOption func(*Flow)

// WithFlowTTL sets how long a started flow stays valid ([DefaultFlowTTL]).
func WithFlowTTL(d time.Duration) FlowOption { return func(f *Flow) { f.ttl = d } }

// WithFlowClock sets the flow's clock (time.Now by default), for tests.
func WithFlowClock(now func() time.Time) FlowOption { return func(f *Flow) { f.now = now } }

// NewFlow makes a Flow for cfg. key is an AES key of 16, 24 or 32 bytes
// from crypto/rand, shared by every instance of the backend and kept as
// secret as the client secret.
func NewFlow(cfg *oauth2.Config, key []byte, opts ...FlowOption) (*Flow, error) {
	if cfg == nil {
		return nil, errors.New("pleooauth: NewFlow needs an *oauth2.Config")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("pleooauth: flow key must be 16, 24 or 32 bytes, not %d", len(key))
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("pleooauth: flow key: %w", err)
	}
	f := &Flow{cfg: cfg, aead: aead, ttl: DefaultFlowTTL, now: time.Now, used: make(map[string]time.Time)}
	for _, opt := range opts {
		opt(f)
	}
	return f, nil
}

// Config returns the *oauth2.Config the flow uses.
func (f *Flow) Config() *oauth2.Config { return f.cfg }

// stateBytes is the random state's length: 32 bytes from crypto/rand.
const stateBytes = 32

// Start begins an authorization: a fresh random state and PKCE verifier.
// It returns the URL to send the user to and the sealed value to keep
// until the callback. Extra options (such as Pleo's subject parameter)
// are added to the URL.
func (f *Flow) Start(opts ...oauth2.AuthCodeOption) (authURL, sealed string) {
	state := make([]byte, stateBytes)
	_, _ = rand.Read(state) // crypto/rand.Read never fails
	pkce := NewPKCE()
	stateText := base64.RawURLEncoding.EncodeToString(state)
	authURL = f.cfg.AuthCodeURL(stateText, append([]oauth2.AuthCodeOption{pkce.AuthCodeOption()}, opts...)...)
	return authURL, f.seal(state, pkce.Verifier.Reveal(), f.now().Add(f.ttl))
}

// The sealed value: version, nonce, then AES-GCM over expiry (8 bytes,
// Unix seconds), state (32 bytes) and verifier, with the client ID as
// additional data.
const sealVersion = 1

func (f *Flow) seal(state []byte, verifier string, expires time.Time) string {
	plain := make([]byte, 0, 8+len(state)+len(verifier))
	plain = binary.BigEndian.AppendUint64(plain, uint64(expires.Unix()))
	plain = append(plain, state...)
	plain = append(plain, verifier...)
	out := make([]byte, 1+f.aead.NonceSize(), 1+f.aead.NonceSize()+len(plain)+f.aead.Overhead())
	out[0] = sealVersion
	_, _ = rand.Read(out[1:])
	out = f.aead.Seal(out, out[1:], plain, f.additionalData())
	return base64.RawURLEncoding.EncodeToString(out)
}

func (f *Flow) additionalData() []byte {
	return []byte("pleooauth flow v1\x00" + f.cfg.ClientID)
}

// unseal opens a sealed value and returns its nonce, expiry, state and
// verifier.
func (f *Flow) unseal(sealed string) (nonce string, expires time.Time, state []byte, verifier string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	ns := f.aead.NonceSize()
	if err != nil || len(raw) < 1+ns || raw[0] != sealVersion {
		return "", time.Time{}, nil, "", ErrFlowInvalid
	}
	plain, err := f.aead.Open(nil, raw[1:1+ns], raw[1+ns:], f.additionalData())
	if err != nil || len(plain) < 8+stateBytes {
		return "", time.Time{}, nil, "", ErrFlowInvalid
	}
	expires = time.Unix(int64(binary.BigEndian.Uint64(plain)), 0)
	return string(raw[1 : 1+ns]), expires, plain[8 : 8+stateBytes], string(plain[8+stateBytes:]), nil
}

// Finish completes an authorization from the callback request and the
// sealed value [Flow.Start] returned. It refuses an expired
// ([ErrFlowExpired]), tampered or already used ([ErrFlowInvalid]) sealed
// value, compares the state in constant time ([ErrStateMismatch]), turns
// an error callback into an [*AuthorizationError] (access_denied matches
// [ErrAccessDenied]), and exchanges the code with the PKCE verifier. A
// failed exchange matches x/oauth2's *oauth2.RetrieveError with
// [errors.As], with its Body removed: a proxy's error page may echo the
// request, secret, code and verifier included. Pass the HTTP client
// for the token endpoint in ctx, as x/oauth2 does ([oauth2.HTTPClient]).
func (f *Flow) Finish(ctx context.Context, r *http.Request, sealed string) (*oauth2.Token, error) {
	code, verifier, err := f.verify(r, sealed)
	if err != nil {
		return nil, err
	}
	tok, err := f.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, scrubTokenError(err)
	}
	return tok, nil
}

// verify does everything Finish does before the exchange, and returns the
// code and the verifier to exchange it with.
func (f *Flow) verify(r *http.Request, sealed string) (code, verifier string, err error) {
	nonce, expires, state, verifier, err := f.unseal(sealed)
	if err != nil {
		return "", "", err
	}
	now := f.now()
	if !now.Before(expires) {
		return "", "", ErrFlowExpired
	}
	q := r.URL.Query()
	got, err := base64.RawURLEncoding.DecodeString(q.Get("state"))
	if err != nil || subtle.ConstantTimeCompare(got, state) != 1 {
		return "", "", ErrStateMismatch
	}
	if !f.markUsed(nonce, expires, now) {
		return "", "", ErrFlowInvalid
	}
	if e := q.Get("error"); e != "" {
		return "", "", &AuthorizationError{Code: e, Description: q.Get("error_description")}
	}
	if code = q.Get("code"); code == "" {
		return "", "", &AuthorizationError{Code: "invalid_request", Description: "the callback has neither code nor error"}
	}
	return code, verifier, nil
}

// markUsed records a finished value's nonce, and reports false if it was
// already there. Expired entries are dropped once a minute at most, so a
// busy backend does not scan them on every callback.
func (f *Flow) markUsed(nonce string, expires, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !now.Before(f.nextPrune) {
		for n, exp := range f.used {
			if !now.Before(exp) {
				delete(f.used, n)
			}
		}
		f.nextPrune = now.Add(time.Minute)
	}
	if _, seen := f.used[nonce]; seen {
		return false
	}
	f.used[nonce] = expires
	return true
}
