package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/qrapi/qrapi/internal/enginetest"
	"github.com/qrapi/qrapi/seed"
	"github.com/qrapi/qrapi/server"
)

// The whole request path, in-process, with every answer validated against openapi.yaml
// (a violation would be a 500): for any method, path under /api, Authorization, headers and
// body, the answer has a valid status, is never a 5xx, and an error answer is always the
// error container with its trace.
func FuzzRequest(f *testing.F) {
	ctx := context.Background()
	st := enginetest.Open(f)
	if err := st.Load(ctx, seed.Demo()); err != nil {
		f.Fatal(err)
	}
	srv, err := server.New(ctx, server.Config{Store: st, ValidateResponses: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	form := url.Values{"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}, "apikey": {keyAdmin}}
	req := httptest.NewRequest("POST", "/identity/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil || tr.AccessToken == "" {
		f.Fatalf("token: %s", rec.Body.String())
	}
	bearer := "Bearer " + tr.AccessToken
	for _, c := range []struct{ method, path, auth, crn, version, ctype, body string }{
		{"GET", "/v1/instance", bearer, crnA1, "", "", ""},
		{"GET", "/v1/instances/usage", bearer, crnB1, "2026-02-01", "", ""},
		{"PUT", "/v1/instances/configuration", bearer, crnA1, "", "application/json", `{"instance_limit": 100}`},
		{"PUT", "/v1/instances/configuration", bearer, crnA1, "", "application/json", `{"instance_limit": null}`},
		{"PUT", "/v1/instances/configuration", "apikey " + keyAdmin, crnA1, "", "application/json", `{"instance_limit": 3600.0}garbage`},
		{"GET", "/v1/accounts/" + acctDemo + "?plan_id=plan-id-2", bearer, "", "", "", ""},
		{"DELETE", "/v1/instance", bearer, crnA1, "", "", ""},
		{"GET", "/v1/instance", "Bearer x.y.z", "crn:v1", "1999-01-01", "", ""},
		{"POST", "/v1/accounts/%zz", "", "", "", "text/plain", "\x00\xff"},
	} {
		f.Add(c.method, c.path, c.auth, c.crn, c.version, c.ctype, c.body)
	}
	f.Fuzz(func(t *testing.T, method, path, auth, crn, version, ctype, body string) {
		req, err := http.NewRequest(method, "http://qrserver.test/api"+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		for name, v := range map[string]string{"Authorization": auth, "Service-CRN": crn, "IBM-API-Version": version, "Content-Type": ctype} {
			if v != "" {
				req.Header.Set(name, v)
			}
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		status := rec.Code
		if status < 200 || status > 599 {
			t.Fatalf("%s %s: status %d", method, path, status)
		}
		if status >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, status, rec.Body.String())
		}
		if status < 400 || method == http.MethodHead {
			return
		}
		var ec struct {
			Trace      string `json:"trace"`
			StatusCode int    `json:"status_code"`
			Errors     []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"errors"`
		}
		dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
		if err := dec.Decode(&ec); err != nil || ec.StatusCode != status || len(ec.Errors) == 0 || ec.Errors[0].Code == "" ||
			ec.Errors[0].Message == "" || ec.Trace == "" || ec.Trace != rec.Header().Get("X-Correlation-ID") {
			t.Fatalf("%s %s: %d answered without the error container: %s", method, path, status, rec.Body.String())
		}
	})
}
