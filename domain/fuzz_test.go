package domain

import (
	"errors"
	"strings"
	"testing"
)

// ParseCRN never panics; what it accepts is one instance of one account, rebuilt exactly
// from its parts; what it refuses is an invalid-header error naming Service-CRN.
func FuzzParseCRN(f *testing.F) {
	for _, s := range []string{
		"crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::",
		"crn:v1:bluemix:public:quantum-computing:us-east:a/x:y::z", "crn:v1::::::::", "", ":::::::::", "crn:v1:a:b:quantum-computing:c:a/:d::",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCRN(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != EINVALID || e.Target == nil || e.Target.Name != "Service-CRN" {
				t.Fatalf("ParseCRN(%q): %v, want an invalid Service-CRN", s, err)
			}
			return
		}
		rebuilt := strings.Join([]string{"crn", "v1", c.CName, c.CType, ServiceName, c.Region, "a/" + c.AccountID, c.Instance, "", ""}, ":")
		if c.Raw != s || rebuilt != s || !ValidAccountID(c.AccountID) {
			t.Fatalf("ParseCRN(%q) accepted %+v", s, c)
		}
	})
}

// ResolveAPIVersion never panics and answers only a published version, or an
// invalid-header error naming IBM-API-Version.
func FuzzResolveAPIVersion(f *testing.F) {
	for _, s := range []string{"", "2025-05-01", "2024-06-30", "2023-12-31", "9999-12-31", "2025-5-1", "2025-02-30", "0000-00-00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ResolveAPIVersion(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != EINVALID || e.Target == nil || e.Target.Name != "IBM-API-Version" {
				t.Fatalf("ResolveAPIVersion(%q): %v", s, err)
			}
			return
		}
		found := false
		for _, p := range APIVersions {
			found = found || p == v
		}
		if !found || (s != "" && v > s) {
			t.Fatalf("ResolveAPIVersion(%q) = %q", s, v)
		}
	})
}
