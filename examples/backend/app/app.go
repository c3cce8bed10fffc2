// Package app is the example integration backend: the pages a partner's
// backend serves for Pleo (the Initiation URI, the redirect URI, the
// Settings URI) and a page that calls Pleo's API with the stored token.
// It is used by examples/backend and by 'pleo-oauth demo'.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/partnerkit/pleooauth"
	"golang.org/x/oauth2"
)

// The backend's paths. A registration for it names them: initiation_uri
// .../pleo/connect, redirect_uris .../oauth/callback, settings_uri
// .../pleo/settings.
const (
	ConnectPath   = "/pleo/connect"
	CallbackPath  = "/oauth/callback"
	SettingsPath  = "/pleo/settings"
	HomePath      = "/"
	EmployeesPath = "/employees" // the backend's own JSON, for its front end
)

// Config is what the backend needs.
type Config struct {
	OAuth2     *oauth2.Config       // from Registration.OAuth2Config
	FlowKey    []byte               // AES key shared by every instance (16, 24 or 32 bytes)
	Store      pleooauth.TokenStore // where the authorization's tokens live
	APIBaseURL string               // Pleo's API, such as https://external.staging.pleo.io
	HTTPClient *http.Client         // for Pleo's token endpoint and API; nil means http.DefaultClient
	Now        func() time.Time     // the clock deciding token expiry; nil means time.Now
}

// App is the backend's http.Handler.
type App struct {
	cfg   Config
	flow  *pleooauth.Flow
	mux   *http.ServeMux
	mu    sync.Mutex
	ts    *pleooauth.TokenSource // for the stored authorization; replaced on each new one
	state string                 // what happened last, for the settings page
}

// New builds the backend.
func New(cfg Config) (*App, error) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	flow, err := pleooauth.NewFlow(cfg.OAuth2, cfg.FlowKey)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, flow: flow, mux: http.NewServeMux()}
	a.ts = a.newTokenSource()
	handlers := &pleooauth.FlowHandlers{Flow: flow, HTTPClient: cfg.HTTPClient, OnToken: a.connected, OnError: a.failed}
	a.mux.Handle("GET "+ConnectPath, handlers.Connect())
	a.mux.Handle("GET "+CallbackPath, handlers.Callback())
	a.mux.HandleFunc("GET "+SettingsPath, a.settings)
	a.mux.HandleFunc("GET "+EmployeesPath, a.employeesJSON)
	a.mux.HandleFunc("GET /{$}", a.home)
	return a, nil
}

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func (a *App) newTokenSource() *pleooauth.TokenSource {
	// x/oauth2 reads its HTTP client from the context.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, a.cfg.HTTPClient)
	return pleooauth.NewTokenSource(ctx, a.cfg.OAuth2, a.cfg.Store, pleooauth.WithTokenClock(a.cfg.Now))
}

func (a *App) tokenSource() *pleooauth.TokenSource {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ts
}

// connected is the callback's success: save the token and go home.
func (a *App) connected(w http.ResponseWriter, r *http.Request, tok *oauth2.Token) {
	if err := a.cfg.Store.Save(r.Context(), tok); err != nil {
		http.Error(w, "Connected, but the token could not be saved.", http.StatusInternalServerError)
		return
	}
	a.mu.Lock()
	a.ts = a.newTokenSource()
	a.state = fmt.Sprintf("connected; the access token expires at %s", tok.Expiry.Format(time.RFC3339))
	a.mu.Unlock()
	http.Redirect(w, r, HomePath, http.StatusFound)
}

func (a *App) failed(w http.ResponseWriter, _ *http.Request, err error) {
	a.mu.Lock()
	a.state = "the last connection attempt failed: " + err.Error()
	a.mu.Unlock()
	if errors.Is(err, pleooauth.ErrAccessDenied) {
		render(w, http.StatusForbidden, "Not connected", "You chose not to connect Pleo. You can connect at any time.", true)
		return
	}
	render(w, http.StatusBadRequest, "Connecting failed", "Connecting to Pleo did not complete; please start again.", true)
}

// Employee is what the backend reads from Pleo's GET /v2/employees.
type Employee struct {
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Email     string `json:"email"`
}

// employees calls Pleo's API with the stored authorization.
func (a *App) employees(r *http.Request) ([]Employee, error) {
	client := &http.Client{Transport: &oauth2.Transport{Source: a.tokenSource(), Base: a.cfg.HTTPClient.Transport}}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, strings.TrimSuffix(a.cfg.APIBaseURL, "/")+"/v2/employees", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		// The token source hands out only unexpired tokens: a 401 means the
		// authorisation was revoked.
		return nil, fmt.Errorf("%w: the Pleo API answered %s", pleooauth.ErrReauthorizationRequired, resp.Status)
	default:
		return nil, fmt.Errorf("the Pleo API answered %s", resp.Status)
	}
	var body struct{ Data []Employee }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("reading Pleo's answer: %w", err)
	}
	return body.Data, nil
}

func (a *App) employeesJSON(w http.ResponseWriter, r *http.Request) {
	list, err := a.employees(r)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case errors.Is(err, pleooauth.ErrNoToken), errors.Is(err, pleooauth.ErrReauthorizationRequired):
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "not connected to Pleo", "connect": ConnectPath})
	case err != nil:
		w.WriteHeader(http.StatusBadGateway)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	default:
		_ = json.NewEncoder(w).Encode(map[string]any{"employees": list})
	}
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	list, err := a.employees(r)
	switch {
	case errors.Is(err, pleooauth.ErrNoToken):
		render(w, http.StatusOK, "Not connected", "Connect your Pleo account to see your employees here.", true)
	case errors.Is(err, pleooauth.ErrReauthorizationRequired):
		render(w, http.StatusOK, "Connection expired", "Pleo asks you to connect again.", true)
	case err != nil:
		render(w, http.StatusBadGateway, "Pleo is not answering", err.Error(), false)
	default:
		var lines []string
		for _, e := range list {
			lines = append(lines, e.FirstName+" "+e.LastName+" <"+e.Email+">")
		}
		render(w, http.StatusOK, "Your Pleo employees", strings.Join(lines, "\n"), false)
	}
}

// settings is the Settings URI: where users manage the integration from
// within Pleo.
func (a *App) settings(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	state := a.state
	a.mu.Unlock()
	if state == "" {
		state = "not connected yet"
	}
	render(w, http.StatusOK, "Integration settings", "Pleo connection: "+state, true)
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><pre>{{.Body}}</pre>
{{if .Connect}}<p><a href="` + ConnectPath + `">Connect Pleo</a></p>{{end}}
<p><a href="` + HomePath + `">Home</a> · <a href="` + SettingsPath + `">Settings</a></p></body></html>
`))

func render(w http.ResponseWriter, status int, title, body string, connect bool) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = page.Execute(w, map[string]any{"Title": title, "Body": body, "Connect": connect})
}
