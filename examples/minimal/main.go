// Command minimal is the smallest real Pleo integration backend: tenants connect their Pleo
// companies and see each one's employees from Pleo's API. docs/connections.md runs it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/sqlitestore"
	"github.com/partnerkit/pleooauth/pleooauthtest"
)

func main() {
	data, errData := os.ReadFile("examples/minimal/registration.yaml")
	store, err := sqlitestore.Open(context.Background(), "minimal.db")
	if err = errors.Join(errData, err); err != nil {
		log.Fatal(err)
	}
	app, err := newApp(data, store, os.Getenv("PLEO_FAKE_URL"))
	if err == nil {
		err = http.ListenAndServe("localhost:3000", app)
	}
	log.Fatal(err)
}

// newApp is the backend: keys in PLEO_KEYS, the client in PLEO_CLIENT_ID and PLEO_CLIENT_SECRET,
// Pleo at fakeURL or Staging. A tenant reaches its own connections only; an empty one, none.
func newApp(registration []byte, store connect.Store, fakeURL string) (http.Handler, error) {
	keys, errKeys := connect.ParseKeys(os.Getenv("PLEO_KEYS"))
	creds, errCreds := pleooauth.CredentialsFromEnv()
	reg, err := pleooauth.ParseRegistration(registration)
	if err = errors.Join(errKeys, errCreds, err); err != nil {
		return nil, err
	}
	pleo := pleooauth.StagingEndpoints
	if fakeURL != "" {
		pleo = pleooauthtest.EndpointsAt(fakeURL)
	}
	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(pleo))
	if err != nil {
		return nil, err
	}
	mgr, errMgr := connect.NewManager(cfg, store,
		connect.WithKeys(keys.Token()...), connect.WithEndpoints(pleo))
	flow, errFlow := connect.NewFlow(cfg, keys.Flow())
	if err := errors.Join(errMgr, errFlow); err != nil {
		return nil, err
	}
	// The tenant the request is for. Anyone can set ?tenant=: a real app reads its session.
	tenant := func(r *http.Request) string { return r.URL.Query().Get("tenant") }
	h := &connect.Handlers{Flow: flow, Manager: mgr,
		Account: func(r *http.Request) (string, error) { return tenant(r), nil }}
	mux := http.NewServeMux()
	mux.Handle("GET /pleo/connect", h.Connect())    // the registration's initiation_uri
	mux.Handle("GET /oauth/callback", h.Callback()) // and its redirect_uris
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		for c, err := range mgr.ForAccount(tenant(r)).List(r.Context(), connect.Query{}) {
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			resp, err := mgr.Client(r.Context(), c.ID).Get(mgr.Endpoints().APIBaseURL + "/v2/employees")
			if err != nil {
				fmt.Fprintln(w, c.ID, c.Status, err)
				continue
			}
			fmt.Fprintln(w, c.ID, c.Status, resp.Status)
			io.Copy(w, resp.Body)
			resp.Body.Close()
		}
	})
	return mux, nil
}
