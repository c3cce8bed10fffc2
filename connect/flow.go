package connect

import (
	"context"
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

	"github.com/partnerkit/pleooauth"
	"golang.org/x/oauth2"
)

// authorizationError is an error callback from the authorization server
// (RFC 6749 section 4.1.2.1): the redirect carried error instead of code.
// An access_denied one matches [ErrAccessDenied].
type authorizationError struct {
	Code        string // such as access_denied, invalid_scope, invalid_request
	Description string
}

func (e *authorizationError) Error() string {
	if e.Description == "" {
		return "connect: authorization failed: " + e.Code
	}
	return fmt.Sprintf("connect: authorization failed: %s: %s", e.Code, e.Description)
}

// Is reports whether target is [ErrAccessDenied] and the code is
// access_denied.
func (e *authorizationError) Is(target error) bool {
	return target == ErrAccessDenied && e.Code == "access_denied"
}

// DefaultFlowTTL is how long a started authorization may take to finish.
const DefaultFlowTTL = 10 * time.Minute

// Flow runs the authorization code flow with PKCE for one *oauth2.Config,
// with no server-side session store: [Flow.Start] returns the state, the
// PKCE verifier and the partner's account reference sealed with AES-GCM
// under the caller's key, bound to an expiry and to the client ID, for the
// caller to keep (in a cookie, typically); [Flow.Finish] opens it again.
// Any instance of a backend that holds the same key can finish a flow
// another instance started.
//
// A Flow is safe for concurrent use. It remembers the sealed values it has
// finished until they expire and refuses them a second time. [Handlers]
// also records each finished flow in the Manager's store before the code
// is exchanged, so that a callback sent twice (a reload, a browser retry)
// that reaches two instances is exchanged once.
type Flow struct {
	cfg  *oauth2.Config
	aead cipher.AEAD
	ttl  time.Duration
	now  func() time.Time

	mu        sync.Mutex
	used      map[string]time.Time // nonces of finished values, until their expiry
	nextPrune time.Time            // when to drop expired nonces next
}

// WithFlowTTL sets how long a started flow stays valid ([DefaultFlowTTL]).
func WithFlowTTL(d time.Duration) FlowOption { return flowOption(func(f *Flow) { f.ttl = d }) }

// NewFlow makes a Flow for cfg. key is an AES key of 16, 24 or 32 bytes
// from crypto/rand, shared by every instance of the backend and kept as
// secret as the client secret.
func NewFlow(cfg *oauth2.Config, key []byte, opts ...FlowOption) (*Flow, error) {
	if cfg == nil {
		return nil, errors.New("connect: NewFlow needs an *oauth2.Config")
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, fmt.Errorf("connect: flow key %w", err)
	}
	f := &Flow{cfg: cfg, aead: aead, ttl: DefaultFlowTTL, now: time.Now, used: make(map[string]time.Time)}
	for _, opt := range opts {
		opt.flow(f)
	}
	return f, nil
}

// Config returns the *oauth2.Config the flow uses.
func (f *Flow) Config() *oauth2.Config { return f.cfg }

// stateBytes is the random state's length: 32 bytes from crypto/rand.
const stateBytes = 32

// Start begins an authorization for the partner's customer account (their
// own opaque reference: a tenant or user ID; [Flow.Finish] returns it): a
// fresh random state and PKCE verifier. It returns the URL to send the user
// to and the sealed value to keep until the callback. Extra options (such
// as Pleo's subject parameter) are added to the URL.
func (f *Flow) Start(account string, opts ...oauth2.AuthCodeOption) (authURL, sealed string) {
	state := make([]byte, stateBytes)
	_, _ = rand.Read(state) // crypto/rand.Read never fails
	pkce := pleooauth.NewPKCE()
	stateText := base64.RawURLEncoding.EncodeToString(state)
	authURL = f.cfg.AuthCodeURL(stateText, append([]oauth2.AuthCodeOption{pkce.AuthCodeOption()}, opts...)...)
	return authURL, f.seal(state, pkce.Verifier.Reveal(), account, f.now().Add(f.ttl))
}

// The sealed value: version, nonce, then AES-GCM over expiry (8 bytes,
// Unix seconds), state (32 bytes), the verifier's length (1 byte), the
// verifier and the account, with the client ID as additional data.
const sealVersion = 2

func (f *Flow) seal(state []byte, verifier, account string, expires time.Time) string {
	plain := make([]byte, 0, 8+len(state)+1+len(verifier)+len(account))
	plain = binary.BigEndian.AppendUint64(plain, uint64(expires.Unix()))
	plain = append(plain, state...)
	plain = append(plain, byte(len(verifier))) // RFC 7636: 43 to 128 characters
	plain = append(plain, verifier...)
	plain = append(plain, account...)
	return base64.RawURLEncoding.EncodeToString(sealAEAD(f.aead, []byte{sealVersion}, plain, f.additionalData()))
}

func (f *Flow) additionalData() []byte {
	return []byte("pleooauth flow v1\x00" + f.cfg.ClientID)
}

// opened is a sealed value's content.
type opened struct {
	nonce    string
	expires  time.Time
	state    []byte
	verifier string
	account  string
}

// unseal opens a sealed value.
func (f *Flow) unseal(sealed string) (*opened, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) < 1 || raw[0] != sealVersion {
		return nil, ErrFlowInvalid
	}
	plain, err := openAEAD(f.aead, raw, 1, f.additionalData())
	if err != nil || len(plain) < 8+stateBytes+1 {
		return nil, ErrFlowInvalid
	}
	rest := plain[8+stateBytes:]
	n := int(rest[0])
	if len(rest) < 1+n {
		return nil, ErrFlowInvalid
	}
	return &opened{
		nonce:    string(raw[1 : 1+f.aead.NonceSize()]),
		expires:  time.Unix(int64(binary.BigEndian.Uint64(plain)), 0),
		state:    plain[8 : 8+stateBytes],
		verifier: string(rest[1 : 1+n]),
		account:  string(rest[1+n:]),
	}, nil
}

// Finish completes an authorization from the callback request and the
// sealed value [Flow.Start] returned. It refuses an expired
// ([ErrFlowExpired]), tampered or already used ([ErrFlowInvalid]) sealed
// value, compares the state in constant time ([ErrStateMismatch]), turns
// an error callback into an error naming its code (access_denied matches
// [ErrAccessDenied]), and exchanges the code with the PKCE verifier. It
// returns the token and the account [Flow.Start] was given. A
// failed exchange matches x/oauth2's *oauth2.RetrieveError with
// [errors.As], with its Body removed: a proxy's error page may echo the
// request, secret, code and verifier included. Pass the HTTP client
// for the token endpoint in ctx, as x/oauth2 does ([oauth2.HTTPClient]).
func (f *Flow) Finish(ctx context.Context, r *http.Request, sealed string) (tok *oauth2.Token, account string, err error) {
	tok, account, err = f.finish(ctx, r, sealed, nil)
	if err != nil {
		return nil, "", err
	}
	return tok, account, nil
}

// finish is Finish that, when store is not nil, also records the flow in
// it before the exchange, so that no instance sharing the store exchanges
// its code a second time ([ErrFlowInvalid]). Once the sealed value has
// opened, it returns its account with an error too, for the log.
func (f *Flow) finish(ctx context.Context, r *http.Request, sealed string, store Store) (tok *oauth2.Token, account string, err error) {
	code, o, err := f.verify(r, sealed)
	if err != nil {
		if o != nil {
			return nil, o.account, err
		}
		return nil, "", err
	}
	if store != nil {
		// Kept past the value's expiry by an hour, for instances whose
		// clocks run behind.
		first, err := store.UseFlow(ctx, base64.RawURLEncoding.EncodeToString([]byte(o.nonce)), o.expires.Sub(f.now())+time.Hour)
		if err != nil {
			return nil, o.account, fmt.Errorf("connect: recording the finished flow: %w", err)
		}
		if !first {
			return nil, o.account, fmt.Errorf("%w: another instance finished it already", ErrFlowInvalid)
		}
	}
	tok, err = f.cfg.Exchange(ctx, code, oauth2.VerifierOption(o.verifier))
	if err != nil {
		return nil, o.account, scrubTokenError(err)
	}
	return tok, o.account, nil
}

// verify does everything Finish does before the exchange, and returns the
// code and the opened value; the value too with an error, once it opened.
func (f *Flow) verify(r *http.Request, sealed string) (string, *opened, error) {
	o, err := f.unseal(sealed)
	if err != nil {
		return "", nil, err
	}
	now := f.now()
	if !now.Before(o.expires) {
		return "", o, ErrFlowExpired
	}
	q := r.URL.Query()
	got, err := base64.RawURLEncoding.DecodeString(q.Get("state"))
	if err != nil || subtle.ConstantTimeCompare(got, o.state) != 1 {
		return "", o, ErrStateMismatch
	}
	if !f.markUsed(o.nonce, o.expires, now) {
		return "", o, ErrFlowInvalid
	}
	if e := q.Get("error"); e != "" {
		return "", o, &authorizationError{Code: e, Description: q.Get("error_description")}
	}
	code := q.Get("code")
	if code == "" {
		return "", o, &authorizationError{Code: "invalid_request", Description: "the callback has neither code nor error"}
	}
	return code, o, nil
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
