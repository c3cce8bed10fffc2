// Package exampleapp is the example integration backend: a partner's web app
// whose customers each connect their own Pleo company. It serves the pages
// a partner's backend serves for Pleo (the Initiation URI, the redirect
// URI, the Settings URI), a page per connection that shows its health and
// last events and calls Pleo's API with that connection's token, a banner
// on a connection that needs attention, and disconnecting. Every instance
// over the same store and keys serves every customer. examples/backend
// runs it as a server and 'pleo-oauth demo' runs two instances of it in
// process; it is internal so that the command does not import an example.
// A partner starting from the example copies examples/backend and this
// package.
package exampleapp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/partnerkit/pleooauth/connect"
)

// The backend's paths. A registration for it names them: initiation_uri
// .../pleo/connect, redirect_uris .../oauth/callback, settings_uri
// .../pleo/settings.
const (
	HomePath        = "/"
	SignInPath      = "/signin"
	ConnectPath     = "/pleo/connect"
	CallbackPath    = "/oauth/callback"
	SettingsPath    = "/pleo/settings"
	ConnectionsPath = "/connections/" // + ID, + ID + "/employees.json", + ID + "/disconnect"
)

// Config is what the backend needs.
type Config struct {
	Manager  *connect.Manager // the connections, shared by every instance through its store
	FlowKey  []byte           // AES key shared by every instance (16, 24 or 32 bytes); also signs the stand-in sign-in cookie
	Accounts Accounts         // the app's own customers; nil keeps them in memory
	// Logger gets what went wrong inside (a store's or Pleo's error, which
	// may name the database, its user or an internal address); the pages
	// say only that something failed. nil logs nothing.
	Logger *slog.Logger
}

// App is the backend's http.Handler.
type App struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// accountCookie holds the signed-in customer. It is a stand-in for the
// partner's own login, which a real backend has already.
const accountCookie = "example_account"

// New builds the backend.
func New(cfg Config) (*App, error) {
	if cfg.Manager == nil {
		return nil, errors.New("app: Config.Manager is required")
	}
	flow, err := connect.NewFlow(cfg.Manager.Config(), cfg.FlowKey)
	if err != nil {
		return nil, err
	}
	if cfg.Accounts == nil {
		cfg.Accounts = &MemoryAccounts{}
	}
	a := &App{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	h := &connect.Handlers{
		Flow:    flow,
		Manager: cfg.Manager,
		Account: a.account,
		OnConnected: func(w http.ResponseWriter, r *http.Request, c *connect.Connection) {
			http.Redirect(w, r, ConnectionsPath+url.PathEscape(c.ID), http.StatusFound)
		},
		OnError: a.connectFailed,
	}
	a.mux.HandleFunc("GET /{$}", a.home)
	a.mux.HandleFunc("POST "+SignInPath, a.signIn)
	a.mux.Handle("GET "+ConnectPath, h.Connect())
	a.mux.Handle("GET "+CallbackPath, h.Callback())
	a.mux.HandleFunc("GET "+SettingsPath, a.home)
	a.mux.HandleFunc("GET "+ConnectionsPath+"{id}", a.connection)
	a.mux.HandleFunc("GET "+ConnectionsPath+"{id}/employees.json", a.employeesJSON)
	a.mux.HandleFunc("POST "+ConnectionsPath+"{id}/disconnect", a.disconnect)
	return a, nil
}

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// sign makes the stand-in sign-in cookie's value: the name and an HMAC of
// it, so that a customer cannot claim another's name by editing the cookie.
func (a *App) sign(name string) string {
	mac := hmac.New(sha256.New, a.cfg.FlowKey)
	mac.Write([]byte("example sign-in\x00" + name))
	return base64.RawURLEncoding.EncodeToString([]byte(name)) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// errNotSignedIn: the request has no valid sign-in cookie.
var errNotSignedIn = errors.New("not signed in")

// account is the signed-in customer, or an error. An empty name is no
// customer: it would be the account of no connection, or of every one.
func (a *App) account(r *http.Request) (string, error) {
	c, err := r.Cookie(accountCookie)
	if err != nil {
		return "", errNotSignedIn
	}
	enc, _, _ := strings.Cut(c.Value, ".")
	name, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(name) == 0 || !hmac.Equal([]byte(a.sign(string(name))), []byte(c.Value)) {
		return "", errNotSignedIn
	}
	return string(name), nil
}

func (a *App) signIn(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" || len(name) > 64 {
		render(w, http.StatusBadRequest, page{Title: "Sign in", Error: "Give a name of 1 to 64 characters."})
		return
	}
	if err := a.cfg.Accounts.SignIn(r.Context(), name); err != nil {
		a.log.ErrorContext(r.Context(), "exampleapp: signing in", "err", err)
		render(w, http.StatusInternalServerError, page{Title: "Sign in", Error: "Signing in failed; try again."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: accountCookie, Value: a.sign(name), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, HomePath, http.StatusSeeOther)
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	account, err := a.account(r)
	if err != nil {
		render(w, http.StatusOK, page{Title: "Sign in"})
		return
	}
	var conns []connect.Connection
	for c, err := range a.cfg.Manager.ForAccount(account).List(r.Context(), connect.Query{}) {
		if err != nil {
			a.log.ErrorContext(r.Context(), "exampleapp: listing the connections", "account", account, "err", err)
			render(w, http.StatusInternalServerError, page{Title: "Your Pleo connections", Account: account, Error: "The connections could not be read."})
			return
		}
		conns = append(conns, c)
	}
	render(w, http.StatusOK, page{Title: "Your Pleo connections", Account: account, Connections: conns})
}

// owned returns the signed-in customer's view of the connections and the
// connection named in the path, if it is the customer's; otherwise it
// answers 404 (another customer's connection is not there for this one)
// and returns nil.
func (a *App) owned(w http.ResponseWriter, r *http.Request) (*connect.AccountConnections, *connect.Connection) {
	account, err := a.account(r)
	if err != nil {
		http.Redirect(w, r, HomePath, http.StatusSeeOther)
		return nil, nil
	}
	conns := a.cfg.Manager.ForAccount(account)
	c, err := conns.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, connect.ErrNoConnection):
		render(w, http.StatusNotFound, page{Title: "Not found", Account: account, Error: "You have no such connection."})
		return nil, nil
	case err != nil:
		a.log.ErrorContext(r.Context(), "exampleapp: reading the connection", "account", account, "connection", r.PathValue("id"), "err", err)
		render(w, http.StatusInternalServerError, page{Title: "Pleo connection", Account: account, Error: "The connection could not be read; try again."})
		return nil, nil
	}
	return conns, c
}

// Employee is what the backend reads from Pleo's GET /v2/employees.
type Employee struct {
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Email     string `json:"email"`
}

// employees calls Pleo's API as the account's connection. Its errors are
// for the log, not for a page.
func (a *App) employees(r *http.Request, conns *connect.AccountConnections, id string) ([]Employee, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, a.cfg.Manager.Endpoints().APIBaseURL+"/v2/employees", nil)
	if err != nil {
		return nil, err
	}
	client, err := conns.Client(r.Context(), id)
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
		// The Manager hands out only unexpired tokens: a 401 may mean the
		// grant was revoked at Pleo. The Manager checks, and marks the
		// connection if so. "" names the token the Manager has cached: the
		// one the client just sent.
		if err := a.cfg.Manager.ReportUnauthorized(r.Context(), id, ""); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("the Pleo API answered %s", resp.Status)
	default:
		return nil, fmt.Errorf("the Pleo API answered %s", resp.Status)
	}
	var body struct{ Data []Employee }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("reading Pleo's answer: %w", err)
	}
	return body.Data, nil
}

// notAnswering is what a page says when calling Pleo failed, whatever the
// cause: the cause is logged.
const notAnswering = "Pleo is not answering; try again shortly."

func (a *App) connection(w http.ResponseWriter, r *http.Request) {
	conns, c := a.owned(w, r)
	if c == nil {
		return
	}
	p := page{Title: "Pleo connection", Account: c.Account, Connection: c}
	if c.Status == connect.StatusActive {
		list, err := a.employees(r, conns, c.ID)
		switch {
		case errors.Is(err, connect.ErrReauthorizationRequired), errors.Is(err, connect.ErrDisconnected):
			p.Reconnect = true
		case err != nil:
			a.log.ErrorContext(r.Context(), "exampleapp: calling Pleo's API", "account", c.Account, "connection", c.ID, "err", err)
			p.Error = notAnswering
		default:
			p.Employees = list
		}
		// The call may have refreshed the tokens, or failed to, and so
		// changed the connection's status or health: show it as it is now.
		if fresh, err := conns.Get(r.Context(), c.ID); err == nil {
			p.Connection = fresh
		} else {
			a.log.WarnContext(r.Context(), "exampleapp: reading the connection again", "account", c.Account, "connection", c.ID, "err", err)
		}
	}
	p.Reconnect = p.Reconnect || p.Connection.Status != connect.StatusActive
	a.history(r.Context(), &p)
	render(w, http.StatusOK, p)
}

// recentEvents is how many of a connection's events its page shows.
const recentEvents = 10

// history puts the last events of p's connection on p, newest first, or
// a generic sentence if they could not be read.
func (a *App) history(ctx context.Context, p *page) {
	c := p.Connection
	evs, err := a.events(ctx, c.Account, c.ID)
	if err != nil {
		a.log.ErrorContext(ctx, "exampleapp: reading the events", "account", c.Account, "connection", c.ID, "err", err)
		p.EventsError = "The connection's history could not be read."
		return
	}
	p.Events = evs
}

// events returns the last recentEvents events of the connection id, newest
// first: those recorded while it was account's, so that a company that an
// earlier customer disconnected and this one connected shows none of the
// earlier customer's history. The caller has checked that the connection
// is account's (Manager.ForAccount).
//
// It reads the whole log from its start on every call, which is fine for
// an example's few events and not for a real backend: there, keep the
// events WithEventHandler delivers in a table of your own, indexed by
// connection, and read a connection's last few from it.
func (a *App) events(ctx context.Context, account, id string) ([]connect.Event, error) {
	var last []connect.Event
	for after := int64(0); ; {
		page, err := a.cfg.Manager.Events(ctx, after)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.ConnectionID != id || e.Account != account {
				continue
			}
			if last = append(last, e); len(last) > recentEvents {
				last = last[1:]
			}
		}
		after = page[len(page)-1].Seq
	}
	slices.Reverse(last)
	return last, nil
}

func (a *App) employeesJSON(w http.ResponseWriter, r *http.Request) {
	conns, c := a.owned(w, r)
	if c == nil {
		return
	}
	list, err := a.employees(r, conns, c.ID)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case errors.Is(err, connect.ErrReauthorizationRequired), errors.Is(err, connect.ErrDisconnected):
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "connect Pleo again", "connect": ConnectPath})
	case err != nil:
		a.log.ErrorContext(r.Context(), "exampleapp: calling Pleo's API", "account", c.Account, "connection", c.ID, "err", err)
		w.WriteHeader(http.StatusBadGateway)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": notAnswering})
	default:
		_ = json.NewEncoder(w).Encode(map[string]any{"employees": list})
	}
}

func (a *App) disconnect(w http.ResponseWriter, r *http.Request) {
	conns, c := a.owned(w, r)
	if c == nil {
		return
	}
	if err := conns.Disconnect(r.Context(), c.ID); err != nil {
		a.log.ErrorContext(r.Context(), "exampleapp: disconnecting", "account", c.Account, "connection", c.ID, "err", err)
		p := page{Title: "Pleo connection", Account: c.Account, Connection: c, Error: "Disconnecting failed; try again."}
		a.history(r.Context(), &p)
		render(w, http.StatusBadGateway, p)
		return
	}
	http.Redirect(w, r, HomePath, http.StatusSeeOther)
}

func (a *App) connectFailed(w http.ResponseWriter, r *http.Request, err error) {
	account, _ := a.account(r)
	switch {
	case errors.Is(err, connect.ErrNoAccount):
		render(w, http.StatusUnauthorized, page{Title: "Sign in", Error: "Sign in first, then connect Pleo."})
	case errors.Is(err, connect.ErrAccessDenied):
		render(w, http.StatusForbidden, page{Title: "Not connected", Account: account, Error: "You chose not to connect Pleo. You can connect at any time."})
	case errors.Is(err, connect.ErrConnectedToAnotherAccount):
		// Which account has it is not this customer's to know.
		render(w, http.StatusConflict, page{Title: "Not connected", Account: account, Error: "This Pleo company is already connected to another account here. Ask whoever connected it to disconnect it first."})
	default:
		a.log.WarnContext(r.Context(), "exampleapp: connecting failed", "account", account, "err", err)
		render(w, http.StatusBadRequest, page{Title: "Connecting failed", Account: account, Error: "Connecting to Pleo did not complete; please start again."})
	}
}

// page is what the template shows.
type page struct {
	Title       string
	Account     string
	Error       string
	Connections []connect.Connection
	Connection  *connect.Connection
	Employees   []Employee
	Reconnect   bool
	Events      []connect.Event // the connection's last events, newest first
	EventsError string          // why they are not shown
}

// attention is what the customer is told about a connection that needs it,
// or "": a broken one (Pleo refused its grant) must be connected again; a
// failing one (refreshes have failed for a while without Pleo refusing the
// grant) is retried on its own. Generic sentences only: what went wrong
// inside is for the log.
func attention(c connect.Connection) string {
	switch {
	case c.Status == connect.StatusReauthorizationRequired:
		return "Pleo no longer accepts this connection, so nothing can be read from this company. Reconnect Pleo to resume."
	case c.Status == connect.StatusActive && c.Health == connect.HealthFailing:
		return "Pleo has not been reachable for this connection since " + when(c.FailingSince) +
			". It is retried automatically and resumes on its own once Pleo answers; you do not need to do anything."
	}
	return ""
}

// when shows a time on a page, in UTC.
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 MST")
}

// kind names an event for the customer whose connection it is. A company
// that moved to this customer's account from another's (connected here
// after the other disconnected it, or taken over under
// connect.WithAccountTakeover) was connected, for this customer: who had
// it before is not theirs to know.
func kind(e connect.Event) string {
	if k := e.Kind(); k != connect.EventAccountChanged {
		return k
	}
	return connect.EventConnected
}

var tmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"path":      func(id string) string { return ConnectionsPath + url.PathEscape(id) },
	"join":      func(s []string) string { return strings.Join(s, " ") },
	"attention": attention,
	"when":      when,
	"kind":      kind,
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · Example Client</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{padding:.25rem .75rem;text-align:left;vertical-align:top;border-bottom:1px solid #ddd}th{white-space:nowrap}
.error{color:#a00}.note{color:#666;font-size:.9rem}
.banner{border:1px solid #b45309;border-left-width:.4rem;background:#fff7ed;color:#7c2d12;padding:.5rem 1rem;margin:1rem 0}
.attention{color:#9a3412;font-size:.9rem;margin:.25rem 0}</style></head>
<body><h1>{{.Title}}</h1>
{{with .Connection}}{{with attention .}}<p class="banner" role="alert">{{.}}</p>{{end}}{{end}}
{{with .Error}}<p class="error" role="alert">{{.}}</p>{{end}}
{{if not .Account}}
<form method="post" action="` + SignInPath + `">
<p class="note">A stand-in for your app's own login: any name signs in.</p>
<label for="name">Your name</label> <input id="name" name="name" required maxlength="64">
<button type="submit">Sign in</button></form>
{{else}}
<p>Signed in as <strong>{{.Account}}</strong>.</p>
{{with .Connection}}
<table><tr><th scope="row">Company</th><td>{{.ID}}</td></tr>
<tr><th scope="row">Status</th><td>{{.Status}}</td></tr>
<tr><th scope="row">Health</th><td>{{if eq .Health "failing"}}failing since {{when .FailingSince}}{{else}}ok{{end}}</td></tr>
<tr><th scope="row">Last error</th><td>{{with .LastError}}{{.}}{{else}}none{{end}}</td></tr>
<tr><th scope="row">Scopes</th><td>{{join .Scopes}}</td></tr>
<tr><th scope="row">Last refresh</th><td>{{when .LastRefreshAt}}</td></tr>
<tr><th scope="row">Next keep-alive</th><td>{{if and (eq .Status "active") (not .KeepAliveAt.IsZero)}}{{when .KeepAliveAt}}{{else}}none{{end}}</td></tr></table>
{{end}}
{{if .Employees}}<h2>Employees</h2><ul>{{range .Employees}}<li>{{.FirstName}} {{.LastName}} &lt;{{.Email}}&gt;</li>{{end}}</ul>{{end}}
{{if .Reconnect}}<form method="get" action="` + ConnectPath + `"><button type="submit">Reconnect Pleo</button></form>{{end}}
{{with .Connection}}{{if eq .Status "active"}}<form method="post" action="{{path .ID}}/disconnect"><button type="submit">Disconnect</button></form>{{end}}{{end}}
{{if .Connection}}<h2 id="events">Last events</h2>
{{with .EventsError}}<p class="error">{{.}}</p>{{else}}{{if .Events}}<table><tr><th scope="col">Event</th><th scope="col">When</th><th scope="col">Reason</th></tr>
{{range .Events}}<tr><td>{{kind .}}</td><td>{{when .At}}</td><td>{{.Reason}}</td></tr>{{end}}</table>{{else}}<p class="note">None yet.</p>{{end}}{{end}}{{end}}
{{if .Connections}}<table><tr><th scope="col">Company</th><th scope="col">Status</th><th scope="col">Health</th></tr>
{{range .Connections}}<tr><td><a href="{{path .ID}}">{{.ID}}</a>{{with attention .}}<p class="attention">{{.}}</p>{{end}}</td><td>{{.Status}}</td><td>{{if eq .Health "failing"}}failing{{else}}ok{{end}}</td></tr>{{end}}</table>{{end}}
{{if not .Connection}}<form method="get" action="` + ConnectPath + `"><button type="submit">Connect a Pleo company</button></form>{{end}}
<p><a href="` + HomePath + `">Your connections</a></p>
{{end}}
</body></html>
`))

func render(w http.ResponseWriter, status int, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = tmpl.Execute(w, p)
}
