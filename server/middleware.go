package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/spec"
)

// maxBodyBytes is the largest request body the server reads (1 MiB).
const maxBodyBytes = 1 << 20

// Headers, spelt in Go's canonical form so that setting and reading them allocates nothing.
const (
	HeaderCorrelationID = "X-Correlation-Id" // the request's trace id, on every answer
	// HeaderGlobalTransactionID is IBM Cloud's name for the same id, on every answer; IBM's
	// SDK cores read it into their exceptions (global_transaction_id).
	HeaderGlobalTransactionID = "X-Global-Transaction-Id"
	HeaderAPIVersion          = "Ibm-Api-Version" // the API version that answered
	headerServiceCRN          = "Service-Crn"
)

// serviceCRNName is the Service-CRN header as the document spells it, for error targets.
const serviceCRNName = "Service-CRN"

// reqState is what the steps of one request learn and pass on: made by the first step,
// filled in by routing, validation and IAM, read by audit, logging and the handlers.
type reqState struct {
	trace      string
	start      time.Time
	remote     string // the caller's address: the socket's, or a trusted proxy's X-Forwarded-For
	route      *route // the operation the request was routed to, if any
	principal  *domain.Principal
	credential string // the kind of credential the caller sent: token or apikey
	policies   []domain.Policy
	read       *domain.RequestState // what authentication read with the caller, for the steps after it
	resource   domain.Resource
	apiVersion string
	errCode    string // the error container's code, if the answer was an error
	authed     bool   // authenticate ran; authErr is its outcome
	authErr    error
	fault      *domain.FaultRule // the fault rule that fired on the request, if any
	dropped    bool              // the fault dropped the connection: no answer
}

// op is the operation the request was routed to, or nil.
func (rs *reqState) op() *spec.Operation {
	if rs.route == nil {
		return nil
	}
	return rs.route.op
}

type stateKey struct{}

// stateOf returns the request's state, kept in the request's context (not in echo's
// context store, whose map costs an allocation per request).
func stateOf(c echo.Context) *reqState {
	if rs := stateFrom(c.Request().Context()); rs != nil {
		return rs
	}
	rs := &reqState{trace: uuid.NewString(), start: time.Now()}
	r := c.Request()
	c.SetRequest(r.WithContext(context.WithValue(r.Context(), stateKey{}, rs)))
	return rs
}

func stateFrom(ctx context.Context) *reqState {
	rs, _ := ctx.Value(stateKey{}).(*reqState)
	return rs
}

// requestState starts every request: a trace id (also X-Correlation-ID), and the state
// that later steps fill in, reachable from the request's context.
func (s *Server) requestState(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rs := stateOf(c)
		rs.remote = c.RealIP()
		trace := []string{rs.trace}
		c.Response().Header()[HeaderCorrelationID] = trace
		c.Response().Header()[HeaderGlobalTransactionID] = trace
		return next(c)
	}
}

// recoverPanic turns a panic into an internal error answer, logging the stack.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic", slog.String("trace", stateOf(c).trace), slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return next(c)
	}
}

// logAndMeasure writes one log line per request and records its metrics. It logs the
// route and status, never a header: tokens and API keys stay out of the log.
func (s *Server) logAndMeasure(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err != nil {
			s.writeError(c, err)
		}
		rs := stateOf(c)
		status := answeredStatus(c, rs)
		elapsed := time.Since(rs.start)
		opID := "none"
		if op := rs.op(); op != nil {
			opID = op.ID
		}
		s.metrics.observe(opID, status, rs.fault != nil, elapsed)
		if !s.log.Enabled(c.Request().Context(), slog.LevelInfo) {
			return nil
		}
		attrs := []slog.Attr{
			slog.String("trace", rs.trace),
			slog.String("method", c.Request().Method),
			slog.String("path", c.Request().URL.Path),
			slog.String("operation", opID),
			slog.Int("status", status),
			slog.Float64("ms", float64(elapsed.Microseconds())/1000),
			slog.String("remote", rs.remote),
		}
		if rs.principal != nil {
			attrs = append(attrs, slog.String("principal", rs.principal.ID))
		}
		if rs.errCode != "" {
			attrs = append(attrs, slog.String("error_code", rs.errCode))
		}
		if rs.fault != nil {
			attrs = append(attrs, slog.String("injected_fault", rs.fault.ID))
		}
		s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request", attrs...)
		return nil
	}
}

// answeredStatus is the status the caller got: 0 when a fault rule dropped the connection.
func answeredStatus(c echo.Context, rs *reqState) int {
	if rs.dropped {
		return 0
	}
	return c.Response().Status
}

// limitBody refuses bodies over maxBodyBytes: at once when Content-Length says so, else
// when reading passes the limit.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > maxBodyBytes {
			return tooLarge()
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(c.Response(), r.Body, maxBodyBytes)
		}
		return next(c)
	}
}

// apiVersion resolves IBM-API-Version (after validation checked its form) and echoes the
// version that answers.
func (s *Server) apiVersion(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rs := stateOf(c)
		if op := rs.op(); op == nil || len(op.IAMActions) == 0 {
			return next(c) // not an operation of IBM's API
		}
		v, err := domain.ResolveAPIVersion(c.Request().Header.Get(HeaderAPIVersion))
		if err != nil {
			return err
		}
		rs.apiVersion = v
		c.Response().Header().Set(HeaderAPIVersion, v)
		return next(c)
	}
}
