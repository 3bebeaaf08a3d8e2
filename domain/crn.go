package domain

import (
	"strconv"
	"strings"
)

// ServiceName is the CRN service name of Qiskit Runtime instances.
const ServiceName = "quantum-computing"

// validChars reports whether s is 1 to max bytes of letters, digits and the extra
// bytes: the CRN checks run on every request, and a loop is cheaper than a regexp.
func validChars(s string, max int, extra string) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte(extra, c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// CRN is a parsed instance CRN:
// crn:v1:<cname>:<ctype>:quantum-computing:<region>:a/<account id>:<instance guid>::
type CRN struct {
	Raw       string
	CName     string // bluemix on IBM Cloud
	CType     string // public
	Region    string
	AccountID string
	Instance  string
}

// ParseCRN parses an instance CRN, refusing anything that does not name one Qiskit
// Runtime instance of one account.
func ParseCRN(s string) (CRN, error) {
	bad := func(why string) (CRN, error) {
		return CRN{}, Errorf(EINVALID, "Service-CRN is not a Qiskit Runtime instance CRN (%s); expected crn:v1:bluemix:public:quantum-computing:<region>:a/<account id>:<instance guid>::", why).
			WithTarget("header", "Service-CRN").WithReason("invalid_header")
	}
	parts := strings.Split(s, ":")
	if len(parts) != 10 {
		return bad("it has " + strconv.Itoa(len(parts)) + " colon-separated segments, not 10")
	}
	if parts[0] != "crn" || parts[1] != "v1" {
		return bad("it does not start with crn:v1:")
	}
	if parts[4] != ServiceName {
		return bad("its service name is not " + ServiceName)
	}
	for i, name := range map[int]string{2: "cname", 3: "ctype", 5: "region", 7: "instance"} {
		if !validChars(parts[i], 256, "_.-") {
			return bad("its " + name + " segment is empty or has characters a CRN does not allow")
		}
	}
	scope, ok := strings.CutPrefix(parts[6], "a/")
	if !ok || !ValidAccountID(scope) {
		return bad("its scope is not a/<account id>")
	}
	if parts[8] != "" || parts[9] != "" {
		return bad("it names a resource inside the instance")
	}
	return CRN{Raw: s, CName: parts[2], CType: parts[3], Region: parts[5], AccountID: scope, Instance: parts[7]}, nil
}

// ValidAccountID reports whether id is an account id as the API accepts it (no a/ prefix).
func ValidAccountID(id string) bool { return validChars(id, 64, "_-") }
