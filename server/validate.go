package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/spec"
)

// route is what validation needs of one operation, built once at start.
type route struct {
	op    *spec.Operation
	kin   *routers.Route
	param []string // path parameter names
}

// echoPath turns a document path (/v1/accounts/{id}) under a base (/api) into echo's
// (/api/v1/accounts/:id).
func echoPath(base, docPath string) (string, []string) {
	var params []string
	parts := strings.Split(docPath, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			name := p[1 : len(p)-1]
			params = append(params, name)
			parts[i] = ":" + name
		}
	}
	return base + strings.Join(parts, "/"), params
}

func routeKey(method, echoPath string) string { return method + " " + echoPath }

// addRoutes indexes a document's operations by echo method and path.
func (s *Server) addRoutes(base string, doc *spec.Document) {
	if s.routes == nil {
		s.routes, s.allowed = map[string]*route{}, map[string]string{}
	}
	for _, op := range doc.Operations {
		p, params := echoPath(base, op.Path)
		s.routes[routeKey(op.Method, p)] = &route{
			op:    op,
			param: params,
			kin:   &routers.Route{Spec: doc.T, Path: op.Path, PathItem: op.PathItem, Method: op.Method, Operation: op.Operation},
		}
		if s.allowed[p] != "" {
			s.allowed[p] += ", "
		}
		s.allowed[p] += op.Method
	}
}

// routeOf finds the operation echo routed the request to, or nil.
func (s *Server) routeOf(c echo.Context) *route {
	return s.routes[routeKey(c.Request().Method, c.Path())]
}

// identify names the operation a request was routed to, first, so that every later
// step (and its audit event) knows it.
func (s *Server) identify(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if rt := s.routeOf(c); rt != nil {
			rs := stateOf(c)
			rs.route = rt
		}
		return next(c)
	}
}

// validateRequest checks the request against openapi.yaml before any handler runs:
// security first (kin-openapi calls authenticate), then headers, path and body. The
// handler then sees exactly the body that was validated (KeepValidatedValue).
func (s *Server) validateRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rt := stateOf(c).route // found once, by identify
		if rt == nil {
			return next(c)
		}
		var pathParams map[string]string
		if len(rt.param) > 0 {
			pathParams = make(map[string]string, len(rt.param))
			for _, name := range rt.param {
				pathParams[name] = c.Param(name)
			}
		}
		if rt.kin.Operation.RequestBody != nil {
			if err := checkJSONBody(c.Request()); err != nil {
				return err
			}
		}
		in := &openapi3filter.RequestValidationInput{
			Request:    c.Request(),
			PathParams: pathParams,
			Route:      rt.kin,
			Options:    &s.reqOptions,
		}
		if err := openapi3filter.ValidateRequest(c.Request().Context(), in); err != nil {
			return requestValidationError(err)
		}
		return next(c)
	}
}

// requestValidationError turns kin-openapi's error into a 400 (or the 401 that
// authenticate decided, or a 413, or the store's failure: a 500) whose message names the
// header, parameter or field.
func requestValidationError(err error) error {
	var sre *openapi3filter.SecurityRequirementsError
	if errors.As(err, &sre) {
		for _, e := range sre.Errors {
			// kin-openapi reads the body before it authenticates.
			var mbe *http.MaxBytesError
			if errors.As(e, &mbe) {
				return tooLarge()
			}
		}
		for _, e := range sre.Errors {
			var sf *storeFailure
			if errors.As(e, &sf) {
				return sf.err
			}
		}
		for _, e := range sre.Errors {
			var de *domain.Error
			if errors.As(e, &de) {
				return de
			}
		}
		return domain.Errorf(domain.EUNAUTHORIZED, "%s", msgCredentialRequired).WithReason("unauthorized")
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge()
	}
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		return domain.Errorf(domain.EINVALID, "The request is not valid: %v", err).WithReason("bad_request")
	}
	if p := re.Parameter; p != nil {
		where := "parameter"
		if p.In == openapi3.ParameterInHeader {
			where = "header"
		}
		why := re.Reason
		var se *openapi3.SchemaError
		if errors.As(re.Err, &se) {
			why = se.Reason
		} else if re.Err != nil {
			why = re.Err.Error()
		}
		if errors.Is(re.Err, openapi3filter.ErrInvalidRequired) {
			why = "it is required"
		}
		return domain.Errorf(domain.EINVALID, "%s %s is not valid: %s", capitalize(where), p.Name, why).
			WithTarget(where, p.Name).WithReason("invalid_" + where)
	}
	// The body: messages name the fields the document requires of it.
	fields := requiredFields(re.RequestBody)
	target := "body"
	if len(fields) > 0 {
		target = fields[0]
	}
	shape := "a JSON object"
	if len(fields) > 0 {
		shape += " with the fields " + strings.Join(fields, ", ")
	}
	if errors.Is(re.Err, openapi3filter.ErrInvalidRequired) {
		return domain.Errorf(domain.EINVALID, "A request body is required: %s.", shape).
			WithTarget("field", target).WithReason("invalid_body")
	}
	var se *openapi3.SchemaError
	if errors.As(re.Err, &se) {
		field := strings.Join(se.JSONPointer(), ".")
		if se.SchemaField == "required" || unsupportedProperty(se) {
			// kin-openapi points at the object; the missing property is in the reason.
			if i := strings.Index(se.Reason, `"`); i >= 0 {
				if j := strings.Index(se.Reason[i+1:], `"`); j >= 0 {
					field = se.Reason[i+1 : i+1+j]
				}
			}
		}
		if field == "" {
			return domain.Errorf(domain.EINVALID, "The request body must be %s: %s.", shape, se.Reason).
				WithTarget("field", target).WithReason("invalid_body")
		}
		if unsupportedProperty(se) {
			return domain.Errorf(domain.EINVALID, "Field %s is not a field of this body; its fields are %s.", field, strings.Join(schemaProperties(se.Schema), ", ")).
				WithTarget("field", field).WithReason("invalid_field")
		}
		return domain.Errorf(domain.EINVALID, "Field %s is not valid: %s", field, se.Reason).
			WithTarget("field", field).WithReason("invalid_field")
	}
	msg := re.Reason
	if re.Err != nil {
		msg += ": " + re.Err.Error()
	}
	return domain.Errorf(domain.EINVALID, "The request body must be %s, sent as application/json (%s).", shape, msg).
		WithTarget("field", target).WithReason("invalid_body")
}

// recorder holds an answer back until it has been validated.
type recorder struct {
	http.ResponseWriter
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// Unwrap gives http.ResponseController the writer underneath (a fault rule's reset
// hijacks the connection through it).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// validateResponse (on with --validate-responses, and in every test) checks each answer
// of an operation against the document; an answer that breaks it becomes a 500 that says
// so, and is logged.
func (s *Server) validateResponse(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rt := stateOf(c).route // found once, by identify
		if rt == nil {
			return next(c)
		}
		orig := c.Response().Writer
		rec := &recorder{ResponseWriter: orig, header: orig.Header(), status: http.StatusOK}
		c.Response().Writer = rec
		defer func() { c.Response().Writer = orig }()
		err := next(c)
		if err != nil {
			s.writeError(c, err)
		}
		c.Response().Writer = orig
		rs := stateOf(c)
		if rs.dropped {
			return nil // a fault rule dropped the connection: there is no answer
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: c.Request(), Route: rt.kin},
			Status:                 rec.status,
			Header:                 rec.header,
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		}
		in.SetBodyBytes(rec.body.Bytes())
		// An injected answer goes out as the rule says, even a status the document does not
		// declare (it declares 429 and 503): the client's own validation sees it as it is.
		if verr := openapi3filter.ValidateResponse(context.Background(), in); verr != nil && rs.fault == nil {
			s.log.Error("answer breaks openapi.yaml", "trace", rs.trace, "operation", rt.op.ID, "status", rec.status, "error", verr.Error())
			c.Response().Committed = false
			c.Response().Status = 0
			c.Response().Size = 0
			orig.Header().Del(echo.HeaderContentLength)
			s.writeError(c, domain.Errorf(domain.EINTERNAL, "The server's answer (status %d) does not match openapi.yaml: %s", rec.status, firstLine(verr.Error())).WithReason("response_validation_failed"))
			return nil
		}
		orig.WriteHeader(rec.status)
		_, werr := io.Copy(orig, &rec.body)
		return werr
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// schemaProperties lists an object schema's properties, sorted.
func schemaProperties(s *openapi3.Schema) []string {
	if s == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(s.Properties))
}

// requiredFields lists the required properties of a request body's JSON schema.
func requiredFields(rb *openapi3.RequestBody) []string {
	if rb == nil {
		return nil
	}
	mt := rb.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return nil
	}
	return mt.Schema.Value.Required
}

// unsupportedProperty reports whether a schema error is a property the object's schema
// does not have (additionalProperties: false); kin-openapi names it only in the reason.
func unsupportedProperty(se *openapi3.SchemaError) bool {
	return se.SchemaField == "properties" && strings.HasSuffix(se.Reason, "is unsupported")
}
