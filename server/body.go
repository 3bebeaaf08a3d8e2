package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/big"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/qrapi/qrapi/domain"
)

// checkJSONBody reads a JSON request body before it is validated against the document and
// refuses what a decoder would silently let through: data after the JSON value, and an
// object that names a field twice (a decoder keeps the last). It then writes numbers that
// are whole (3600.0, 1e3) as integers, so that a number the document's validation accepts
// as an integer is never refused later by the handler's decoder. The request's body is
// replaced by what was checked.
func checkJSONBody(r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody || !hasMediaType(r.Header.Get(echo.HeaderContentType), echo.MIMEApplicationJSON) {
		return nil
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge()
		}
		return domain.Errorf(domain.EINVALID, "The request body could not be read.").WithReason("invalid_body")
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	if len(bytes.TrimSpace(b)) == 0 {
		return nil // no body: validation says whether one is required
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, changed, err := readJSONValue(dec)
	if errors.Is(err, errNotJSON) {
		return nil // not JSON: validation answers it, naming the fields the document requires
	}
	if err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return domain.Errorf(domain.EINVALID, "The request body has data after its JSON value: send one JSON object and nothing else.").
			WithTarget("field", "body").WithReason("invalid_body")
	}
	if changed {
		out, err := json.Marshal(v)
		if err != nil {
			return err
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(out)), int64(len(out))
	}
	return nil
}

// errNotJSON is a body that is not JSON at all, which request validation reports.
var errNotJSON = errors.New("not JSON")

// readJSONValue reads one JSON value token by token: an object naming a field twice is an
// error; changed reports whether a whole number was written in another form.
func readJSONValue(dec *json.Decoder) (v any, changed bool, err error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, false, errNotJSON
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, false, errNotJSON
				}
				key, _ := kt.(string)
				if _, dup := obj[key]; dup {
					return nil, false, domain.Errorf(domain.EINVALID, "The request body names field %s twice: name each field once.", key).
						WithTarget("field", key).WithReason("invalid_body")
				}
				val, c, err := readJSONValue(dec)
				if err != nil {
					return nil, false, err
				}
				obj[key], changed = val, changed || c
			}
			if _, err := dec.Token(); err != nil { // }
				return nil, false, errNotJSON
			}
			return obj, changed, nil
		case '[':
			arr := []any{}
			for dec.More() {
				val, c, err := readJSONValue(dec)
				if err != nil {
					return nil, false, err
				}
				arr, changed = append(arr, val), changed || c
			}
			if _, err := dec.Token(); err != nil { // ]
				return nil, false, errNotJSON
			}
			return arr, changed, nil
		}
	case json.Number:
		if whole, ok := wholeNumber(t); ok && whole != t.String() {
			return json.Number(whole), true, nil
		}
		return t, false, nil
	}
	return tok, false, nil
}

// wholeNumber returns n written as an integer if it is a whole number that an int64 holds
// (3600.0 -> 3600, 1e3 -> 1000); ok is false otherwise (1.5, 1e400), leaving n as it is.
func wholeNumber(n json.Number) (string, bool) {
	if _, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
		return n.String(), true
	}
	f, _, err := big.ParseFloat(n.String(), 10, 256, big.ToNearestEven)
	if err != nil || !f.IsInt() {
		return "", false
	}
	i, acc := f.Int64()
	if acc != big.Exact || i == math.MinInt64 {
		return "", false
	}
	return strconv.FormatInt(i, 10), true
}
