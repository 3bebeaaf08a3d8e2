package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/qrapi/qrapi/domain"
)

// signingKeySetting names the RSA key that signs access tokens in the store: made once per
// database, so tokens survive restarts and every replica accepts every replica's tokens.
const signingKeySetting = "token_signing_key_rs256"

// signer signs access tokens as IBM Cloud IAM does: RS256, with the key's id in each
// token's header, and the public key published as a JWKS at /identity/keys.
type signer struct {
	key  *rsa.PrivateKey
	kid  string
	jwks []byte
}

// jwk is one RSA public key of a JWKS (RFC 7517).
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func loadSigner(ctx context.Context, store domain.Store, given *rsa.PrivateKey) (*signer, error) {
	der, err := store.Setting(ctx, signingKeySetting, func() ([]byte, error) {
		k := given
		if k == nil {
			var err error
			if k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				return nil, err
			}
		}
		return x509.MarshalPKCS8PrivateKey(k)
	})
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("server: the kept token signing key is not an RSA key")
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pub)
	kid := base64.RawURLEncoding.EncodeToString(sum[:12])
	jwks, err := json.Marshal(map[string][]jwk{"keys": {{
		Kty: "RSA", Use: "sig", Alg: "RS256", Kid: kid,
		N: base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
	if err != nil {
		return nil, err
	}
	return &signer{key: key, kid: kid, jwks: jwks}, nil
}

// keys emulates GET https://iam.cloud.ibm.com/identity/keys: the public keys that verify
// access tokens, for services that verify them themselves.
func (s *Server) keys(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age=3600")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, s.signer.jwks)
}
