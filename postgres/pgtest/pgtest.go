// Package pgtest gives tests a fresh PostgreSQL database of their own on the server named
// by QRAPI_TEST_POSTGRES. Without it the test skips and says how to run it; under CI
// (CI=true) it fails instead, so the PostgreSQL tests can never silently not run there.
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

// EnvDSN is the variable that names the test server: a postgres:// URL of a user that may
// create databases.
const EnvDSN = "QRAPI_TEST_POSTGRES"

// ServerDSN returns the test server's DSN, or skips (fails under CI) when there is none.
func ServerDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set under CI: the PostgreSQL tests must run there (.ci/run starts a server)", EnvDSN)
		}
		t.Skipf("PostgreSQL test: set %s=postgres://USER@127.0.0.1:PORT/postgres to run it (the README's \"Several replicas\" section starts a server)", EnvDSN)
	}
	return dsn
}

// NewDatabase creates an empty database for this test, dropped when the test ends, and
// returns its DSN.
func NewDatabase(t testing.TB) string {
	t.Helper()
	server := ServerDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvDSN, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "qrapi_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("pgtest: %s is not a URL: %v", EnvDSN, err)
	}
	u.Path = "/" + name
	return u.String()
}
