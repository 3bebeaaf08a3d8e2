package domain

import (
	"strings"
	"time"
)

// APIVersions are the published values of the IBM-API-Version header, oldest first.
var APIVersions = []string{"2024-01-01", "2025-01-01", "2025-05-01", "2026-02-01", "2026-02-15", "2026-03-15", "2026-04-15"}

// DefaultAPIVersion is the version a request without IBM-API-Version gets.
const DefaultAPIVersion = "2025-05-01"

// apiVersionDates are APIVersions parsed once.
var apiVersionDates = func() []time.Time {
	ds := make([]time.Time, len(APIVersions))
	for i, v := range APIVersions {
		ds[i], _ = time.Parse(time.DateOnly, v)
	}
	return ds
}()

// ResolveAPIVersion maps the IBM-API-Version header to the published version that answers:
// absent means the default; a later date means the newest version on or before it.
func ResolveAPIVersion(header string) (string, error) {
	if header == "" || header == DefaultAPIVersion {
		return DefaultAPIVersion, nil
	}
	d, err := time.Parse(time.DateOnly, header)
	if err != nil {
		return "", Errorf(EINVALID, "IBM-API-Version %q is not a date of the form YYYY-MM-DD", header).
			WithTarget("header", "IBM-API-Version").WithReason("invalid_header")
	}
	var chosen string
	for i, vd := range apiVersionDates {
		if !vd.After(d) {
			chosen = APIVersions[i]
		}
	}
	if chosen == "" {
		return "", Errorf(EINVALID, "IBM-API-Version %s is older than every supported version; supported versions: %s", header, strings.Join(APIVersions, ", ")).
			WithTarget("header", "IBM-API-Version").WithReason("unsupported_api_version")
	}
	return chosen, nil
}
