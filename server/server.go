// Package server is the reference server of openapi.yaml: an echo application that fills
// in the generated strict-server interface over a domain.Store, with every request
// validated against the document, IAM-style access control and audit events.
package server

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/swaggest/swgui/v5emb"

	"github.com/qrapi/qrapi/console"
	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/gen"
	"github.com/qrapi/qrapi/gen/control"
	"github.com/qrapi/qrapi/gen/platform"
	"github.com/qrapi/qrapi/spec"
)

// basePath is where the API is served, as in the document's servers (…/api), and
// controlBasePath the control API.
const (
	basePath        = "/api"
	controlBasePath = "/control"
)

// Config is what a Server is made of.
type Config struct {
	Store             domain.Store
	Doc               *spec.Document // nil: the embedded document
	Logger            *slog.Logger   // nil: discard
	AuditSink         io.Writer      // JSON lines; nil: events are only kept in the store
	AuditKeep         int            // how many audit events the store keeps, newest first; 0: 100000, -1: all
	ValidateResponses bool
	TokenTTL          time.Duration  // access token lifetime; 0: one hour, as IBM Cloud IAM
	TokenLeeway       *time.Duration // clock skew allowed on a token's expiry; nil: 5 s
	TTLDefaults       *domain.TTLDefaults
	AdminToken        string // enables the control API when set
	PublicURL         string // this server's origin as readers reach it (behind a proxy); "": the request's host
	// TrustedProxies are the addresses whose X-Forwarded-For is believed, for the caller's
	// address in logs and audit events; none: the socket's address, whatever a header says.
	TrustedProxies []*net.IPNet
	// KeyFailures limits failed API-key attempts per caller address; nil: DefaultKeyFailureLimit.
	KeyFailures *KeyFailureLimit
	Seed        *domain.Seed // what the control API's reset loads
	// SigningKey is the token signing key to keep if the store has none yet; nil: a new
	// 2048-bit RSA key (which takes tens of milliseconds to make). A key the store keeps wins.
	SigningKey *rsa.PrivateKey
	Now        func() time.Time
	// NoConsole turns off the web console at /console/, which is on by default.
	NoConsole bool
}

// Server is the reference server. It is an http.Handler.
type Server struct {
	echo           *echo.Echo
	store          domain.Store
	doc            *spec.Document
	log            *slog.Logger
	auditor        *auditor
	metrics        *metrics
	routes         map[string]*route
	allowed        map[string]string
	reqOptions     openapi3filter.Options
	signer         *signer
	jwtParser      *jwt.Parser
	tokenTTL       time.Duration
	tokenLeeway    time.Duration
	ttlDefaults    domain.TTLDefaults
	adminToken     string
	noConsole      bool
	trustedProxies []*net.IPNet
	keyGuard       *keyGuard // nil: no limit
	seed           *domain.Seed
	now            func() time.Time
	idMu           sync.RWMutex
	verified       map[string]*tokenClaims // token -> its claims, signature checked
	served         *servedDocs             // openapi.json and .yaml as /docs/ serves them
}

// New builds a Server. Close it to keep queued audit events.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: no store")
	}
	s := &Server{
		store: cfg.Store, doc: cfg.Doc, log: cfg.Logger, tokenTTL: cfg.TokenTTL,
		ttlDefaults: domain.DefaultTTLs, adminToken: cfg.AdminToken, noConsole: cfg.NoConsole, seed: cfg.Seed, now: cfg.Now, trustedProxies: cfg.TrustedProxies,
		metrics: newMetrics(), verified: map[string]*tokenClaims{},
	}
	s.metrics.measureStore(cfg.Store)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.doc == nil {
		d, err := spec.Load()
		if err != nil {
			return nil, err
		}
		s.doc = d
	}
	if s.tokenTTL <= 0 {
		s.tokenTTL = time.Hour
	}
	s.tokenLeeway = DefaultTokenLeeway
	if cfg.TokenLeeway != nil {
		if *cfg.TokenLeeway < 0 {
			return nil, errors.New("server: the token leeway cannot be negative")
		}
		s.tokenLeeway = *cfg.TokenLeeway
	}
	if cfg.TTLDefaults != nil {
		s.ttlDefaults = *cfg.TTLDefaults
	}
	if s.now == nil {
		s.now = time.Now
	}
	kf := DefaultKeyFailureLimit
	if cfg.KeyFailures != nil {
		kf = *cfg.KeyFailures
	}
	s.keyGuard = newKeyGuard(kf)
	var err error
	if s.signer, err = loadSigner(ctx, s.store, cfg.SigningKey); err != nil {
		return nil, err
	}
	s.jwtParser = jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithIssuer(tokenIssuer),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(s.now), jwt.WithLeeway(s.tokenLeeway))
	s.reqOptions = openapi3filter.Options{AuthenticationFunc: s.authenticate, KeepValidatedValue: true, RegexCompiler: spec.CompilePattern}
	specJSON, err := json.Marshal(s.doc.T)
	if err != nil {
		return nil, err
	}
	if s.served, err = newServedDocs(specJSON, cfg.PublicURL); err != nil {
		return nil, err
	}
	keep := cfg.AuditKeep
	switch {
	case keep == 0:
		keep = 100000
	case keep < 0:
		keep = 0
	}
	if bad := s.doc.Ungranted(domain.Granted); len(bad) > 0 {
		return nil, fmt.Errorf("server: %s, which no role grants: every call would be refused", strings.Join(bad, "; "))
	}
	s.auditor = newAuditor(s.log, cfg.AuditSink, s.store, keep)
	s.addRoutes(basePath, s.doc)
	platformDoc, err := spec.LoadPlatform() // the IBM Cloud lookups
	if err != nil {
		return nil, err
	}
	s.addRoutes("", platformDoc) // its paths hold the services' prefixes
	if s.adminToken != "" {
		controlDoc, err := spec.LoadControl()
		if err != nil {
			return nil, err
		}
		s.addRoutes(controlBasePath, controlDoc)
	}
	s.echo = s.routesAndMiddleware(cfg.ValidateResponses)
	return s, nil
}

// routesAndMiddleware is every route of the server, in one place, and the order of the
// steps a request goes through.
func (s *Server) routesAndMiddleware(validateResponses bool) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = ipExtractor(s.trustedProxies)
	e.HTTPErrorHandler = func(err error, c echo.Context) { s.writeError(c, err) }
	e.Pre(serviceHosts)
	e.Use(s.requestState, s.logAndMeasure, s.recoverPanic)

	api := []echo.MiddlewareFunc{s.identify, s.audit, s.limitBody}
	if validateResponses {
		api = append(api, s.validateResponse)
	}
	// recoverPanic again, innermost, so a panicking handler still gets audited and its
	// answer validated; the outer one catches panics in the steps themselves.
	api = append(api, s.validateRequest, s.apiVersion, s.authorize, s.injectFault, s.recoverPanic)
	// Route-level middleware, not a group's: a group with middleware catches every
	// method under its prefix, which would turn a 405 into a 404.
	gen.RegisterHandlers(&routeMiddleware{e: e, prefix: basePath, mw: api}, gen.NewStrictHandler(handlers{s}, nil))

	e.POST("/identity/token", s.token, s.limitBody)
	e.GET("/identity/keys", s.keys)
	s.allowed["/identity/token"], s.allowed["/identity/keys"] = http.MethodPost, http.MethodGet
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.ready)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})))
	e.GET("/openapi.json", s.served.serveJSON)
	e.GET("/openapi.yaml", s.served.serveYAML)
	docs := v5emb.New(s.doc.T.Info.Title, "/openapi.json", "/docs/")
	e.GET("/docs", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/docs/") })
	e.GET("/docs/*", filesHandler(docs, "documentation", "/docs/"))
	if !s.noConsole {
		e.GET("/console", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/console/") })
		e.GET("/console/*", filesHandler(http.StripPrefix("/console/", console.Handler()), "console", "/console/"))
	}
	if s.adminToken != "" {
		control.RegisterHandlers(&routeMiddleware{e: e, prefix: controlBasePath, mw: api}, control.NewStrictHandler(controlHandlers{s}, nil))
	}
	platform.RegisterHandlers(&routeMiddleware{e: e, prefix: "", mw: api}, platform.NewStrictHandler(platformHandlers{s}, nil))
	return e
}

// filesHandler serves the pages and assets of files (Swagger UI, the console), which live
// at home; a path they do not have is this server's 404 in the error container, not the
// file server's plain text.
func filesHandler(files http.Handler, what, home string) echo.HandlerFunc {
	return func(c echo.Context) error {
		rec := &recorder{ResponseWriter: c.Response().Writer, header: http.Header{}, status: http.StatusOK}
		files.ServeHTTP(rec, c.Request())
		if rec.status == http.StatusNotFound {
			return domain.Errorf(domain.ENOTFOUND, "The %s has no page at %s: it is at %s.", what, c.Request().URL.Path, home).WithReason("not_found")
		}
		maps.Copy(c.Response().Header(), rec.header)
		c.Response().WriteHeader(rec.status)
		_, err := c.Response().Write(rec.body.Bytes())
		return err
	}
}

// ipExtractor is where a caller's address comes from: X-Forwarded-For only from a trusted
// proxy (echo's extractor walks the header from the right, past trusted hops), else the
// socket. Echo's default would believe the header from anyone, so anyone could forge the
// address an audit event records.
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

func (s *Server) ready(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Error("not ready", "error", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "database unreachable"})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// FlushAudit waits until every audit event so far is kept in the store.
func (s *Server) FlushAudit() { s.auditor.Flush() }

// Close keeps the queued audit events. Call it after the HTTP server has shut down.
func (s *Server) Close() error {
	s.auditor.Close()
	return nil
}

// routeMiddleware registers the generated routes under a prefix with middleware of their own.
type routeMiddleware struct {
	e      *echo.Echo
	prefix string
	mw     []echo.MiddlewareFunc
}

// add registers the route with its middleware composed once, here: echo composes a route's
// middleware anew on every request, which cost an allocation per step per call.
func (r *routeMiddleware) add(method, path string, h echo.HandlerFunc, m []echo.MiddlewareFunc) *echo.Route {
	all := append(append([]echo.MiddlewareFunc{}, r.mw...), m...)
	for i := len(all) - 1; i >= 0; i-- {
		h = all[i](h)
	}
	return r.e.Add(method, r.prefix+path, h)
}

func (r *routeMiddleware) CONNECT(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(http.MethodConnect, p, h, m)
}
func (r *routeMiddleware) DELETE(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(http.MethodDelete, p, h, m)
}
func (r *routeMiddleware) GET(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(http.MethodGet, p, h, m)
}
func (r *routeMiddleware) HEAD(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(http.MethodHead, p, h, m)
}
func (r *routeMiddleware) OPTIONS(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(http.MethodOptions, p, h, m)
}
func (r *routeMiddleware) PATCH(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(http.MethodPatch, p, h, m)
}
func (r *routeMiddleware) POST(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(http.MethodPost, p, h, m)
}
func (r *routeMiddleware) PUT(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(http.MethodPut, p, h, m)
}
func (r *routeMiddleware) TRACE(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(http.MethodTrace, p, h, m)
}
