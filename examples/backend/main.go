// Command backend is an example Pleo integration backend on net/http: a
// partner app whose customers each connect their own Pleo company. It
// serves the Initiation URI (/pleo/connect), the redirect URI
// (/oauth/callback), the Settings URI (/pleo/settings), a page per
// connection that calls Pleo's API, and disconnecting.
//
// Connections are kept in a SQLite file beside the working directory
// (pleo-connections.db, created on first run), or in PostgreSQL when
// DATABASE_URL is set. The flow key and the token keys come from
// PLEO_FLOW_KEY and PLEO_TOKEN_KEYS (base64; several token keys separated by
// commas, the first one sealing); against the embedded fake Pleo they are
// generated when unset, with a warning.
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
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/pgstore"
	"github.com/partnerkit/pleooauth/connect/sqlitestore"
	"github.com/partnerkit/pleooauth/examples/backend/app"
	"github.com/partnerkit/pleooauth/pleooauthtest"
)

func main() {
	registration := flag.String("registration", "examples/staging-loopback.yaml", "the registration manifest")
	addr := flag.String("addr", "", "address to listen on (default: the redirect URI's host and port)")
	db := flag.String("db", "pleo-connections.db", "the SQLite file for connections, when DATABASE_URL is not set")
	flag.Parse()
	if err := serve(context.Background(), *registration, *addr, *db); err != nil {
		log.Fatal(err)
	}
}

func serve(ctx context.Context, registrationFile, addr, dbFile string) error {
	data, err := os.ReadFile(registrationFile)
	if err != nil {
		return err
	}
	reg, err := pleooauth.ParseRegistration(data)
	if err != nil {
		return err
	}
	dev := os.Getenv("PLEO_ENV") == ""
	flowKey, err := key("PLEO_FLOW_KEY", dev)
	if err != nil {
		return err
	}
	tokenKeys, err := keys("PLEO_TOKEN_KEYS", dev)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, dbFile)
	if err != nil {
		return err
	}

	var cfg app.Config
	var opts []connect.Option
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
		cfg.APIBaseURL = connect.StagingAPIBaseURL
		opts = append(opts, connect.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))
		if cfg.Manager, err = connect.NewManager(oc, store, append(opts, connect.WithKeys(tokenKeys...))...); err != nil {
			return err
		}
		log.Printf("using Pleo's Staging environment as client %s", creds.ClientID)
	case "":
		// A fake Pleo in this process: made-up credentials, a real flow.
		creds, err := pleooauth.NewCredentials("example-backend", rand.Text())
		if err != nil {
			return err
		}
		fake := pleooauthtest.NewServer(reg, creds)
		defer fake.Close()
		oc, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoint(fake.Endpoint()))
		if err != nil {
			return err
		}
		cfg.APIBaseURL = fake.URL
		if cfg.Manager, err = connect.NewManager(oc, store, connect.WithKeys(tokenKeys...), connect.WithHTTPClient(fake.Client()),
			connect.WithIntrospectionURL(fake.IntrospectionURL()), connect.WithAPIBaseURL(fake.URL)); err != nil {
			return err
		}
		log.Printf("using an embedded fake Pleo at %s (set PLEO_ENV=staging for the real one)", fake.URL)
	default:
		return errors.New("PLEO_ENV must be empty (a fake Pleo) or staging")
	}
	cfg.FlowKey = flowKey
	backend, err := app.New(cfg)
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

// openStore opens PostgreSQL when DATABASE_URL is set, SQLite otherwise.
func openStore(ctx context.Context, dbFile string) (connect.Store, error) {
	if dsn := os.Getenv("DATABASE_URL"); dsn != "" {
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			return nil, err
		}
		log.Printf("connections in PostgreSQL")
		return pgstore.New(ctx, pool)
	}
	log.Printf("connections in the SQLite file %s", dbFile)
	return sqlitestore.Open(ctx, dbFile)
}

// key reads a base64 AES key from the environment. In local development
// (the fake Pleo) a missing one is generated and printed, with a warning:
// instances sharing a store need the same keys.
func key(name string, dev bool) ([]byte, error) {
	ks, err := keys(name, dev)
	if err != nil {
		return nil, err
	}
	return ks[0], nil
}

func keys(name string, dev bool) ([][]byte, error) {
	v := os.Getenv(name)
	if v == "" {
		if !dev {
			return nil, fmt.Errorf("%s is not set: give a base64 key of 32 random bytes (openssl rand -base64 32)", name)
		}
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		log.Printf("WARNING: %s is not set; generated one for local development only. Every instance sharing the store needs the same: %s=%s", name, name, base64.StdEncoding.EncodeToString(k))
		return [][]byte{k}, nil
	}
	var out [][]byte
	for _, part := range strings.Split(v, ",") {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(part))
		if err != nil || (len(k) != 16 && len(k) != 24 && len(k) != 32) {
			return nil, fmt.Errorf("%s must hold base64 keys of 16, 24 or 32 bytes", name)
		}
		out = append(out, k)
	}
	return out, nil
}
