package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/qrapi/qrapi/internal/engine"
	"github.com/qrapi/qrapi/seed"
	"github.com/qrapi/qrapi/server"
)

// benchServer is the full stack (IAM, request validation, store, audit), in-process, with
// response validation off as in production.
func benchServer(b *testing.B, path string) (*server.Server, string) {
	b.Helper()
	ctx := context.Background()
	st, err := engine.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Load(ctx, seed.Demo()); err != nil {
		b.Fatal(err)
	}
	s, err := server.New(ctx, server.Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	req := httptest.NewRequest("POST", "/identity/token", strings.NewReader("grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey="+keyAdmin))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	tok := w.Body.String()
	tok = tok[strings.Index(tok, `"access_token":"`)+16:]
	tok = tok[:strings.IndexByte(tok, '"')]
	return s, tok
}

func BenchmarkGetInstance(b *testing.B) {
	for _, db := range []string{"memory", "file"} {
		b.Run(db, func(b *testing.B) {
			path := ":memory:"
			if db == "file" {
				path = b.TempDir() + "/bench.db"
			}
			s, tok := benchServer(b, path)
			req := httptest.NewRequest("GET", "/api/v1/instance", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Service-CRN", crnA1)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				s.ServeHTTP(w, req.Clone(req.Context()))
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

func BenchmarkReplaceInstanceConfiguration(b *testing.B) {
	for _, db := range []string{"memory", "file"} {
		b.Run(db, func(b *testing.B) {
			path := ":memory:"
			if db == "file" {
				path = b.TempDir() + "/bench.db"
			}
			s, tok := benchServer(b, path)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				req := httptest.NewRequest("PUT", "/api/v1/instances/configuration", strings.NewReader(fmt.Sprintf(`{"instance_limit": %d}`, 1000+i%1000)))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Service-CRN", crnA1)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				s.ServeHTTP(w, req)
				if w.Code != http.StatusNoContent {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
