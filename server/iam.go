package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/qrapi/qrapi/domain"
)

// tokenIssuer is the iss of the access tokens this server signs.
const tokenIssuer = "qrserver/identity"

// tokenClaims are the claims of an access token, shaped like IBM Cloud IAM's.
type tokenClaims struct {
	jwt.RegisteredClaims
	IAMID     string       `json:"iam_id"`
	ID        string       `json:"id"`
	RealmID   string       `json:"realmid"`
	Name      string       `json:"name,omitempty"`
	SubType   string       `json:"sub_type,omitempty"`
	Account   tokenAccount `json:"account"`
	GrantType string       `json:"grant_type"`
	Scope     string       `json:"scope"`
	ClientID  string       `json:"client_id"`
}

type tokenAccount struct {
	BSS string `json:"bss"`
}

func unauthorized(msg string) error {
	return domain.Errorf(domain.EUNAUTHORIZED, "%s", msg).WithTarget("header", "Authorization").WithReason("unauthorized")
}

// authenticate is kin-openapi's AuthenticationFunc for the API's two schemes, IAMBearer
// (Authorization: Bearer <IAM access token>) and IAMApiKey (Authorization: apikey <API
// key>, which IBM's Qiskit client falls back to). Both read the one Authorization header,
// and its own scheme word decides, so either requirement gives the same answer and error.
// Its messages never repeat the credential.
func (s *Server) authenticate(ctx context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get(echo.HeaderAuthorization)
	switch in.SecuritySchemeName {
	case "IAMBearer", "IAMApiKey":
	case "AdminBearer":
		return s.authenticateAdmin(h)
	default:
		return unauthorized("Unsupported security scheme.")
	}
	// The API's operations accept either scheme, so kin-openapi asks twice when the first
	// fails: answer the second from the first, so a wrong key is looked up and counted once.
	rs := stateFrom(ctx)
	if rs != nil && rs.authed {
		return rs.authErr
	}
	err := s.authenticateCaller(ctx, rs, h, requestQuery(rs, in.RequestValidationInput))
	if rs != nil {
		rs.authed, rs.authErr = true, err
	}
	return err
}

// requestQuery names what an API call reads with its caller (domain.Store's
// ReadRequest): the instance of its Service-CRN, the account of its {id}.
func requestQuery(rs *reqState, in *openapi3filter.RequestValidationInput) domain.RequestQuery {
	if rs != nil && rs.op() != nil && len(rs.op().IAMActions) == 0 {
		return domain.RequestQuery{} // an IBM Cloud lookup: its handler reads what the caller may see
	}
	return domain.RequestQuery{InstanceCRN: in.Request.Header.Get(headerServiceCRN), AccountID: in.PathParams["id"]}
}

// authenticateCaller checks the Authorization header of an API call and reads, in the same
// read of the store, the caller's principal and policies with what q names, for the steps
// after it and the handler.
func (s *Server) authenticateCaller(ctx context.Context, rs *reqState, h string, q domain.RequestQuery) error {
	if h == "" {
		return unauthorized(msgCredentialRequired)
	}
	scheme, cred, ok := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	if !ok || cred == "" {
		return unauthorized("The Authorization header must be Bearer <IAM access token> or apikey <API key>.")
	}
	q.Now = s.now()
	var (
		st         *domain.RequestState
		err        error
		credential string
	)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		credential = credentialToken
		var claims *tokenClaims
		if claims, err = s.verifiedToken(cred); err == nil {
			q.PrincipalID = claims.Subject
			if st, err = s.store.ReadRequest(ctx, q); err == nil && st.Principal == nil {
				err = unauthorized("The IAM access token names an identity that no longer exists.")
			}
		}
	case strings.EqualFold(scheme, "apikey"):
		credential = credentialAPIKey
		q.APIKey = cred
		if st, err = s.lookUpAPIKey(ctx, rs, q); domain.ErrorCode(err) == domain.ENOTFOUND {
			err = unauthorized("The API key in the Authorization header is not valid.")
		}
	default:
		return unauthorized("The Authorization header must be Bearer <IAM access token> or apikey <API key>.")
	}
	if rs != nil {
		rs.credential = credential
	}
	if err != nil {
		var de *domain.Error
		if !errors.As(err, &de) {
			return &storeFailure{err} // the caller's credential may be fine: a 500 or 503, not a 401
		}
		return err
	}
	if rs != nil {
		rs.principal, rs.policies, rs.read = st.Principal, st.Policies, st
	}
	return nil
}

// storeFailure is a store error met while authenticating a caller. kin-openapi gathers
// authentication errors with its own (a scheme whose header does not match); this one
// must come out of them as the cause of a 500 (requestValidationError).
type storeFailure struct{ err error }

func (f *storeFailure) Error() string { return f.err.Error() }
func (f *storeFailure) Unwrap() error { return f.err }

// msgCredentialRequired answers a call that sent no credential.
const msgCredentialRequired = "An IAM access token is required: send Authorization: Bearer <token> (or Authorization: apikey <API key>)."

// The credential types an audit event's initiator names.
const (
	credentialToken  = "token"
	credentialAPIKey = "apikey"
)

// lookUpAPIKey reads what q names (its APIKey set) with the key's principal, unless the
// caller's address has failed too many keys of late: then it is a 429 that says when to
// try again, the same whether or not this key is right. A key that no principal owns is
// APIKeyNotFound, and counts as a failure of that address.
func (s *Server) lookUpAPIKey(ctx context.Context, rs *reqState, q domain.RequestQuery) (*domain.RequestState, error) {
	var addr string
	if rs != nil {
		addr = rs.remote
	}
	now := s.now()
	if d := s.keyGuard.wait(addr, now); d > 0 {
		return nil, domain.Errorf(domain.ETOOMANY, "Too many failed API key attempts from this address; try again in %d s.", retryAfterSeconds(d)).
			WithReason(reasonTooManyKeyFailures).WithRetryAfter(d)
	}
	st, err := s.store.ReadRequest(ctx, q)
	if err != nil {
		return nil, err
	}
	if st.Principal == nil {
		if s.keyGuard.failed(addr, now) {
			s.log.WarnContext(ctx, "API key attempts limited: too many failed", slog.String("remote", addr))
		}
		return nil, domain.APIKeyNotFound()
	}
	return st, nil
}

// reasonTooManyKeyFailures is the code of the 429 that keyGuard answers, in the API's
// error container and as IAM's errorCode (IAM publishes no code of its own for it).
const reasonTooManyKeyFailures = "too_many_failed_api_keys"

// verifiedCacheSize bounds the memory the cache of verified tokens takes.
const verifiedCacheSize = 4096

// verifiedToken returns a token's claims, checking its signature once per token: the
// signature check was most of the cost of authentication. What the process keeps is only
// that outcome, a pure function of the token and the kept key; the principal and its
// policies are read from the store on every call. The expiry is checked on every call.
func (s *Server) verifiedToken(token string) (*tokenClaims, error) {
	s.idMu.RLock()
	claims, ok := s.verified[token]
	s.idMu.RUnlock()
	if ok {
		if !s.now().Before(claims.ExpiresAt.Add(s.tokenLeeway)) {
			return nil, unauthorized("The IAM access token has expired: request a new one.")
		}
		return claims, nil
	}
	claims, err := s.verifyToken(token)
	if err != nil {
		return nil, err
	}
	s.idMu.Lock()
	if len(s.verified) >= verifiedCacheSize {
		clear(s.verified)
	}
	s.verified[token] = claims
	s.idMu.Unlock()
	return claims, nil
}

// DefaultTokenLeeway is the clock skew allowed on a token's expiry unless configured: a
// token is accepted until this long after its exp.
const DefaultTokenLeeway = 5 * time.Second

// verifyToken checks a token's signature, issuer and expiry.
func (s *Server) verifyToken(token string) (*tokenClaims, error) {
	var claims tokenClaims
	_, err := s.jwtParser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != s.signer.kid {
			return nil, errors.New("unknown kid")
		}
		return &s.signer.key.PublicKey, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, unauthorized("The IAM access token has expired: request a new one.")
	case err != nil:
		return nil, unauthorized("The IAM access token is not valid.")
	}
	return &claims, nil
}

// issueToken signs an access token for a principal.
func (s *Server) issueToken(p *domain.Principal, now time.Time) (string, time.Time, error) {
	exp := now.Add(s.tokenTTL).Truncate(time.Second)
	subType := ""
	if p.Type == domain.PrincipalServiceID {
		subType = "ServiceId"
	}
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   p.ID,
			IssuedAt:  jwt.NewNumericDate(now.Truncate(time.Second)),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        newJTI(),
		},
		IAMID: p.ID, ID: p.ID, RealmID: "iam", Name: p.Name, SubType: subType,
		Account: tokenAccount{BSS: p.AccountID}, GrantType: grantTypeAPIKey, Scope: "ibm openid", ClientID: "default",
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = s.signer.kid
	signed, err := tok.SignedString(s.signer.key)
	return signed, exp, err
}

// authorize is the IAM step after validation: the operation's x-ibm-permissions actions must be
// granted to the caller on the target (the Service-CRN instance, or the account of
// get_account) by one of the caller's policies. Where the operation documents no 403,
// a denial answers 404, so that no other account's existence leaks.
func (s *Server) authorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rs := stateOf(c)
		op := rs.op()
		if op == nil || len(op.IAMActions) == 0 {
			return next(c) // not an operation of IBM's API
		}
		res, err := s.resourceOf(c)
		if err != nil {
			return err
		}
		rs.resource = res
		for _, action := range op.IAMActions {
			if domain.Allowed(rs.policies, action, res) {
				continue
			}
			if op.Operation.Responses.Status(403) == nil {
				return accountNotFound(res.AccountID)
			}
			return domain.Errorf(domain.EFORBIDDEN, "You are not allowed to do %s on %s: no access policy grants you a role that includes it.", action, res.String()).
				WithReason("forbidden")
		}
		return next(c)
	}
}

// resourceOf names what the request acts on: the instance of its Service-CRN, or, for
// an operation with an {id} path parameter, that account.
func (s *Server) resourceOf(c echo.Context) (domain.Resource, error) {
	if id := c.Param("id"); id != "" {
		return domain.Resource{AccountID: id}, nil
	}
	crn, err := domain.ParseCRN(c.Request().Header.Get(headerServiceCRN))
	if err != nil {
		return domain.Resource{}, err
	}
	return domain.Resource{AccountID: crn.AccountID, InstanceCRN: crn.Raw}, nil
}

func accountNotFound(id string) error {
	return domain.Errorf(domain.ENOTFOUND, "No account with the id %s was found that you may read.", id).
		WithTarget("parameter", "id").WithReason("account_not_found")
}

// sameSecret compares a presented secret with the expected one in time that depends on
// neither: both are hashed to fixed-size digests first, because ConstantTimeCompare
// returns at once when the lengths differ, which would tell a caller the secret's length.
func sameSecret(presented, expected string) bool {
	a, b := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(expected))
	return constantTimeCompare(a[:], b[:]) == 1
}

// constantTimeCompare is subtle.ConstantTimeCompare; a test watches what it is given.
var constantTimeCompare = subtle.ConstantTimeCompare

// authenticateAdmin checks the control API's bearer token in constant time.
func (s *Server) authenticateAdmin(h string) error {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !sameSecret(strings.TrimSpace(token), s.adminToken) {
		return unauthorized("The control API needs Authorization: Bearer <the server's admin token>.")
	}
	return nil
}
