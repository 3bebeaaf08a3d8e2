package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"
	"github.com/oapi-codegen/nullable"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/gen"
)

// DefaultURL is the service's URL in us-east; other regions are served at
// https://<region>.quantum.cloud.ibm.com/api.
const DefaultURL = "https://quantum.cloud.ibm.com/api"

// DefaultIAMURL is IBM Cloud IAM, where API keys are exchanged for tokens.
const DefaultIAMURL = "https://iam.cloud.ibm.com"

// DefaultAPIVersion is the IBM-API-Version sent unless told otherwise: the version
// openapi.yaml targets (its info.version).
const DefaultAPIVersion = "2025-05-01"

// Environment variables that FromEnv reads, as IBM's Qiskit clients name them.
const (
	EnvAPIKey   = "QISKIT_IBM_TOKEN"
	EnvInstance = "QISKIT_IBM_INSTANCE"
	EnvURL      = "QISKIT_IBM_URL"
	EnvIAMURL   = "IBM_IAM_URL"
)

type config struct {
	url        string
	iamURL     string
	apiKey     string
	token      string
	auth       core.Authenticator
	crn        string
	apiVersion string
	httpClient *http.Client
	retry      RetryPolicy
	onRetry    func(RetryEvent)
	validate   bool
	userAgent  string
	getenv     func(string) string
}

// Option configures a Client.
type Option func(*config) error

// WithURL sets the service URL, e.g. http://127.0.0.1:8080/api for the reference server.
func WithURL(u string) Option {
	return func(c *config) error { c.url = strings.TrimSuffix(u, "/"); return nil }
}

// WithIAMURL sets where API keys are exchanged. Without it, IAMURLFor(the service URL)
// decides: IBM Cloud's IAM for IBM Cloud's URLs, else the service URL's own origin.
func WithIAMURL(u string) Option { return func(c *config) error { c.iamURL = u; return nil } }

// WithAPIKey authenticates with an IBM Cloud API key, exchanged for tokens that are
// cached and refreshed before they expire (go-sdk-core's IamAuthenticator).
func WithAPIKey(key string) Option { return func(c *config) error { c.apiKey = key; return nil } }

// WithBearerToken authenticates with a fixed access token.
func WithBearerToken(token string) Option {
	return func(c *config) error { c.token = token; return nil }
}

// WithAuthenticator authenticates with any go-sdk-core authenticator.
func WithAuthenticator(a core.Authenticator) Option {
	return func(c *config) error { c.auth = a; return nil }
}

// WithCRN sets the instance CRN sent as Service-CRN; without WithURL, its region picks
// the service URL.
func WithCRN(crn string) Option { return func(c *config) error { c.crn = crn; return nil } }

// WithAPIVersion sets the IBM-API-Version sent on every request.
func WithAPIVersion(v string) Option { return func(c *config) error { c.apiVersion = v; return nil } }

// WithHTTPClient sets the HTTP client (its Transport is wrapped for retries).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error { c.httpClient = hc; return nil }
}

// WithRetry sets the retry policy.
func WithRetry(p RetryPolicy) Option {
	return func(c *config) error {
		if p.MaxAttempts < 1 || p.MinWait < 0 || p.MaxWait < p.MinWait || p.MaxElapsed < 0 {
			return fmt.Errorf("client: invalid retry policy %+v", p)
		}
		c.retry = p
		return nil
	}
}

// WithRetryObserver calls f before each retry, with what the failed attempt got and the
// wait before the next one: for logs (qrctl --debug prints them).
func WithRetryObserver(f func(RetryEvent)) Option {
	return func(c *config) error { c.onRetry = f; return nil }
}

// WithoutRetry sends each request once.
func WithoutRetry() Option {
	return func(c *config) error { c.retry = RetryPolicy{MaxAttempts: 1}; return nil }
}

// WithResponseValidation checks every answer against the embedded openapi.yaml and fails
// a call whose answer does not match with a *ValidationError, so drift between the service
// and the document shows.
func WithResponseValidation() Option { return func(c *config) error { c.validate = true; return nil } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *config) error { c.userAgent = ua; return nil } }

// FromEnv fills what is not set otherwise from QISKIT_IBM_TOKEN (API key),
// QISKIT_IBM_INSTANCE (CRN), QISKIT_IBM_URL and IBM_IAM_URL. getenv is os.Getenv, or a
// stand-in in tests.
func FromEnv(getenv func(string) string) Option {
	return func(c *config) error { c.getenv = getenv; return nil }
}

// Client calls the Instances and Accounts operations.
type Client struct {
	api        *gen.Client
	url        string
	crn        string
	apiVersion string
	auth       core.Authenticator
	userAgent  string
}

// New makes a Client. Without an explicit URL it talks to IBM Cloud in the CRN's region.
func New(opts ...Option) (*Client, error) {
	c := &config{retry: DefaultRetryPolicy, apiVersion: DefaultAPIVersion, userAgent: "qrapi-go-client/1"}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.getenv != nil {
		fill := func(p *string, name string) {
			if *p == "" {
				*p = c.getenv(name)
			}
		}
		if c.token == "" && c.auth == nil {
			fill(&c.apiKey, EnvAPIKey)
		}
		fill(&c.crn, EnvInstance)
		fill(&c.url, EnvURL)
		fill(&c.iamURL, EnvIAMURL)
		c.url = strings.TrimSuffix(c.url, "/")
	}
	if c.crn != "" {
		crn, err := domain.ParseCRN(c.crn)
		if err != nil {
			return nil, fmt.Errorf("client: %s", domain.AsError(err).Message)
		}
		if c.url == "" {
			c.url = RegionURL(crn.Region)
		}
	}
	if c.url == "" {
		c.url = DefaultURL
	}
	if c.iamURL == "" {
		c.iamURL = IAMURLFor(c.url)
	}
	auth, err := c.authenticator()
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 60 * time.Second}
	if c.httpClient != nil {
		copied := *c.httpClient
		hc = &copied
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	var tr http.RoundTripper = &retryTransport{next: base, policy: c.retry, sleep: sleepCtx, observe: c.onRetry}
	if c.validate {
		if tr, err = newValidatingTransport(tr, c.url); err != nil {
			return nil, err
		}
	}
	hc.Transport = tr
	// The plain generated client: answers are decoded here, so an error body that is not
	// quite the document's container still becomes a *Error, not a decoding failure.
	api, err := gen.NewClient(c.url, gen.WithHTTPClient(hc))
	if err != nil {
		return nil, err
	}
	return &Client{api: api, url: c.url, crn: c.crn, apiVersion: c.apiVersion, auth: auth, userAgent: c.userAgent}, nil
}

func (c *config) authenticator() (core.Authenticator, error) {
	n := 0
	for _, set := range []bool{c.apiKey != "", c.token != "", c.auth != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("client: give one of an API key, a bearer token or an authenticator")
	}
	switch {
	case c.auth != nil:
		return c.auth, nil
	case c.token != "":
		return core.NewBearerTokenAuthenticator(c.token)
	case c.apiKey != "":
		b := core.NewIamAuthenticatorBuilder().SetApiKey(c.apiKey)
		if c.iamURL != "" {
			b.SetURL(c.iamURL)
		}
		if c.httpClient != nil {
			b.SetClient(c.httpClient)
		}
		return b.Build()
	}
	return core.NewNoAuthAuthenticator()
}

// IAMURLFor is where an API key for the service at serviceURL is exchanged when no IAM
// URL is given: IBM Cloud's IAM for IBM Cloud's own hosts (iam.test.cloud.ibm.com for
// test.cloud.ibm.com's), and otherwise the service URL's own origin, whose
// /identity/token the reference server answers. A key never goes to a host the caller did
// not name.
func IAMURLFor(serviceURL string) string {
	u, err := url.Parse(serviceURL)
	if err != nil || u.Host == "" {
		return DefaultIAMURL
	}
	host := u.Hostname()
	switch {
	case host == "test.cloud.ibm.com" || strings.HasSuffix(host, ".test.cloud.ibm.com"):
		return "https://iam.test.cloud.ibm.com"
	case host == "cloud.ibm.com" || strings.HasSuffix(host, ".cloud.ibm.com"):
		return DefaultIAMURL
	}
	return u.Scheme + "://" + u.Host
}

// RegionURL is the service URL of an IBM Cloud region: us-east is the default URL.
func RegionURL(region string) string {
	if region == "" || region == "us-east" {
		return DefaultURL
	}
	return "https://" + region + ".quantum.cloud.ibm.com/api"
}

// URL is the service URL the client talks to.
func (c *Client) URL() string { return c.url }

// CRN is the instance CRN the client sends unless a call says otherwise.
func (c *Client) CRN() string { return c.crn }

// Authenticator is the authenticator in use (for example to show a token's expiry).
func (c *Client) Authenticator() core.Authenticator { return c.auth }

// CallOption changes one call.
type CallOption func(*call)

type call struct {
	crn        string
	apiVersion string
	raw        *[]byte
}

// CaptureBody stores the raw answer of this call in *body, for callers that show the
// API's answer exactly as it came (qrctl --output json).
func CaptureBody(body *[]byte) CallOption { return func(c *call) { c.raw = body } }

// ForCRN sends this call for another instance.
func ForCRN(crn string) CallOption { return func(c *call) { c.crn = crn } }

// AtAPIVersion sends this call with another IBM-API-Version.
func AtAPIVersion(v string) CallOption { return func(c *call) { c.apiVersion = v } }

func (c *Client) call(opts []CallOption) *call {
	k := &call{crn: c.crn, apiVersion: c.apiVersion}
	for _, o := range opts {
		o(k)
	}
	return k
}

func (c *Client) editor(k *call) gen.RequestEditorFn {
	return func(ctx context.Context, r *http.Request) error {
		if k.apiVersion != "" {
			r.Header.Set("IBM-API-Version", k.apiVersion)
		}
		if c.userAgent != "" {
			r.Header.Set("User-Agent", c.userAgent)
		}
		if err := c.auth.Authenticate(r); err != nil {
			return authError(err)
		}
		return nil
	}
}

func (k *call) needCRN() error {
	if k.crn == "" {
		return errors.New("client: no instance CRN: use WithCRN, ForCRN or QISKIT_IBM_INSTANCE")
	}
	return nil
}

// answer reads an answer: the wanted status decodes into out (if any), any other is a *Error.
func (k *call) answer(resp *http.Response, err error, want int, out any) error {
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("client: read answer: %w", err)
	}
	if k.raw != nil {
		*k.raw = body
	}
	if resp.StatusCode != want {
		return newError(resp, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("client: decode the %d answer: %w", resp.StatusCode, err)
	}
	return nil
}

// Instance returns the instance named by the CRN (get_instance).
func (c *Client) Instance(ctx context.Context, opts ...CallOption) (*gen.Instance, error) {
	k := c.call(opts)
	if err := k.needCRN(); err != nil {
		return nil, err
	}
	var out gen.Instance
	resp, err := c.api.GetInstance(ctx, &gen.GetInstanceParams{ServiceCRN: k.crn}, c.editor(k))
	if err := k.answer(resp, err, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// InstanceConfiguration returns the instance's configuration (get_instance_configuration).
func (c *Client) InstanceConfiguration(ctx context.Context, opts ...CallOption) (*gen.InstanceConfiguration, error) {
	k := c.call(opts)
	if err := k.needCRN(); err != nil {
		return nil, err
	}
	var out gen.InstanceConfiguration
	resp, err := c.api.GetInstanceConfiguration(ctx, &gen.GetInstanceConfigurationParams{ServiceCRN: k.crn}, c.editor(k))
	if err := k.answer(resp, err, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetInstanceLimit sets the instance's usage limit in seconds (replace_instance_configuration).
// A limit below the seconds already consumed fails with ErrConflict.
func (c *Client) SetInstanceLimit(ctx context.Context, seconds int32, opts ...CallOption) error {
	return c.replaceConfiguration(ctx, nullable.NewNullableWithValue(seconds), opts)
}

// RemoveInstanceLimit removes the instance's usage limit (replace_instance_configuration with null).
func (c *Client) RemoveInstanceLimit(ctx context.Context, opts ...CallOption) error {
	return c.replaceConfiguration(ctx, nullable.NewNullNullable[int32](), opts)
}

func (c *Client) replaceConfiguration(ctx context.Context, limit nullable.Nullable[int32], opts []CallOption) error {
	k := c.call(opts)
	if err := k.needCRN(); err != nil {
		return err
	}
	resp, err := c.api.ReplaceInstanceConfiguration(ctx, &gen.ReplaceInstanceConfigurationParams{ServiceCRN: k.crn},
		gen.InstanceConfigurationUpdate{InstanceLimit: limit}, c.editor(k))
	return k.answer(resp, err, http.StatusNoContent, nil)
}

// Usage is an instance's usage in its current period.
type Usage struct {
	gen.InstanceUsage
}

// Remaining is the usage limit (or, without one, the allocation) minus the consumed
// seconds, never below 0, as IBM's Python client reports it; ok is false when neither a
// limit nor an allocation applies.
func (u *Usage) Remaining() (seconds float64, ok bool) {
	limit := u.UsageLimitSeconds
	if limit == nil {
		limit = u.UsageAllocationSeconds
	}
	if limit == nil {
		return 0, false
	}
	return max(*limit-u.UsageConsumedSeconds, 0), true
}

// Usage returns the instance's usage (get_usage).
func (c *Client) Usage(ctx context.Context, opts ...CallOption) (*Usage, error) {
	k := c.call(opts)
	if err := k.needCRN(); err != nil {
		return nil, err
	}
	var out Usage
	resp, err := c.api.GetUsage(ctx, &gen.GetUsageParams{ServiceCRN: k.crn}, c.editor(k))
	if err := k.answer(resp, err, http.StatusOK, &out.InstanceUsage); err != nil {
		return nil, err
	}
	return &out, nil
}

// Account returns an account's configuration (get_account). An empty id means the
// account of the client's CRN.
func (c *Client) Account(ctx context.Context, id string, opts ...CallOption) (*gen.AccountConfiguration, error) {
	k := c.call(opts)
	if id == "" {
		if err := k.needCRN(); err != nil {
			return nil, errors.New("client: no account id and no instance CRN to take it from")
		}
		crn, err := domain.ParseCRN(k.crn)
		if err != nil {
			return nil, fmt.Errorf("client: %s", domain.AsError(err).Message)
		}
		id = crn.AccountID
	}
	id = strings.TrimPrefix(id, "a/")
	params := &gen.GetAccountParams{}
	if k.crn != "" {
		params.ServiceCRN = &k.crn
	}
	var out gen.AccountConfiguration
	resp, err := c.api.GetAccount(ctx, id, params, c.editor(k))
	if err := k.answer(resp, err, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
