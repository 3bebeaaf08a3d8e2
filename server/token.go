package server

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/qrapi/qrapi/domain"
)

// iamPathPrefix is where the emulated IBM Cloud IAM answers (/identity/token, /identity/keys).
const iamPathPrefix = "/identity/"

// grantTypeAPIKey is the only grant type the emulated IAM token endpoint takes.
const grantTypeAPIKey = "urn:ibm:params:oauth:grant-type:apikey"

// tokenResponse is IBM Cloud IAM's answer to POST /identity/token.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Expiration   int64  `json:"expiration"`
	Scope        string `json:"scope"`
}

// iamError is IBM Cloud IAM's error shape.
type iamError struct {
	ErrorCode    string     `json:"errorCode"`
	ErrorMessage string     `json:"errorMessage"`
	Context      iamContext `json:"context"`
}

type iamContext struct {
	RequestID   string `json:"requestId"`
	RequestType string `json:"requestType"`
	StartTime   string `json:"startTime"`
}

func (s *Server) iamFail(c echo.Context, status int, code, msg string) error {
	rs := stateOf(c)
	rs.errCode = code
	return c.JSON(status, iamError{ErrorCode: code, ErrorMessage: msg, Context: iamContext{
		RequestID: rs.trace, RequestType: "incoming.Identity_Token", StartTime: rs.start.UTC().Format(time.RFC3339),
	}})
}

// token emulates POST https://iam.cloud.ibm.com/identity/token: an API key, form-encoded
// with the apikey grant type, is exchanged for a signed access token that expires.
func (s *Server) token(c echo.Context) error {
	r := c.Request()
	if ct := r.Header.Get(echo.HeaderContentType); !hasMediaType(ct, echo.MIMEApplicationForm) {
		return s.iamFail(c, http.StatusBadRequest, "BXNIM0109E", "Property missing or empty: the request must be form-encoded (application/x-www-form-urlencoded).")
	}
	if err := r.ParseForm(); err != nil {
		if toDomainError(err).Code == domain.ETOOLARGE {
			return tooLarge()
		}
		return s.iamFail(c, http.StatusBadRequest, "BXNIM0109E", "The form could not be read.")
	}
	grant := r.PostForm.Get("grant_type")
	if grant == "" {
		return s.iamFail(c, http.StatusBadRequest, "BXNIM0109E", "Property missing or empty. Property name: 'grant_type'.")
	}
	if grant != grantTypeAPIKey {
		return s.iamFail(c, http.StatusBadRequest, "BXNIM0103E", "Unsupported grant type; this endpoint takes "+grantTypeAPIKey+".")
	}
	key := r.PostForm.Get("apikey")
	if key == "" {
		return s.iamFail(c, http.StatusBadRequest, "BXNIM0109E", "Property missing or empty. Property name: 'apikey'.")
	}
	st, err := s.lookUpAPIKey(r.Context(), stateOf(c), domain.RequestQuery{APIKey: key, Now: s.now()})
	if domain.ErrorCode(err) == domain.ENOTFOUND {
		return s.iamFail(c, http.StatusBadRequest, "BXNIM0415E", "Provided API key could not be found.")
	}
	if err != nil {
		return err
	}
	p := st.Principal
	stateOf(c).principal = p
	now := s.now()
	tok, exp, err := s.issueToken(p, now)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, tokenResponse{
		AccessToken: tok, RefreshToken: "not_supported", TokenType: "Bearer",
		ExpiresIn: int64(s.tokenTTL / time.Second), Expiration: exp.Unix(), Scope: "ibm openid",
	})
}

func hasMediaType(ct, want string) bool {
	if len(ct) < len(want) {
		return false
	}
	return ct[:len(want)] == want && (len(ct) == len(want) || ct[len(want)] == ';' || ct[len(want)] == ' ')
}

func newJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
