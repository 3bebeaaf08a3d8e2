package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"
	"github.com/spf13/cobra"

	"github.com/qrapi/qrapi/client"
)

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ error }

// settings are the global flags, each falling back to the environment, then to the
// config file, then to a default.
type settings struct {
	url, iamURL, apiKey, token, crn, apiVersion, output, configPath string
	debug                                                           bool
}

// envOf names each setting's environment variable.
var envOf = map[string]string{
	"url":         client.EnvURL,
	"iam-url":     client.EnvIAMURL,
	"apikey":      client.EnvAPIKey,
	"token":       "QRCTL_TOKEN",
	"crn":         client.EnvInstance,
	"api-version": "QRCTL_API_VERSION",
	"output":      "QRCTL_OUTPUT",
}

type app struct {
	ctx    context.Context
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	s      settings
	cf     configFile
	// adminToken is the reference server's control API token (qrctl fixture).
	adminToken string
}

// run is the whole program; it returns the exit code: 0, 1 for a failed call, 2 for a
// usage error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	a := &app{ctx: ctx, getenv: getenv, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") || strings.HasPrefix(err.Error(), "unknown shorthand flag") {
		fmt.Fprintf(stderr, "qrctl: %v\nRun 'qrctl --help' for usage.\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "qrctl: %v\n", err)
	if hint := a.hint(err); hint != "" {
		fmt.Fprintf(stderr, "qrctl: %s\n", hint)
	}
	return 1
}

// hint says what an error most likely means when the likely cause is qrctl's settings.
func (a *app) hint(err error) string {
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != http.StatusNotFound || a.s.url == "" {
		return ""
	}
	u := strings.TrimSuffix(a.s.url, "/")
	if strings.HasSuffix(u, "/api") {
		return ""
	}
	return fmt.Sprintf("--url %s does not end in /api; the API's URL does, as in --url %s/api", a.s.url, u)
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "qrctl",
		Short:         "The Qiskit Runtime Instances and Accounts API from a terminal",
		Long:          "qrctl calls the Qiskit Runtime Instances and Accounts API, on IBM Cloud or on the reference server (qrserver).\nSettings come from flags, then the environment, then `qrctl config set`.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.resolve(cmd)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := root.PersistentFlags()
	f.StringVar(&a.s.url, "url", "", "service URL (env "+client.EnvURL+"; default from the CRN's region, "+client.DefaultURL+")")
	f.StringVar(&a.s.iamURL, "iam-url", "", "IAM URL where the API key is exchanged (env "+client.EnvIAMURL+"; default: "+client.DefaultIAMURL+" for IBM Cloud's URLs, else --url's own origin)")
	f.StringVar(&a.s.apiKey, "apikey", "", "IBM Cloud API key (env "+client.EnvAPIKey+")")
	f.StringVar(&a.s.token, "token", "", "a bearer access token, instead of an API key (env QRCTL_TOKEN)")
	f.StringVar(&a.s.crn, "crn", "", "instance CRN, sent as Service-CRN (env "+client.EnvInstance+")")
	f.StringVar(&a.s.apiVersion, "api-version", "", "IBM-API-Version (env QRCTL_API_VERSION; default "+client.DefaultAPIVersion+")")
	f.StringVarP(&a.s.output, "output", "o", "", "output: table, json (the API's answer exactly) or yaml (env QRCTL_OUTPUT)")
	f.StringVar(&a.s.configPath, "config", "", "config file (env QRCTL_CONFIG; default in the user's config directory)")
	f.BoolVar(&a.s.debug, "debug", false, "print each request and answer, credentials redacted")

	instance := &cobra.Command{Use: "instance", Short: "Show the instance (get_instance)", Args: noArgs, RunE: a.instance}
	instance.AddCommand(
		&cobra.Command{Use: "limit", Short: "Show the instance's usage limit, its configuration (get_instance_configuration)", Args: noArgs, RunE: a.instanceConfig},
		&cobra.Command{Use: "set-limit SECONDS", Short: "Set the instance's usage limit in seconds (replace_instance_configuration)", Args: oneArg, RunE: a.setLimit},
		&cobra.Command{Use: "remove-limit", Short: "Remove the instance's usage limit (replace_instance_configuration with null)", Args: noArgs, RunE: a.removeLimit},
	)
	root.AddCommand(
		instance,
		&cobra.Command{Use: "usage", Short: "Show the instance's usage (get_usage)", Args: noArgs, RunE: a.usage},
		&cobra.Command{Use: "account [ID]", Short: "Show an account's configuration (get_account); default: the CRN's account", Args: upToOneArg, RunE: a.account},
		&cobra.Command{Use: "whoami", Short: "Exchange the API key at IAM and show whose it is and when the token expires (nothing is saved)", Args: noArgs, RunE: a.whoami},
		&cobra.Command{Use: "version", Short: "Show qrctl's version", Args: noArgs, RunE: a.version},
		a.configCommand(),
		a.fixtureCommand(),
	)
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(&cobra.Command{
		Use:       "completion bash|zsh|fish",
		Short:     "Print a shell completion script",
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh" && args[0] != "fish") {
				return usageError{errors.New("completion takes one of bash, zsh, fish")}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(a.stdout, true)
			case "zsh":
				return root.GenZshCompletion(a.stdout)
			default:
				return root.GenFishCompletion(a.stdout, true)
			}
		},
	})
	return root
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args[0])}
	}
	return nil
}

func oneArg(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError{fmt.Errorf("%s takes one argument: %s", cmd.CommandPath(), cmd.Use)}
	}
	return nil
}

func upToOneArg(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usageError{fmt.Errorf("%s takes at most one argument", cmd.CommandPath())}
	}
	return nil
}

// resolve fills unset flags from the environment, then from the config file.
func (a *app) resolve(cmd *cobra.Command) error {
	if a.s.configPath == "" {
		a.s.configPath = defaultConfigPath(a.getenv)
	}
	cf, err := loadConfig(a.s.configPath)
	if err != nil {
		return err
	}
	a.cf = cf
	targets := map[string]*string{"url": &a.s.url, "iam-url": &a.s.iamURL, "apikey": &a.s.apiKey, "token": &a.s.token, "crn": &a.s.crn, "api-version": &a.s.apiVersion, "output": &a.s.output}
	for name, p := range targets {
		if cmd.Flags().Changed(name) {
			continue
		}
		if v := a.getenv(envOf[name]); v != "" {
			*p = v
		} else if v := cf[name]; v != "" {
			*p = v
		}
	}
	if a.s.output == "" {
		a.s.output = "table"
	}
	switch a.s.output {
	case "table", "json", "yaml":
	default:
		return usageError{fmt.Errorf("--output must be table, json or yaml, not %q", a.s.output)}
	}
	return nil
}

func (a *app) httpClient() *http.Client {
	hc := &http.Client{Timeout: 60 * time.Second}
	if a.s.debug {
		hc.Transport = &debugTransport{next: http.DefaultTransport, w: a.stderr}
	}
	return hc
}

func (a *app) client() (*client.Client, error) {
	opts := []client.Option{client.WithHTTPClient(a.httpClient()), client.WithUserAgent("qrctl/" + qrctlVersion())}
	if a.s.debug {
		opts = append(opts, client.WithRetryObserver(a.debugRetry))
	}
	if a.s.url != "" {
		opts = append(opts, client.WithURL(a.s.url))
	}
	opts = append(opts, client.WithIAMURL(a.iamURL()))
	switch {
	case a.s.token != "":
		opts = append(opts, client.WithBearerToken(a.s.token))
	case a.s.apiKey != "":
		opts = append(opts, client.WithAPIKey(a.s.apiKey))
	default:
		return nil, usageError{errors.New("no credentials: give --apikey (or " + client.EnvAPIKey + ") or --token")}
	}
	if a.s.crn != "" {
		opts = append(opts, client.WithCRN(a.s.crn))
	}
	if a.s.apiVersion != "" {
		opts = append(opts, client.WithAPIVersion(a.s.apiVersion))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// instanceClient is the client for a command on the instance, which needs its CRN.
func (a *app) instanceClient() (*client.Client, error) {
	if a.s.crn == "" {
		return nil, usageError{errors.New("no instance: give --crn (or " + client.EnvInstance + ")")}
	}
	return a.client()
}

// shown prints the API's answer as is, unless the output is a table; it reports whether
// it printed.
func (a *app) shown(raw []byte) (bool, error) {
	if a.s.output == "table" {
		return false, nil
	}
	return true, printRaw(a.stdout, a.s.output, raw)
}

func (a *app) instance(cmd *cobra.Command, _ []string) error {
	c, err := a.instanceClient()
	if err != nil {
		return err
	}
	var raw []byte
	in, err := c.Instance(cmd.Context(), client.CaptureBody(&raw))
	if err != nil {
		return err
	}
	if done, err := a.shown(raw); done {
		return err
	}
	rows := [][2]string{{"CRN", c.CRN()}}
	if in.PlanId != nil {
		rows = append(rows, [2]string{"Plan", *in.PlanId})
	}
	if in.Backends != nil {
		rows = append(rows, [2]string{"Backends", strings.Join(*in.Backends, ", ")})
	}
	if in.UsageAllocationSeconds != nil {
		rows = append(rows, [2]string{"Usage allocation", secondsString(*in.UsageAllocationSeconds)})
	}
	if in.InstanceLimitSeconds != nil {
		rows = append(rows, [2]string{"Instance limit", secondsString(*in.InstanceLimitSeconds)})
	} else {
		rows = append(rows, [2]string{"Instance limit", "none"})
	}
	if in.InstanceLimit != nil { //nolint:staticcheck // shown, and marked deprecated
		rows = append(rows, [2]string{"instance_limit (deprecated)", strconv.FormatFloat(*in.InstanceLimit, 'f', -1, 64)}) //nolint:staticcheck
	}
	if in.QctrlEnabled != nil { //nolint:staticcheck
		rows = append(rows, [2]string{"qctrl_enabled (deprecated)", strconv.FormatBool(*in.QctrlEnabled)}) //nolint:staticcheck
	}
	return table(a.stdout, rows)
}

// secondsString shows a seconds string from the API also as h:mm:ss.
func secondsString(s string) string {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	return seconds(f)
}

func (a *app) instanceConfig(cmd *cobra.Command, _ []string) error {
	c, err := a.instanceClient()
	if err != nil {
		return err
	}
	var raw []byte
	cfg, err := c.InstanceConfiguration(cmd.Context(), client.CaptureBody(&raw))
	if err != nil {
		return err
	}
	if done, err := a.shown(raw); done {
		return err
	}
	limit := "none"
	if cfg.InstanceLimit != nil {
		limit = seconds(*cfg.InstanceLimit)
	}
	return table(a.stdout, [][2]string{{"CRN", c.CRN()}, {"Instance limit", limit}})
}

func (a *app) setLimit(cmd *cobra.Command, args []string) error {
	n, err := strconv.ParseInt(args[0], 10, 32)
	if err != nil || n < 1 {
		return usageError{fmt.Errorf("SECONDS must be a whole number from 1 to 2147483647, not %q", args[0])}
	}
	c, err := a.instanceClient()
	if err != nil {
		return err
	}
	if err := c.SetInstanceLimit(cmd.Context(), int32(n)); err != nil {
		return err
	}
	return a.done(fmt.Sprintf("Instance limit set to %s.", seconds(float64(n))), map[string]any{"instance_limit": n})
}

func (a *app) removeLimit(cmd *cobra.Command, _ []string) error {
	c, err := a.instanceClient()
	if err != nil {
		return err
	}
	if err := c.RemoveInstanceLimit(cmd.Context()); err != nil {
		return err
	}
	return a.done("Instance limit removed.", map[string]any{"instance_limit": nil})
}

// done reports a change: a sentence in a table, the body that was sent otherwise (the
// API answers 204 with no body).
func (a *app) done(msg string, sent any) error {
	if a.s.output != "table" {
		return printValue(a.stdout, a.s.output, sent)
	}
	_, err := fmt.Fprintln(a.stdout, msg)
	return err
}

func (a *app) usage(cmd *cobra.Command, _ []string) error {
	c, err := a.instanceClient()
	if err != nil {
		return err
	}
	var raw []byte
	u, err := c.Usage(cmd.Context(), client.CaptureBody(&raw))
	if err != nil {
		return err
	}
	if done, err := a.shown(raw); done {
		return err
	}
	rows := [][2]string{{"Instance", u.InstanceId}, {"Plan", u.PlanId}}
	period := "none (no usage period)"
	if !u.UsagePeriod.IsNull() && u.UsagePeriod.IsSpecified() {
		p := u.UsagePeriod.MustGet()
		if p.StartTime != nil && p.EndTime != nil {
			period = p.StartTime.UTC().Format(time.RFC3339) + " to " + p.EndTime.UTC().Format(time.RFC3339)
		}
	}
	rows = append(rows, [2]string{"Period", period}, [2]string{"Consumed", seconds(u.UsageConsumedSeconds)})
	if u.UsageLimitSeconds != nil {
		rows = append(rows, [2]string{"Limit", seconds(*u.UsageLimitSeconds)})
	}
	if u.UsageAllocationSeconds != nil {
		rows = append(rows, [2]string{"Allocation", seconds(*u.UsageAllocationSeconds)})
	}
	if rem, ok := u.Remaining(); ok {
		rows = append(rows, [2]string{"Remaining", seconds(rem)})
		limit := rem + u.UsageConsumedSeconds
		if u.UsageLimitSeconds != nil {
			limit = *u.UsageLimitSeconds
		} else if u.UsageAllocationSeconds != nil {
			limit = *u.UsageAllocationSeconds
		}
		if limit > 0 {
			frac := u.UsageConsumedSeconds / limit
			rows = append(rows, [2]string{"Used", fmt.Sprintf("%s %.1f%%", bar(frac, 20), 100*frac)})
		}
	}
	if u.UsageLimitReached != nil {
		rows = append(rows, [2]string{"Limit reached", strconv.FormatBool(*u.UsageLimitReached)})
	}
	return table(a.stdout, rows)
}

func (a *app) account(cmd *cobra.Command, args []string) error {
	id := ""
	if len(args) == 1 {
		id = args[0]
	} else if a.s.crn == "" {
		return usageError{errors.New("give an account ID, or --crn to use its account")}
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var raw []byte
	acct, err := c.Account(cmd.Context(), id, client.CaptureBody(&raw))
	if err != nil {
		return err
	}
	if done, err := a.shown(raw); done {
		return err
	}
	if len(acct.Plans) == 0 {
		_, err := fmt.Fprintln(a.stdout, "No plans.")
		return err
	}
	tw := [][2]string{}
	for i, p := range acct.Plans {
		if i > 0 {
			tw = append(tw, [2]string{"", ""})
		}
		tw = append(tw, [2]string{"Plan", p.PlanId}, [2]string{"Backends", strings.Join(p.Backends, ", ")})
		opt := func(label string, v *int32) {
			if v != nil {
				tw = append(tw, [2]string{label, seconds(float64(*v))})
			}
		}
		opt("Usage allocation", p.UsageAllocationSeconds)
		opt("Usage limit", p.UsageLimitSeconds)
		opt("Unallocated", p.UnallocatedUsageSeconds)
		opt("Max TTL", p.MaxTtl)
		opt("Active TTL", p.ActiveTtl)
		opt("Interactive TTL", p.InteractiveTtl)
		if p.StartTime != nil {
			tw = append(tw, [2]string{"Start", p.StartTime.UTC().Format(time.RFC3339)})
		}
		if p.EndTime != nil {
			tw = append(tw, [2]string{"End", p.EndTime.UTC().Format(time.RFC3339)})
		}
	}
	return table(a.stdout, tw)
}

// iamURL is where the API key goes: --iam-url, else what package client picks for the
// service URL (IBM Cloud's IAM only for IBM Cloud's URLs).
func (a *app) iamURL() string {
	if a.s.iamURL != "" {
		return a.s.iamURL
	}
	u := a.s.url
	if u == "" {
		u = client.DefaultURL
	}
	return client.IAMURLFor(u)
}

func (a *app) whoami(cmd *cobra.Command, _ []string) error {
	if a.s.apiKey == "" {
		return usageError{errors.New("whoami needs an API key: --apikey or " + client.EnvAPIKey)}
	}
	iam := a.iamURL()
	auth, err := core.NewIamAuthenticatorBuilder().SetApiKey(a.s.apiKey).SetClient(a.httpClient()).SetURL(iam).Build()
	if err != nil {
		return usageError{err}
	}
	tr, err := auth.RequestToken()
	if err != nil {
		return fmt.Errorf("whoami: %w", err)
	}
	// The token's claims, read, not verified: qrctl shows them, the service verifies them.
	var claims struct {
		IAMID   string `json:"iam_id"`
		Account struct {
			BSS string `json:"bss"`
		} `json:"account"`
	}
	if parts := strings.Split(tr.AccessToken, "."); len(parts) == 3 {
		if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			_ = json.Unmarshal(raw, &claims)
		}
	}
	exp := time.Unix(tr.Expiration, 0).UTC()
	if a.s.output != "table" {
		return printValue(a.stdout, a.s.output, map[string]any{"iam": iam, "iam_id": claims.IAMID, "account": claims.Account.BSS,
			"token_type": tr.TokenType, "expires_in": tr.ExpiresIn, "expiration": exp.Format(time.RFC3339)})
	}
	return table(a.stdout, [][2]string{
		{"IAM", iam},
		{"IAM id", claims.IAMID},
		{"Account", claims.Account.BSS},
		{"Token", tr.TokenType + " token issued (not shown, not saved)"},
		{"Expires", fmt.Sprintf("%s (in %s)", exp.Format(time.RFC3339), time.Duration(tr.ExpiresIn)*time.Second)},
	})
}

func qrctlVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func (a *app) version(*cobra.Command, []string) error {
	_, err := fmt.Fprintf(a.stdout, "qrctl %s (API version %s)\n", qrctlVersion(), client.DefaultAPIVersion)
	return err
}

func (a *app) configCommand() *cobra.Command {
	cfg := &cobra.Command{Use: "config", Short: "Keep default settings in the config file (" + strings.Join(configKeys, ", ") + ")"}
	cfg.AddCommand(
		&cobra.Command{Use: "set KEY VALUE", Short: "Set a default", Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError{errors.New("config set takes KEY VALUE")}
			}
			if !validConfigKey(args[0]) {
				return usageError{fmt.Errorf("unknown key %q: keys are %s", args[0], strings.Join(configKeys, ", "))}
			}
			return nil
		}, RunE: func(_ *cobra.Command, args []string) error {
			a.cf[args[0]] = args[1]
			if err := a.cf.save(a.s.configPath); err != nil {
				return err
			}
			_, err := fmt.Fprintf(a.stdout, "%s = %s\n", args[0], shown(args[0], args[1]))
			return err
		}},
		&cobra.Command{Use: "unset KEY", Short: "Remove a default", Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || !validConfigKey(args[0]) {
				return usageError{fmt.Errorf("config unset takes one of %s", strings.Join(configKeys, ", "))}
			}
			return nil
		}, RunE: func(_ *cobra.Command, args []string) error {
			if _, ok := a.cf[args[0]]; !ok {
				_, err := fmt.Fprintf(a.stdout, "%s was not set\n", args[0])
				return err
			}
			delete(a.cf, args[0])
			if err := a.cf.save(a.s.configPath); err != nil {
				return err
			}
			_, err := fmt.Fprintf(a.stdout, "%s unset\n", args[0])
			return err
		}},
		&cobra.Command{Use: "get [KEY]", Short: "Show the defaults, or one", Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || (len(args) == 1 && !validConfigKey(args[0])) {
				return usageError{fmt.Errorf("config get takes at most one of %s", strings.Join(configKeys, ", "))}
			}
			return nil
		}, RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 1 {
				_, err := fmt.Fprintln(a.stdout, shown(args[0], a.cf[args[0]]))
				return err
			}
			for _, k := range a.cf.keys() {
				fmt.Fprintf(a.stdout, "%s = %s\n", k, shown(k, a.cf[k]))
			}
			return nil
		}},
	)
	return cfg
}
