// Command backend is an example Pleo integration backend on net/http. It
// serves the Initiation URI (/pleo/connect), the redirect URI
// (/oauth/callback), the Settings URI (/pleo/settings) and a home page that
// calls Pleo's API with the stored token.
//
// By default it runs against an embedded fake Pleo (pleooauthtest), with no
// network and no credentials:
//
//	go run ./examples/backend
//
// and open http://localhost:3000/. Against Pleo's Staging, with the
// credentials Pleo sent and a registration whose redirect URI is
// http://localhost:3000/oauth/callback:
//
//	PLEO_ENV=staging PLEO_CLIENT_ID=... PLEO_CLIENT_SECRET_FILE=... \
//	  go run ./examples/backend -registration examples/staging-loopback.yaml
package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/examples/backend/app"
	"github.com/partnerkit/pleooauth/pleooauthtest"
)

func main() {
	registration := flag.String("registration", "examples/staging-loopback.yaml", "the registration manifest")
	tokenFile := flag.String("token-file", "", "keep the tokens in this file (0600) instead of in memory")
	flag.Parse()
	if err := serve(*registration, *tokenFile); err != nil {
		log.Fatal(err)
	}
}

func serve(registrationFile, tokenFile string) error {
	data, err := os.ReadFile(registrationFile)
	if err != nil {
		return err
	}
	reg, err := pleooauth.ParseRegistration(data)
	if err != nil {
		return err
	}
	cfg := app.Config{FlowKey: make([]byte, 32), Store: &pleooauth.MemoryStore{}}
	_, _ = rand.Read(cfg.FlowKey) // one instance: a key per process is enough
	if tokenFile != "" {
		cfg.Store = &pleooauth.FileStore{Path: tokenFile}
	}

	switch os.Getenv("PLEO_ENV") {
	case "staging":
		creds, err := pleooauth.CredentialsFromEnv()
		if err != nil {
			return err
		}
		if cfg.OAuth2, err = reg.OAuth2Config(pleooauth.Staging, creds); err != nil {
			return err
		}
		cfg.APIBaseURL = "https://external.staging.pleo.io"
		log.Printf("using Pleo's Staging environment as client %s", creds.ClientID)
	case "":
		// A fake Pleo in this process: made-up credentials, a real flow.
		creds, err := pleooauth.NewCredentials("example-backend", rand.Text())
		if err != nil {
			return err
		}
		fake := pleooauthtest.NewServer(reg, creds)
		defer fake.Close()
		if cfg.OAuth2, err = reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoint(fake.Endpoint())); err != nil {
			return err
		}
		cfg.APIBaseURL = fake.URL
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
		log.Printf("using an embedded fake Pleo at %s (set PLEO_ENV=staging for the real one)", fake.URL)
	default:
		return errors.New("PLEO_ENV must be empty (a fake Pleo) or staging")
	}

	backend, err := app.New(cfg)
	if err != nil {
		return err
	}
	u, err := url.Parse(cfg.OAuth2.RedirectURL)
	if err != nil {
		return err
	}
	addr := u.Host
	if u.Port() == "" {
		addr = u.Host + ":80"
	}
	log.Printf("listening on %s; open http://%s/", addr, u.Host)
	srv := &http.Server{Addr: addr, Handler: backend, ReadHeaderTimeout: 10 * time.Second}
	return fmt.Errorf("serving: %w", srv.ListenAndServe())
}
