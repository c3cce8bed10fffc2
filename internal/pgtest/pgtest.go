// Package pgtest gives tests a PostgreSQL database of their own, on the
// server named by PLEOOAUTH_TEST_POSTGRES: created for the test and
// dropped after it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable holding the DSN of a PostgreSQL server the
// tests may create databases on, such as
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
const EnvDSN = "PLEOOAUTH_TEST_POSTGRES"

// Database creates an empty database for the test and returns its DSN;
// the database is dropped when the test ends. Without PLEOOAUTH_TEST_POSTGRES
// the test is skipped, saying so, except under CI=true, where it fails:
// CI must run the PostgreSQL tests.
func Database(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must run the PostgreSQL tests (postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)", EnvDSN)
		}
		t.Skipf("%s is not set: set it to a PostgreSQL server's DSN, such as postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable, to run this test", EnvDSN)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to %s: %v", EnvDSN, err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "pleooauth_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating a test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping the test database: %v", err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping the test database: %v", err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", EnvDSN, err)
	}
	u.Path = "/" + name
	return u.String()
}
