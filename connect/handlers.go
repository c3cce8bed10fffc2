package connect

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// DefaultCookieName names the cookie [Handlers] keep the sealed flow value
// in.
const DefaultCookieName = "pleo_oauth_flow"

// MaxAccountLength is the longest account reference [Handlers] carry
// through the flow: it travels sealed in a cookie.
const MaxAccountLength = 512

// Handlers serves the two ends of the flow over net/http for a backend
// that serves many customers: Connect, at the registration's Initiation
// URI, asks the partner's Account function who is connecting, starts the
// flow for that account and redirects the user to Pleo, keeping the sealed
// value in an HttpOnly cookie; Callback, at the redirect URI, finishes the
// flow, makes the connection with [Manager.Complete] and hands it to
// OnConnected.
type Handlers struct {
	Flow    *Flow
	Manager *Manager

	// Account returns the partner's own reference for the customer making
	// the request (from the partner's session: a tenant or user ID). An
	// error, or "", answers the request through OnError with an error
	// matching [ErrNoAccount].
	Account func(r *http.Request) (string, error)

	// CookieName names the cookie; empty means DefaultCookieName.
	CookieName string

	// OnConnected is called after a successful callback and writes the
	// response: typically a redirect to the connection's page. When nil, a
	// short plain-text page is written.
	OnConnected func(w http.ResponseWriter, r *http.Request, c *Connection)

	// OnError is called when connecting fails and writes the response.
	// errors.Is(err, ErrAccessDenied) is the user saying no. When nil, a
	// short plain-text page is written: 403 for a denial, 401 for no
	// account, 409 for a company connected under another account
	// ([ErrConnectedToAnotherAccount]), 400 otherwise.
	OnError func(w http.ResponseWriter, r *http.Request, err error)
}

func (h *Handlers) cookieName() string {
	if h.CookieName == "" {
		return DefaultCookieName
	}
	return h.CookieName
}

// secure reports whether the cookie is for https only: when the redirect
// URI, where the browser brings it back, is https. Schemes are
// case-insensitive (RFC 3986 section 3.1): "HTTPS://" is https.
func (h *Handlers) secure() bool {
	scheme, _, ok := strings.Cut(h.Flow.cfg.RedirectURL, "://")
	return ok && strings.EqualFold(scheme, "https")
}

// Connect starts a flow for the request's account and redirects to Pleo's
// authorization endpoint.
func (h *Handlers) Connect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		account, err := h.account(r)
		if err != nil {
			h.fail(w, r, err, "")
			return
		}
		authURL, sealed := h.Flow.Start(account)
		http.SetCookie(w, &http.Cookie{
			Name:  h.cookieName(),
			Value: sealed,
			Path:  "/",
			// Lax: the cookie must come along on the top-level redirect back
			// from Pleo, and on nothing cross-site else.
			SameSite: http.SameSiteLaxMode,
			HttpOnly: true,
			Secure:   h.secure(),
			MaxAge:   int(h.Flow.ttl.Seconds()),
		})
		http.Redirect(w, r, authURL, http.StatusFound)
	})
}

func (h *Handlers) account(r *http.Request) (string, error) {
	if h.Account == nil {
		return "", fmt.Errorf("%w: Handlers.Account is not set", ErrNoAccount)
	}
	account, err := h.Account(r)
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: %w", ErrNoAccount, err)
	case account == "":
		return "", ErrNoAccount
	case len(account) > MaxAccountLength:
		return "", fmt.Errorf("%w: the account reference is longer than %d bytes", ErrNoAccount, MaxAccountLength)
	}
	return account, nil
}

// Callback finishes the flow started by Connect and makes the connection.
// It does not ask Account again: the account travels sealed in the flow,
// so the connection belongs to whoever started it.
func (h *Handlers) Callback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The value is used once, whatever happens next.
		http.SetCookie(w, &http.Cookie{Name: h.cookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: h.secure()})
		cookie, err := r.Cookie(h.cookieName())
		if err != nil {
			h.fail(w, r, fmt.Errorf("%w: the callback came without the flow's cookie", ErrFlowInvalid), "")
			return
		}
		ctx := h.Manager.oauthContext(r.Context())
		tok, account, err := h.Flow.finish(ctx, r, cookie.Value, h.Manager.store)
		if err != nil {
			h.fail(w, r, err, account)
			return
		}
		c, err := h.Manager.Complete(r.Context(), tok, account)
		if err != nil {
			h.fail(w, r, err, account)
			return
		}
		if h.OnConnected == nil {
			http.Error(w, "Connected.", http.StatusOK)
			return
		}
		h.OnConnected(w, r, c)
	})
}

// fail logs why connecting failed through the Manager's logger, with the
// account when it is known (the errors carry no token, code or secret),
// and answers the request.
func (h *Handlers) fail(w http.ResponseWriter, r *http.Request, err error, account string) {
	level := slog.LevelWarn
	if errors.Is(err, ErrAccessDenied) || errors.Is(err, ErrNoAccount) {
		level = slog.LevelInfo // an answer, not a failure
	}
	if h.Manager != nil {
		h.Manager.log.Log(r.Context(), level, "connect: connecting failed", "reason", err.Error(), "account", account)
	}
	if h.OnError != nil {
		h.OnError(w, r, err)
		return
	}
	switch {
	case errors.Is(err, ErrAccessDenied):
		http.Error(w, "You did not allow access to your Pleo account.", http.StatusForbidden)
	case errors.Is(err, ErrNoAccount):
		http.Error(w, "Sign in first, then connect Pleo.", http.StatusUnauthorized)
	case errors.Is(err, ErrConnectedToAnotherAccount):
		http.Error(w, "This Pleo company is already connected to another account here. Ask that account to disconnect it first.", http.StatusConflict)
	default:
		http.Error(w, "Connecting to Pleo failed; please start again.", http.StatusBadRequest)
	}
}
