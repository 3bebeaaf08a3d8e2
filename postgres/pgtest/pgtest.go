// Package pgtest gives tests a fresh PostgreSQL database of their own on the server named
// by QRAPI_TEST_POSTGRES. Without it the test skips and says how to run it; under CI
// (CI=true) it fails instead, so the PostgreSQL tests can never silently not run there.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
	dsn, drop, err := CreateDatabase(ServerDSN(t), "qrapi_test_")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return dsn
}

// CreateDatabase creates an empty database named prefix and random characters on the
// server that server names, and returns its DSN and a function that drops it.
func CreateDatabase(server, prefix string) (dsn string, drop func() error, err error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", nil, fmt.Errorf("%s is not a URL: %w", EnvDSN, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE DATABASE " + name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u.Path = "/" + name
	return u.String(), func() error {
		if err := exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
		return nil
	}, nil
}
