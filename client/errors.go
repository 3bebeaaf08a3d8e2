package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/IBM/go-sdk-core/v5/core"
)

// Sentinel errors that errors.Is matches against an *Error by its status.
var (
	ErrBadRequest   = errors.New("bad request")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrTooLarge     = errors.New("request too large")
	ErrServer       = errors.New("server error")
	// ErrTooManyRequests is a 429 and ErrUnavailable a 503, answered after the client's
	// retries ran out: any IBM Cloud API may answer them (openapi.yaml declares both).
	ErrTooManyRequests = errors.New("too many requests")
	ErrUnavailable     = errors.New("service unavailable")
	// ErrAuthentication matches a failure to get an access token from IAM (a wrong API key,
	// IAM unreachable); an answer of IAM's is also an *Error with its status and code.
	ErrAuthentication = errors.New("authentication failed")
)

// ErrorItem is one entry of the API's error container.
type ErrorItem struct {
	Code     string
	Message  string
	MoreInfo string
	Target   string // "field instance_limit", "header Service-CRN", or ""
}

// Error is a non-2xx answer of the API.
type Error struct {
	StatusCode int
	Trace      string // the error container's trace, or the X-Correlation-ID header
	Errors     []ErrorItem
	Body       []byte // the raw answer
}

// Error is one line: the status, then each code and message.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	for _, it := range e.Errors {
		fmt.Fprintf(&b, ": %s: %s", it.Code, it.Message)
	}
	if len(e.Errors) == 0 && len(e.Body) > 0 {
		fmt.Fprintf(&b, ": %.200s", strings.TrimSpace(string(e.Body)))
	}
	if e.Trace != "" {
		fmt.Fprintf(&b, " (trace %s)", e.Trace)
	}
	return b.String()
}

// Is matches the sentinel errors by status code.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrTooLarge:
		return e.StatusCode == http.StatusRequestEntityTooLarge
	case ErrTooManyRequests:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.StatusCode == http.StatusServiceUnavailable
	case ErrServer:
		return e.StatusCode >= 500
	}
	return false
}

// Code is the first error's code, or "".
func (e *Error) Code() string {
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// newError reads an answer's error container, whatever its status.
func newError(resp *http.Response, body []byte) *Error {
	e := &Error{StatusCode: resp.StatusCode, Body: body, Trace: resp.Header.Get("X-Correlation-ID")}
	var ec struct {
		Trace  string `json:"trace"`
		Errors []struct {
			Code     string `json:"code"`
			Message  string `json:"message"`
			MoreInfo string `json:"more_info"`
			Target   *struct {
				Type string `json:"type"`
				Name string `json:"name"`
			} `json:"target"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &ec) == nil {
		if ec.Trace != "" {
			e.Trace = ec.Trace
		}
		for _, it := range ec.Errors {
			item := ErrorItem{Code: it.Code, Message: it.Message, MoreInfo: it.MoreInfo}
			if it.Target != nil {
				item.Target = it.Target.Type + " " + it.Target.Name
			}
			e.Errors = append(e.Errors, item)
		}
	}
	return e
}

// AuthError is a failure to authenticate a call: IAM's answer when there was one (Answer,
// with IAM's errorCode and errorMessage as its one ErrorItem), else the cause.
type AuthError struct {
	Answer *Error // nil if IAM did not answer
	Err    error
}

// Error is one line, as the API's errors: "client: authenticate: 400 Bad Request:
// BXNIM0415E: Provided API key could not be found. (trace …)".
func (e *AuthError) Error() string {
	if e.Answer != nil {
		return "client: authenticate: " + e.Answer.Error()
	}
	return "client: authenticate: " + e.Err.Error()
}

// Unwrap gives ErrAuthentication, IAM's answer as an *Error, and the cause.
func (e *AuthError) Unwrap() []error {
	out := []error{ErrAuthentication, e.Err}
	if e.Answer != nil {
		out = append(out, e.Answer)
	}
	return out
}

// authError reads IAM's answer out of a go-sdk-core authentication failure.
func authError(err error) error {
	ae := &AuthError{Err: err}
	var prob *core.AuthenticationError
	if errors.As(err, &prob) && prob.HTTPProblem != nil && prob.Response != nil && prob.Response.StatusCode != 0 {
		r := prob.Response
		body := r.RawResult
		if body == nil && r.Result != nil { // a JSON answer, which the core decoded into a map
			body, _ = json.Marshal(r.Result)
		}
		e := &Error{StatusCode: r.StatusCode, Body: body}
		if r.Headers != nil {
			e.Trace = r.Headers.Get("X-Correlation-ID")
			if e.Trace == "" {
				e.Trace = r.Headers.Get("X-Global-Transaction-Id")
			}
		}
		var iam struct {
			ErrorCode    string `json:"errorCode"`
			ErrorMessage string `json:"errorMessage"`
			Context      struct {
				RequestID string `json:"requestId"`
			} `json:"context"`
		}
		if json.Unmarshal(body, &iam) == nil && iam.ErrorCode != "" {
			e.Errors = []ErrorItem{{Code: iam.ErrorCode, Message: iam.ErrorMessage}}
			if iam.Context.RequestID != "" {
				e.Trace = iam.Context.RequestID
			}
		}
		ae.Answer = e
	}
	return ae
}
