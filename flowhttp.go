package pleooauth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
)

// DefaultFlowCookie names the cookie [FlowHandlers] keep the sealed flow
// value in.
const DefaultFlowCookie = "pleo_oauth_flow"

// FlowHandlers serves the two ends of a [Flow] over net/http: Connect at
// the registration's Initiation URI starts the flow and redirects the user
// to Pleo, keeping the sealed value in an HttpOnly cookie; Callback at the
// redirect URI finishes it and hands the token to OnToken.
type FlowHandlers struct {
	Flow *Flow

	// CookieName names the cookie; empty means DefaultFlowCookie.
	CookieName string

	// HTTPClient, if set, is the client for the token endpoint (a test
	// server's, say); otherwise x/oauth2 uses http.DefaultClient.
	HTTPClient *http.Client

	// OnToken is called after a successful callback and writes the
	// response: typically it saves the token and redirects to the app.
	OnToken func(w http.ResponseWriter, r *http.Request, tok *oauth2.Token)

	// OnError is called when the callback fails and writes the response.
	// errors.Is(err, ErrAccessDenied) is the user saying no. When nil, a
	// short plain-text page is written: 403 for a denial, 400 otherwise.
	OnError func(w http.ResponseWriter, r *http.Request, err error)
}

// secure reports whether the cookie is for https only: when the redirect
// URI, where the browser brings it back, is https. Schemes are
// case-insensitive (RFC 3986 section 3.1): "HTTPS://" is https.
func (h *FlowHandlers) secure() bool {
	scheme, _, ok := strings.Cut(h.Flow.cfg.RedirectURL, "://")
	return ok && strings.EqualFold(scheme, "https")
}

func (h *FlowHandlers) cookieName() string {
	if h.CookieName == "" {
		return DefaultFlowCookie
	}
	return h.CookieName
}

// Connect starts a flow and redirects to Pleo's authorization endpoint.
func (h *FlowHandlers) Connect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authURL, sealed := h.Flow.Start()
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

// Callback finishes the flow started by Connect.
func (h *FlowHandlers) Callback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The value is used once, whatever happens next.
		http.SetCookie(w, &http.Cookie{Name: h.cookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: h.secure()})
		cookie, err := r.Cookie(h.cookieName())
		if err != nil {
			h.fail(w, r, ErrFlowInvalid)
			return
		}
		ctx := r.Context()
		if h.HTTPClient != nil {
			ctx = context.WithValue(ctx, oauth2.HTTPClient, h.HTTPClient)
		}
		tok, err := h.Flow.Finish(ctx, r, cookie.Value)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if h.OnToken == nil {
			http.Error(w, "connected", http.StatusOK)
			return
		}
		h.OnToken(w, r, tok)
	})
}

func (h *FlowHandlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	if h.OnError != nil {
		h.OnError(w, r, err)
		return
	}
	if errors.Is(err, ErrAccessDenied) {
		http.Error(w, "You did not allow access to your Pleo account.", http.StatusForbidden)
		return
	}
	http.Error(w, "Connecting to Pleo failed; please start again.", http.StatusBadRequest)
}
