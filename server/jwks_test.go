package server_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/qrapi/qrapi/server"
)

// A token verifies against /identity/keys with the JWKS library a user's own service would
// use (keyfunc), as IBM Cloud IAM's tokens verify against IAM's keys: RS256, with the
// key's kid in the header.
func TestTokenVerifiesAgainstTheJWKS(t *testing.T) {
	h := newHarness(t)
	tok := h.token(keyAdmin)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k, err := keyfunc.NewDefaultCtx(ctx, []string{h.url + "/identity/keys"})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.Parse(tok, k.Keyfunc, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer("qrserver/identity"), jwt.WithExpirationRequired())
	if err != nil || !parsed.Valid {
		t.Fatalf("the token does not verify against /identity/keys: %v", err)
	}
	if kid, _ := parsed.Header["kid"].(string); kid == "" || parsed.Method.Alg() != "RS256" {
		t.Fatalf("header %v: want RS256 with a kid", parsed.Header)
	}
	if sub, _ := parsed.Claims.GetSubject(); sub != "IBMid-demo-admin" {
		t.Fatalf("subject %q", sub)
	}
	resp, b := h.do("GET", "/identity/keys", "", nil, "")
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &set) != nil || len(set.Keys) != 1 || set.Keys[0]["kty"] != "RSA" ||
		set.Keys[0]["alg"] != "RS256" || set.Keys[0]["use"] != "sig" || set.Keys[0]["kid"] != parsed.Header["kid"] || set.Keys[0]["d"] != "" {
		t.Fatalf("/identity/keys: %d %s", resp.StatusCode, b)
	}
}

// Tokens not signed with the server's key and algorithm are refused: HS256 keyed with the
// public key (the algorithm-confusion attack), alg none, and RS256 under another kid.
func TestForgedAlgorithmsAreRefused(t *testing.T) {
	h := newHarness(t)
	good := h.token(keyAdmin)
	var claims jwt.MapClaims
	parsed, _, err := jwt.NewParser().ParseUnverified(good, &claims)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k, err := keyfunc.NewDefaultCtx(ctx, []string{h.url + "/identity/keys"})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.Keyfunc(parsed)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	forge := func(method jwt.SigningMethod, key any, kid string) string {
		tok := jwt.NewWithClaims(method, claims)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	kid := parsed.Header["kid"].(string)
	none := forge(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid)
	for name, tok := range map[string]string{
		"HS256 keyed with the public key (PEM)": forge(jwt.SigningMethodHS256, pemPub, kid),
		"HS256 keyed with the public key (DER)": forge(jwt.SigningMethodHS256, der, kid),
		"alg none":                              none,
		"alg none, no signature part":           strings.TrimSuffix(none, "."),
	} {
		resp, b := h.do("GET", "/api/v1/instance", tok, map[string]string{"Service-CRN": crnA1}, "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, resp.StatusCode, b)
		}
	}
	// The genuine token, with its kid changed: refused too (its signature no longer covers it).
	parts := strings.Split(good, ".")
	if resp, _ := h.do("GET", "/api/v1/instance", parts[0]+"x."+parts[1]+"."+parts[2], map[string]string{"Service-CRN": crnA1}, ""); resp.StatusCode != 401 {
		t.Errorf("a tampered header: %d", resp.StatusCode)
	}
	if resp, _ := h.do("GET", "/api/v1/instance", good, map[string]string{"Service-CRN": crnA1}, ""); resp.StatusCode != 200 {
		t.Fatalf("the genuine token: %d", resp.StatusCode)
	}
}

// Config.SigningKey is the key a new database keeps: tokens verify against it (and the
// JWKS publishes it); a database that already keeps a key keeps its own.
func TestGivenSigningKey(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *server.Config) { c.SigningKey = key })
	tok := h.token(keyAdmin)
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return &key.PublicKey, nil }, jwt.WithValidMethods([]string{"RS256"})); err != nil {
		t.Fatalf("a token does not verify against the given key: %v", err)
	}
	_, b := h.do("GET", "/identity/keys", "", nil, "")
	if !strings.Contains(string(b), base64.RawURLEncoding.EncodeToString(key.N.Bytes())) {
		t.Fatalf("the JWKS does not publish the given key: %s", b)
	}
	// The same database, started again with another key: the kept one wins.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	again, err := server.New(context.Background(), server.Config{Store: h.store, SigningKey: other})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	rec := httptest.NewRecorder()
	again.ServeHTTP(rec, httptest.NewRequest("GET", "/identity/keys", nil))
	if !strings.Contains(rec.Body.String(), base64.RawURLEncoding.EncodeToString(key.N.Bytes())) {
		t.Fatalf("a database that keeps a key took the given one: %s", rec.Body.String())
	}
}
