// Command backend is an example Pleo integration backend on net/http: a
// partner app whose customers each connect their own Pleo company. It
// serves the Initiation URI (/pleo/connect), the redirect URI
// (/oauth/callback), the Settings URI (/pleo/settings), a page per
// connection that shows its health and last events and calls Pleo's API,
// and disconnecting. Its handler is package internal/exampleapp, which
// 'pleo-oauth demo' runs too; a partner starting from this example copies
// both.
//
// Connections are kept in a SQLite file in the working directory
// (pleo-connections.db, created on first run; -db names another), or in PostgreSQL when
// DATABASE_URL is set. The keys come from PLEO_KEYS (base64 secrets
// separated by commas, the first one sealing: connect.ParseKeys derives the
// flow's key and the tokens' from them); against the embedded fake Pleo one
// is generated when unset, with a warning. The fake Pleo listens on
// 127.0.0.1:9090, with a consent page to pick a company on; a second
// instance uses the first one's:
//
//	go run ./examples/backend                       # http://localhost:3001/
//	DATABASE_URL=postgres://... PLEO_KEYS=... go run ./examples/backend -addr :3001
//	DATABASE_URL=postgres://... PLEO_KEYS=... go run ./examples/backend -addr :3002
//
// Against Pleo's Staging, with the credentials Pleo sent and a
// registration whose redirect URI is http://localhost:3001/oauth/callback
// (this one's, registered with Pleo):
//
//	PLEO_ENV=staging PLEO_CLIENT_ID=... PLEO_CLIENT_SECRET_FILE=... \
//	  PLEO_KEYS=... go run ./examples/backend
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/pgstore"
	"github.com/partnerkit/pleooauth/connect/sqlitestore"
	"github.com/partnerkit/pleooauth/internal/exampleapp"
	"github.com/partnerkit/pleooauth/pleooauthtest"
)

func main() {
	registration := flag.String("registration", "examples/backend/registration.yaml", "the registration manifest")
	addr := flag.String("addr", "", "address to listen on (default: the redirect URI's host and port)")
	db := flag.String("db", "pleo-connections.db", "the SQLite file for connections, when DATABASE_URL is not set")
	pleoAddr := flag.String("fake-pleo", "127.0.0.1:9090", "where the embedded fake Pleo listens; a second instance uses the first one's")
	flag.Parse()
	if err := serve(context.Background(), *registration, *addr, *db, *pleoAddr); err != nil {
		log.Fatal(err)
	}
}

// The fake Pleo's client: fixed, so that every instance on this machine
// uses the same one. Never use them against Pleo.
const (
	fakeClientID     = "example-backend"
	fakeClientSecret = "example-backend-fake-secret-0123456789"
)

// fakeCompanies are the companies the fake Pleo's consent page offers.
var fakeCompanies = []pleooauthtest.Company{
	{Subject: "urn:pleo:company:0a1b2c3d-0000-4000-8000-000000000001", Name: "Acme ApS"},
	{Subject: "urn:pleo:company:0a1b2c3d-0000-4000-8000-000000000002", Name: "Globex A/S"},
	{Subject: "urn:pleo:company:0a1b2c3d-0000-4000-8000-000000000003", Name: "Initech Oy"},
}

func serve(ctx context.Context, registrationFile, addr, dbFile, pleoAddr string) error {
	data, err := os.ReadFile(registrationFile)
	if err != nil {
		return err
	}
	reg, err := pleooauth.ParseRegistration(data)
	if err != nil {
		return err
	}
	dev := os.Getenv("PLEO_ENV") == ""
	keys, err := loadKeys(dev)
	if err != nil {
		return err
	}
	store, accountsDB, err := openStore(ctx, dbFile)
	if err != nil {
		return err
	}
	accounts, err := exampleapp.NewSQLAccounts(ctx, accountsDB)
	if err != nil {
		return err
	}

	// What goes wrong inside (a database's or Pleo's error) is logged here;
	// the pages say only that something failed.
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := exampleapp.Config{FlowKey: keys.Flow(), Accounts: accounts, Logger: logger}
	opts := []connect.Option{connect.WithKeys(keys.Token()...), connect.WithLogger(logger)}
	switch os.Getenv("PLEO_ENV") {
	case "staging":
		creds, err := pleooauth.CredentialsFromEnv()
		if err != nil {
			return err
		}
		oc, err := reg.OAuth2Config(pleooauth.Staging, creds)
		if err != nil {
			return err
		}
		if cfg.Manager, err = connect.NewManager(oc, store, append(opts, connect.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))...); err != nil {
			return err
		}
		log.Printf("using Pleo's Staging environment as client %s", creds.ClientID)
	case "":
		// A fake Pleo on this machine: made-up credentials, a real flow, a
		// consent page to pick a company on. The first instance starts it;
		// the others use it.
		creds, err := pleooauth.NewCredentials(fakeClientID, fakeClientSecret)
		if err != nil {
			return err
		}
		fakeURL := "http://" + pleoAddr
		if ln, err := net.Listen("tcp", pleoAddr); err == nil {
			fake := pleooauthtest.NewServer(reg, creds, pleooauthtest.WithListener(ln), pleooauthtest.WithConsentPage(fakeCompanies...))
			defer fake.Close()
			log.Printf("started a fake Pleo at %s (set PLEO_ENV=staging for the real one)", fakeURL)
		} else {
			log.Printf("using the fake Pleo another instance started at %s", fakeURL)
		}
		endpoints := pleooauthtest.EndpointsAt(fakeURL)
		oc, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(endpoints))
		if err != nil {
			return err
		}
		if cfg.Manager, err = connect.NewManager(oc, store, append(opts, connect.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}),
			connect.WithEndpoints(endpoints))...); err != nil {
			return err
		}
	default:
		return errors.New("PLEO_ENV must be empty (a fake Pleo) or staging")
	}
	// Keep every connection alive, in every instance: refreshed once a day
	// across all of them, an uninstalled company found within a day.
	go func() { _ = cfg.Manager.Run(ctx) }()
	backend, err := exampleapp.New(cfg)
	if err != nil {
		return err
	}
	if addr == "" {
		u, err := url.Parse(cfg.Manager.Config().RedirectURL)
		if err != nil {
			return err
		}
		addr = u.Host
		if u.Port() == "" {
			addr = u.Host + ":80"
		}
	}
	log.Printf("listening on %s", addr)
	srv := &http.Server{Addr: addr, Handler: backend, ReadHeaderTimeout: 10 * time.Second}
	return fmt.Errorf("serving: %w", srv.ListenAndServe())
}

// openStore opens PostgreSQL when DATABASE_URL is set, SQLite otherwise,
// and returns the store and the database the app keeps its accounts in.
// A DATABASE_URL set but empty is refused: it is a PostgreSQL URL gone
// missing, and neither pgx's defaults nor a SQLite file of this instance's
// own is what was meant.
func openStore(ctx context.Context, dbFile string) (connect.Store, *sql.DB, error) {
	if dsn, set := os.LookupEnv("DATABASE_URL"); set {
		if strings.TrimSpace(dsn) == "" {
			return nil, nil, errors.New("DATABASE_URL is set but empty: set it to a PostgreSQL URL (postgres://user:password@host:5432/dbname), or unset it to keep connections in the SQLite file")
		}
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			return nil, nil, err
		}
		log.Printf("connections in PostgreSQL")
		store, err := pgstore.New(ctx, pool)
		return store, stdlib.OpenDBFromPool(pool), err
	}
	log.Printf("connections in the SQLite file %s", dbFile)
	store, err := sqlitestore.Open(ctx, dbFile)
	if err != nil {
		return nil, nil, err
	}
	return store, store.DB(), nil
}

// loadKeys reads the keys from PLEO_KEYS (connect.ParseKeys: base64
// secrets separated by commas, the first one sealing). In local
// development (the fake Pleo) a missing one is generated and printed, with
// a warning: instances sharing a store need the same keys.
func loadKeys(dev bool) (connect.Keys, error) {
	v := os.Getenv("PLEO_KEYS")
	if v == "" {
		if !dev {
			return connect.Keys{}, errors.New("PLEO_KEYS is not set: give a base64 secret of 32 random bytes (openssl rand -base64 32)")
		}
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		v = base64.StdEncoding.EncodeToString(k)
		log.Printf("WARNING: PLEO_KEYS is not set; generated one for local development only. Every instance sharing the store needs the same: PLEO_KEYS=%s", v)
	}
	return connect.ParseKeys(v)
}
