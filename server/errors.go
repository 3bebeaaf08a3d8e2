package server

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/qrapi/qrapi/domain"
)

// moreInfo is the documentation link given with every error.
const moreInfo = "https://quantum.cloud.ibm.com/docs/api/qiskit-runtime-rest"

// statusOf is the one mapping from a domain error code to an HTTP status.
var statusOf = map[string]int{
	domain.EINVALID:      http.StatusBadRequest,
	domain.EUNAUTHORIZED: http.StatusUnauthorized,
	domain.EFORBIDDEN:    http.StatusForbidden,
	domain.ENOTFOUND:     http.StatusNotFound,
	domain.ENOTALLOWED:   http.StatusMethodNotAllowed,
	domain.ECONFLICT:     http.StatusConflict,
	domain.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	domain.ETOOMANY:      http.StatusTooManyRequests,
	domain.EUNAVAILABLE:  http.StatusServiceUnavailable,
	domain.EINTERNAL:     http.StatusInternalServerError,
}

// codeOf turns an HTTP status that echo produced into a domain code.
func codeOf(status int) string {
	for code, s := range statusOf {
		if s == status {
			return code
		}
	}
	if status >= 500 {
		return domain.EINTERNAL
	}
	return domain.EINVALID
}

// errorBody is the IBM API Handbook's error container, as openapi.yaml's ErrorContainer.
// It is written by hand rather than with gen.ErrorContainer so that an error can always
// be written, whatever else failed.
type errorBody struct {
	Trace      string       `json:"trace"`
	StatusCode int          `json:"status_code"`
	Errors     []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code     string       `json:"code"`
	Message  string       `json:"message"`
	MoreInfo string       `json:"more_info"`
	Target   *errorTarget `json:"target,omitempty"`
}

type errorTarget struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// naming returns a store's not-found error naming the part of the request that named
// what was not found; stores do not know how a request named it. Other errors pass.
func naming(err error, typ, name string) error {
	var de *domain.Error
	if errors.As(err, &de) && de.Code == domain.ENOTFOUND && de.Target == nil {
		return de.WithTarget(typ, name)
	}
	return err
}

// toDomainError turns anything a handler or middleware returned into a *domain.Error,
// including echo's own errors (404 unknown route, 405, 413 from its body limit).
func toDomainError(err error) *domain.Error {
	var de *domain.Error
	if errors.As(err, &de) {
		return de
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return domain.Errorf(domain.ENOTFOUND, "No operation of this API has this path.").WithReason("not_found")
		case http.StatusMethodNotAllowed:
			return domain.Errorf(domain.ENOTALLOWED, "This path does not take this method.").WithReason("method_not_allowed")
		case http.StatusRequestEntityTooLarge:
			return tooLarge()
		}
		if he.Code >= 500 {
			return domain.AsError(err)
		}
		return domain.Errorf(codeOf(he.Code), "%v", he.Message).WithReason(snake(http.StatusText(he.Code)))
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge()
	}
	return domain.AsError(err)
}

// maxMessageRunes bounds an error's message, which may quote what the caller sent (a
// header's value, say): the documents allow 2,048 characters, and a character the JSON
// encoding must replace (invalid UTF-8) stays one.
const maxMessageRunes = 1024

// shortened is msg cut to maxMessageRunes, marked with an ellipsis where it was cut.
func shortened(msg string) string {
	if utf8.RuneCountInString(msg) <= maxMessageRunes {
		return msg
	}
	n := 0
	for i := range msg {
		if n == maxMessageRunes-1 {
			return msg[:i] + "…"
		}
		n++
	}
	return msg
}

func tooLarge() *domain.Error {
	return domain.Errorf(domain.ETOOLARGE, "The request body is larger than the %d bytes this server accepts.", maxBodyBytes).WithReason("payload_too_large")
}

func snake(s string) string { return strings.ReplaceAll(strings.ToLower(s), " ", "_") }

// writeError writes err as the error container, with the request's trace id in the body
// and in X-Correlation-ID. Internal errors are logged with their cause, which the caller
// never sees.
func (s *Server) writeError(c echo.Context, err error) {
	if c.Response().Committed {
		return
	}
	rs := stateOf(c)
	de := toDomainError(err)
	status := statusOf[de.Code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	injected, isInjected := injectedStatus(err)
	if isInjected {
		status = injected
	} else if status >= http.StatusInternalServerError {
		s.log.ErrorContext(c.Request().Context(), "request failed", slog.String("trace", rs.trace), slog.String("error", err.Error()))
	}
	if status == http.StatusMethodNotAllowed {
		if allow := s.allowed[c.Path()]; allow != "" {
			c.Response().Header().Set(echo.HeaderAllow, allow)
		}
	}
	if de.RetryAfter > 0 {
		c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(retryAfterSeconds(de.RetryAfter)))
	}
	reason := de.Reason
	if reason == "" {
		reason = de.Code
	}
	if strings.HasPrefix(c.Request().URL.Path, iamPathPrefix) {
		// The emulated IAM answers in IAM's own error shape, whatever the error.
		if werr := s.iamFail(c, status, reason, de.Message); werr != nil {
			s.log.WarnContext(c.Request().Context(), "writing error answer failed", slog.String("trace", rs.trace), slog.String("error", werr.Error()))
		}
		return
	}
	if status == http.StatusUnauthorized {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="IBM Cloud IAM"`)
	}
	entry := errorEntry{Code: reason, Message: shortened(de.Message), MoreInfo: moreInfo}
	if de.Target != nil {
		entry.Target = &errorTarget{Type: de.Target.Type, Name: de.Target.Name}
	}
	rs.errCode = reason
	body := errorBody{Trace: rs.trace, StatusCode: status, Errors: []errorEntry{entry}}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if werr := c.JSON(status, body); werr != nil {
		s.log.WarnContext(c.Request().Context(), "writing error answer failed", slog.String("trace", rs.trace), slog.String("error", werr.Error()))
	}
}
