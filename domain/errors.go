// Package domain holds the types and rules of the Qiskit Runtime Instances and Accounts
// service, in plain Go: no HTTP, no SQL, no generated wire types. The server translates
// wire types to these and back; the store keeps them.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// Error codes: what kind of failure an error is. Exactly one place (server/errors.go)
// turns a code into an HTTP status and the API's error container.
const (
	EINVALID      = "invalid"            // the request is malformed
	EUNAUTHORIZED = "unauthorized"       // no valid credentials
	EFORBIDDEN    = "forbidden"          // valid credentials, no access
	ENOTFOUND     = "not_found"          // the target does not exist (or may not be seen)
	ECONFLICT     = "conflict"           // the request contradicts the current state
	ETOOLARGE     = "too_large"          // the request body is too large
	ENOTALLOWED   = "method_not_allowed" // the path exists, the method does not
	ETOOMANY      = "too_many_requests"  // the caller must slow down (see RetryAfter)
	EUNAVAILABLE  = "unavailable"        // the server cannot answer now (its database is down)
	EINTERNAL     = "internal"           // the server failed
)

// Target names the part of a request that an error is about.
type Target struct {
	Type string // field, parameter or header
	Name string
}

// Error is the one error type of the program: a code, a message for a person, and
// optionally a more specific snake_case reason and the part of the request at fault.
type Error struct {
	Code    string
	Reason  string // a specific snake_case code for the error container; defaults from Code
	Message string
	Target  *Target
	// RetryAfter, if set, is how long the caller should wait before trying again.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithTarget returns e naming the part of the request at fault.
func (e *Error) WithTarget(typ, name string) *Error {
	e.Target = &Target{Type: typ, Name: name}
	return e
}

// WithReason returns e with a specific snake_case reason code.
func (e *Error) WithReason(reason string) *Error {
	e.Reason = reason
	return e
}

// WithRetryAfter returns e saying how long the caller should wait before trying again.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	e.RetryAfter = d
	return e
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, else EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	if errors.Is(err, ErrUnavailable) {
		return EUNAVAILABLE
	}
	return EINTERNAL
}

// ErrUnavailable is wrapped by a store's error when its database cannot be reached or is
// going away (a restart): the request may succeed if tried again shortly.
var ErrUnavailable = errors.New("the database cannot answer now")

// AsError returns err as an *Error; anything else becomes an internal error, or an
// unavailable one if it wraps ErrUnavailable, whose message says nothing of the cause
// (that goes to the log, not to the caller).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, ErrUnavailable) {
		return &Error{Code: EUNAVAILABLE, Reason: "service_unavailable", RetryAfter: time.Second,
			Message: "The server's database cannot answer now; try again shortly. The trace id identifies the failure in the server's log."}
	}
	return &Error{Code: EINTERNAL, Message: "The server failed to answer the request; the trace id identifies it in the server's log."}
}
