package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"
	"github.com/golang-jwt/jwt/v5"

	"github.com/qrapi/qrapi/internal/enginetest"
	"github.com/qrapi/qrapi/server"
	"github.com/qrapi/qrapi/spec"
)

// IBM's own Go SDK core, its IamAuthenticator pointed at the emulated IAM endpoint, gets a
// token that the API takes.
func TestGoSDKCoreIamAuthenticator(t *testing.T) {
	h := newHarness(t)
	auth, err := core.NewIamAuthenticatorBuilder().SetApiKey(keyAdmin).SetURL(h.url).Build()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.GetToken()
	if err != nil {
		t.Fatalf("IamAuthenticator against /identity/token: %v", err)
	}
	req, _ := http.NewRequest("GET", h.url+"/api/v1/instance", nil)
	req.Header.Set("Service-CRN", crnA1)
	if err := auth.Authenticate(req); err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Authorization") != "Bearer "+tok {
		t.Fatalf("Authorization %q", req.Header.Get("Authorization"))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d with the SDK's token", resp.StatusCode)
	}
	// A wrong key fails through the SDK with IAM's answer.
	bad, _ := core.NewIamAuthenticatorBuilder().SetApiKey("not-a-key-of-anyone-at-all").SetURL(h.url).Build()
	if _, err := bad.GetToken(); err == nil || !strings.Contains(err.Error(), "Provided API key could not be found") {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestTokenEndpoint(t *testing.T) {
	h := newHarness(t)
	resp, err := http.PostForm(h.url+"/identity/token", url.Values{"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}, "apikey": {keyViewer}})
	if err != nil {
		t.Fatal(err)
	}
	var tr map[string]any
	json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if resp.StatusCode != 200 || tr["token_type"] != "Bearer" || tr["refresh_token"] != "not_supported" || tr["expires_in"] != 3600.0 || tr["scope"] == nil {
		t.Fatalf("token answer: %d %v", resp.StatusCode, tr)
	}
	if exp := int64(tr["expiration"].(float64)); exp < h.clock.Now().Add(59*time.Minute).Unix() || exp > h.clock.Now().Add(61*time.Minute).Unix() {
		t.Fatalf("expiration %d is not an hour from now", exp)
	}
	// The token carries the principal and its account.
	parts := strings.Split(tr["access_token"].(string), ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if claims["sub"] != "iam-ServiceId-demo-viewer" || claims["account"].(map[string]any)["bss"] != acctDemo {
		t.Fatalf("claims %v", claims)
	}

	for name, c := range map[string]struct {
		form   url.Values
		status int
		code   string
	}{
		"wrong key":     {url.Values{"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}, "apikey": {"nobody-has-this-api-key-x"}}, 400, "BXNIM0415E"},
		"no key":        {url.Values{"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}}, 400, "BXNIM0109E"},
		"wrong grant":   {url.Values{"grant_type": {"password"}, "apikey": {keyAdmin}}, 400, "BXNIM0103E"},
		"no grant type": {url.Values{"apikey": {keyAdmin}}, 400, "BXNIM0109E"},
	} {
		resp, err := http.PostForm(h.url+"/identity/token", c.form)
		if err != nil {
			t.Fatal(err)
		}
		var ie map[string]any
		json.NewDecoder(resp.Body).Decode(&ie)
		resp.Body.Close()
		if resp.StatusCode != c.status || ie["errorCode"] != c.code || ie["errorMessage"] == "" {
			t.Errorf("%s: %d %v", name, resp.StatusCode, ie)
		}
	}
}

// A store that fails while a caller is authenticated (its database restarting, say) is a
// 500 in the error container with its cause logged, not a 401 that would tell the caller
// its token or API key is wrong; with a token and with an API key alike.
func TestStoreFailureWhileAuthenticatingIsNotA401(t *testing.T) {
	h := newHarness(t)
	admin := h.token(keyAdmin)
	h.store.failIdentity.Store(true)
	for _, auth := range []string{"Bearer " + admin, "apikey " + keyAdmin} {
		resp, body := h.do("GET", "/api/v1/instance", "", map[string]string{"Service-CRN": crnA1, "Authorization": auth}, "")
		ec := checkError(t, resp, body, 500, "internal")
		if strings.Contains(string(body), "disk on fire") || !strings.Contains(h.logs.String(), ec.Trace) {
			t.Fatalf("%s: the cause of a 500 must be logged with its trace, not answered: %s", strings.Fields(auth)[0], body)
		}
	}
	h.store.failIdentity.Store(false)
	if resp, body := h.do("GET", "/api/v1/instance", admin, map[string]string{"Service-CRN": crnA1}, ""); resp.StatusCode != 200 {
		t.Fatalf("once the store answers again: %d %s", resp.StatusCode, body)
	}
}

func TestExpiredAndForgedTokensAreRefused(t *testing.T) {
	h := newHarness(t)
	tok := h.token(keyAdmin)
	get := func(token string) (*http.Response, []byte) {
		return h.do("GET", "/api/v1/instance", token, map[string]string{"Service-CRN": crnA1}, "")
	}
	if resp, _ := get(tok); resp.StatusCode != 200 {
		t.Fatalf("fresh token: %d", resp.StatusCode)
	}
	h.clock.Add(time.Hour + time.Minute)
	resp, b := get(tok)
	ec := checkError(t, resp, b, 401, "unauthorized")
	if !strings.Contains(ec.Errors[0].Message, "expired") {
		t.Errorf("an expired token should be called expired: %s", b)
	}

	fresh := h.token(keyAdmin)
	parts := strings.Split(fresh, ".")
	var claims jwt.MapClaims
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(payload, &claims)
	forgedKey, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("someone else's key"))
	noneAlg, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	claims["sub"] = "IBMid-demo-other"
	tamperedPayload, _ := json.Marshal(claims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedPayload) + "." + parts[2]
	for name, tok := range map[string]string{"other key": forgedKey, "alg none": noneAlg, "tampered claims": tampered, "garbage": "abc.def.ghi", "truncated": fresh[:len(fresh)-5]} {
		resp, b := get(tok)
		checkError(t, resp, b, 401, "unauthorized")
		if strings.Contains(string(b), tok) {
			t.Errorf("%s: the error repeats the token", name)
		}
	}
	resp, b = h.do("GET", "/api/v1/instance", "", map[string]string{"Service-CRN": crnA1, "Authorization": "Basic dXNlcjpwYXNz"}, "")
	checkError(t, resp, b, 401, "unauthorized")
}

// A token is accepted until the leeway after its expiry (clock skew between the issuer and
// this server), on the first check and from the cache of verified tokens alike.
func TestTokenExpiryLeeway(t *testing.T) {
	get := func(h *harness, token string) int {
		resp, _ := h.do("GET", "/api/v1/instance", token, map[string]string{"Service-CRN": crnA1}, "")
		return resp.StatusCode
	}
	// The default, 5 s. exp is the issue time plus the TTL, truncated to the second.
	h := newHarness(t)
	tok := h.token(keyAdmin)
	h.clock.Add(time.Hour + 3*time.Second) // 3 to 4 s past exp
	if st := get(h, tok); st != 200 {
		t.Fatalf("within the default leeway: %d", st)
	}
	h.clock.Add(3 * time.Second) // 6 to 7 s past exp
	if st := get(h, tok); st != 401 {
		t.Fatalf("past the default leeway: %d", st)
	}
	// --token-leeway 0: refused once past exp.
	zero := time.Duration(0)
	h = newHarness(t, func(c *server.Config) { c.TokenLeeway = &zero })
	tok = h.token(keyAdmin)
	if st := get(h, tok); st != 200 {
		t.Fatalf("a fresh token: %d", st)
	}
	h.clock.Add(time.Hour + time.Second)
	if st := get(h, tok); st != 401 {
		t.Fatalf("with no leeway, 1 s past exp: %d", st)
	}
}

// A document whose operation needs an action that no role grants is refused at start, not
// discovered as a 403 on every call.
func TestStartRefusesAnActionNoRoleGrants(t *testing.T) {
	d, err := spec.Load()
	if err != nil {
		t.Fatal(err)
	}
	d.Operation("get_usage").IAMActions = []string{"quantum-computing.instance-usage.reed"}
	_, err = server.New(context.Background(), server.Config{Store: enginetest.Open(t), Doc: d})
	if err == nil || !strings.Contains(err.Error(), `get_usage requires IAM action "quantum-computing.instance-usage.reed", which no role grants`) {
		t.Fatalf("server.New with a misspelt action: %v", err)
	}
}

// Every error of the emulated IAM (/identity/...) is in IAM's own shape, with the trace as
// its request id: a wrong method (405, with Allow), an unknown path (404), a body over the
// limit (413).
func TestIdentityErrorsInIAMShape(t *testing.T) {
	h := newHarness(t)
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for _, c := range []struct {
		method, path string
		hdr          map[string]string
		body         string
		status       int
		allow        string
	}{
		{"GET", "/identity/token", nil, "", 405, "POST"},
		{"POST", "/identity/keys", nil, "", 405, "GET"},
		{"POST", "/identity/nothing", form, "", 404, ""},
		{"POST", "/identity/token", form, "apikey=" + strings.Repeat("k", 2<<20), 413, ""},
	} {
		resp, b := h.do(c.method, c.path, "", c.hdr, c.body)
		var e struct {
			ErrorCode    string `json:"errorCode"`
			ErrorMessage string `json:"errorMessage"`
			Context      struct {
				RequestID   string `json:"requestId"`
				RequestType string `json:"requestType"`
				StartTime   string `json:"startTime"`
			} `json:"context"`
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if resp.StatusCode != c.status || dec.Decode(&e) != nil || e.ErrorCode == "" || e.ErrorMessage == "" ||
			e.Context.RequestID == "" || e.Context.RequestID != resp.Header.Get("X-Correlation-ID") || resp.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d (want %d), Allow %q: %s", c.method, c.path, resp.StatusCode, c.status, resp.Header.Get("Allow"), b)
		}
	}
}

// An API key in the Authorization header that no principal owns, or none at all after the
// word, is a 401 in the error container that says what to send.
func TestBadAPIKeyHeaderIs401(t *testing.T) {
	h := newHarness(t)
	for _, auth := range []string{"apikey " + "qrdemo-nobodys-key-0123456789abcdefghij", "apikey ", "APIKEY", "Basic dXNlcjpwYXNz"} {
		resp, b := h.do("GET", "/api/v1/instance", "", map[string]string{"Service-CRN": crnA1, "Authorization": auth}, "")
		ec := checkError(t, resp, b, 401, "unauthorized")
		if !strings.Contains(ec.Errors[0].Message, "apikey") && !strings.Contains(ec.Errors[0].Message, "API key") {
			t.Errorf("%q: %s", auth, b)
		}
	}
	// The key's word is case-insensitive, as HTTP's scheme names are.
	resp, b := h.do("GET", "/api/v1/instance", "", map[string]string{"Service-CRN": crnA1, "Authorization": "ApiKey " + keyAdmin}, "")
	if resp.StatusCode != 200 {
		t.Fatalf("ApiKey <key>: %d %s", resp.StatusCode, b)
	}
}

// The control API's token: only the exact token opens it, whatever the length of a wrong
// one (compared as fixed-size digests, so the time taken does not reveal the length).
func TestAdminTokenComparison(t *testing.T) {
	h := newHarness(t)
	for tok, want := range map[string]int{
		testAdminToken:                         200,
		testAdminToken + "x":                   401,
		testAdminToken[:len(testAdminToken)-1]: 401,
		"":                                     401,
		strings.Repeat("t", 4096):              401,
		strings.ToUpper(testAdminToken):        401,
	} {
		resp, _ := h.do("GET", "/control/v1/audit-events", tok, nil, "")
		if resp.StatusCode != want {
			t.Errorf("admin token of %d bytes: %d, want %d", len(tok), resp.StatusCode, want)
		}
	}
}
