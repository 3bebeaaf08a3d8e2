package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qrapi/qrapi/qrtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var traceID = regexp.MustCompile(`\(trace [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\)`)

// qrctl runs the command in-process with an environment, returning exit code and output.
func qrctl(env map[string]string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Golden output of every command against the reference server, and the exit codes.
func TestGoldenOutput(t *testing.T) {
	rs := qrtest.NewServer(t)
	// A fixed period, so that the output does not move with the month (the demo's is the current one).
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rs.SetUsagePeriod(t, qrtest.InstanceA, &qrtest.Period{Start: start, End: start.AddDate(0, 1, 0)}, false)
	env := map[string]string{
		"QISKIT_IBM_URL":   rs.URL + "/api",
		"IBM_IAM_URL":      rs.URL,
		"QISKIT_IBM_TOKEN": qrtest.KeyAdmin,
		"QRCTL_CONFIG":     filepath.Join(t.TempDir(), "config.yaml"),
	}
	other := map[string]string{}
	for k, v := range env {
		other[k] = v
	}
	other["QISKIT_IBM_TOKEN"] = qrtest.KeyOther

	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"instance", env, []string{"instance", "--crn", qrtest.InstanceA}, 0},
		{"instance_json", env, []string{"instance", "--crn", qrtest.InstanceA, "-o", "json"}, 0},
		{"instance_page_example", other, []string{"instance", "--crn", qrtest.InstanceOther}, 0},
		{"instance_page_example_json", other, []string{"instance", "--crn", qrtest.InstanceOther, "--output", "json"}, 0},
		{"instance_deprecated_qctrl", other, []string{"instance", "--crn", qrtest.InstanceOtherEU}, 0},
		{"instance_config", env, []string{"instance", "limit", "--crn", qrtest.InstanceB}, 0},
		{"instance_config_json", env, []string{"instance", "limit", "--crn", qrtest.InstanceB, "-o", "json"}, 0},
		{"usage", env, []string{"usage", "--crn", qrtest.InstanceA}, 0},
		{"usage_json", env, []string{"usage", "--crn", qrtest.InstanceB, "-o", "json"}, 0},
		{"usage_yaml", env, []string{"usage", "--crn", qrtest.InstanceB, "-o", "yaml"}, 0},
		{"account", env, []string{"account", "--crn", qrtest.InstanceA}, 0},
		{"account_json", env, []string{"account", qrtest.AccountDemo, "-o", "json"}, 0},
		{"account_default_configuration", other, []string{"account", qrtest.AccountOther}, 0},
		{"set_limit", env, []string{"instance", "set-limit", "3600", "--crn", qrtest.InstanceA}, 0},
		{"set_limit_conflict", env, []string{"instance", "set-limit", "10", "--crn", qrtest.InstanceA}, 1},
		{"remove_limit", env, []string{"instance", "remove-limit", "--crn", qrtest.InstanceB}, 0},
		{"remove_limit_json", env, []string{"instance", "remove-limit", "--crn", qrtest.InstanceB, "-o", "json"}, 0},
		{"not_found", env, []string{"instance", "--crn", qrtest.InstanceMissing}, 1},
		{"forbidden", other, []string{"usage", "--crn", qrtest.InstanceA}, 1},
		{"account_hidden", other, []string{"account", qrtest.AccountDemo}, 1},
		{"bad_limit", env, []string{"instance", "set-limit", "ten", "--crn", qrtest.InstanceA}, 2},
		{"no_crn", env, []string{"usage"}, 2},
		{"bad_output", env, []string{"usage", "--crn", qrtest.InstanceA, "-o", "xml"}, 2},
		{"unknown_command", env, []string{"instances"}, 2},
		{"unknown_flag", env, []string{"usage", "--nope"}, 2},
		{"no_credentials", map[string]string{"QRCTL_CONFIG": env["QRCTL_CONFIG"]}, []string{"usage", "--crn", qrtest.InstanceA}, 2},
		{"wrong_api_key", map[string]string{"QRCTL_CONFIG": env["QRCTL_CONFIG"], "IBM_IAM_URL": rs.URL, "QISKIT_IBM_URL": rs.URL + "/api"}, []string{"usage", "--crn", qrtest.InstanceA, "--apikey", "nobody-has-this-key-0000"}, 1},
		{"version", env, []string{"version"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := qrctl(c.env, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, stdout, stderr)
			}
			got := "$ qrctl " + strings.Join(c.args, " ") + "\n" + stdout
			if stderr != "" {
				got += "--- stderr\n" + stderr
			}
			got = traceID.ReplaceAllString(strings.ReplaceAll(got, rs.URL, "http://127.0.0.1:PORT"), "(trace <trace>)")
			path := filepath.Join("testdata", "golden", c.name+".txt")
			if *update {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/qrctl -update)", err)
			}
			if got != string(want) {
				t.Fatalf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
			}
		})
	}
}

// --output json prints exactly the API's answer.
func TestJSONIsTheAPIsAnswer(t *testing.T) {
	rs := qrtest.NewServer(t)
	env := map[string]string{"QISKIT_IBM_URL": rs.URL + "/api", "IBM_IAM_URL": rs.URL, "QISKIT_IBM_TOKEN": qrtest.KeyOther, "QRCTL_CONFIG": filepath.Join(t.TempDir(), "c.yaml")}
	_, out, _ := qrctl(env, "instance", "--crn", qrtest.InstanceOther, "-o", "json")
	page, err := os.ReadFile(filepath.Join("..", "..", "spec", "testdata", "examples", "000_get_instance_200.json"))
	if err != nil {
		t.Fatal(err)
	}
	compact := func(s string) string { return strings.Join(strings.Fields(s), "") }
	// The server writes keys in its own order; same keys, same values as the page.
	for _, field := range []string{`"instance_limit":60.7`, `"instance_limit_seconds":"61"`, `"plan_id":"flex-plan-id-1"`, `"usage_allocation_seconds":"200"`, `"backends":["ibm_backend"]`} {
		if !strings.Contains(compact(out), field) || !strings.Contains(compact(string(page)), field) {
			t.Errorf("%s missing: %s", field, out)
		}
	}
}

func TestConfigSetGet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qrctl", "config.yaml")
	env := map[string]string{"QRCTL_CONFIG": path}
	if code, out, _ := qrctl(env, "config", "set", "crn", qrtest.InstanceA); code != 0 || !strings.Contains(out, qrtest.InstanceA) {
		t.Fatalf("set crn: %d %s", code, out)
	}
	if code, out, _ := qrctl(env, "config", "set", "apikey", "secret-api-key-1234"); code != 0 || strings.Contains(out, "secret-api-key") || !strings.Contains(out, "1234") {
		t.Fatalf("set apikey: %d %s", code, out)
	}
	code, out, _ := qrctl(env, "config", "get")
	if code != 0 || !strings.Contains(out, "crn = "+qrtest.InstanceA) || strings.Contains(out, "secret-api-key") {
		t.Fatalf("get: %d %s", code, out)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode: %v %v", fi.Mode(), err)
	}
	if code, _, _ := qrctl(env, "config", "set", "colour", "blue"); code != 2 {
		t.Fatalf("unknown key: exit %d", code)
	}
	// unset removes a key from the file, and says so; an unknown or missing key is a usage error.
	if code, out, _ := qrctl(env, "config", "unset", "crn"); code != 0 || out != "crn unset\n" {
		t.Fatalf("unset crn: %d %q", code, out)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "crn") || !strings.Contains(string(b), "apikey") {
		t.Fatalf("after unset crn, the file holds: %s", b)
	}
	if code, out, _ := qrctl(env, "config", "unset", "crn"); code != 0 || out != "crn was not set\n" {
		t.Fatalf("unset crn again: %d %q", code, out)
	}
	for _, args := range [][]string{{"config", "unset"}, {"config", "unset", "colour"}, {"config", "unset", "crn", "url"}} {
		if code, _, errOut := qrctl(env, args...); code != 2 || !strings.Contains(errOut, "config unset takes one of") {
			t.Fatalf("%v: exit %d %s", args, code, errOut)
		}
	}
	qrctl(env, "config", "set", "crn", qrtest.InstanceA)

	// The kept defaults are used: the CRN and key from the file reach the server.
	rs := qrtest.NewServer(t)
	qrctl(env, "config", "set", "apikey", qrtest.KeyAdmin)
	qrctl(env, "config", "set", "url", rs.URL+"/api")
	qrctl(env, "config", "set", "iam-url", rs.URL)
	if code, out, errOut := qrctl(env, "usage", "-o", "json"); code != 0 || !strings.Contains(out, `"plan_id":"plan-id-2"`) {
		t.Fatalf("usage from config: %d %s %s", code, out, errOut)
	}
	// A flag beats the environment, which beats the file.
	env["QISKIT_IBM_INSTANCE"] = qrtest.InstanceB
	if _, out, _ := qrctl(env, "usage", "-o", "json"); !strings.Contains(out, `"plan_id":"plan-id-3"`) {
		t.Fatalf("env over file: %s", out)
	}
	if _, out, _ := qrctl(env, "usage", "-o", "json", "--crn", qrtest.InstanceA); !strings.Contains(out, `"plan_id":"plan-id-2"`) {
		t.Fatalf("flag over env: %s", out)
	}
}

func TestDebugRedactsCredentials(t *testing.T) {
	rs := qrtest.NewServer(t)
	env := map[string]string{"QISKIT_IBM_URL": rs.URL + "/api", "IBM_IAM_URL": rs.URL, "QISKIT_IBM_TOKEN": qrtest.KeyAdmin, "QRCTL_CONFIG": filepath.Join(t.TempDir(), "c.yaml")}
	code, _, errOut := qrctl(env, "instance", "--crn", qrtest.InstanceA, "--debug")
	if code != 0 || !strings.Contains(errOut, "> GET /api/v1/instance") || !strings.Contains(errOut, "< HTTP/1.1 200 OK") || !strings.Contains(errOut, "Authorization: Bearer [REDACTED]") {
		t.Fatalf("debug output: %s", errOut)
	}
	if strings.Contains(errOut, qrtest.KeyAdmin) || strings.Contains(errOut, "eyJ") {
		t.Fatalf("debug output leaks a credential: %s", errOut)
	}
}

func TestWhoamiAndCompletion(t *testing.T) {
	rs := qrtest.NewServer(t)
	// --url alone: the key goes to the same origin's IAM, never to IBM Cloud's.
	env := map[string]string{"QISKIT_IBM_URL": rs.URL + "/api", "QISKIT_IBM_TOKEN": qrtest.KeyAdmin, "QRCTL_CONFIG": filepath.Join(t.TempDir(), "c.yaml")}
	code, out, errOut := qrctl(env, "whoami")
	if code != 0 || !strings.Contains(out, "IAM      "+rs.URL) || !strings.Contains(out, "(in 1h0m0s)") || !strings.Contains(out, qrtest.AccountDemo) || strings.Contains(out, "eyJ") {
		t.Fatalf("whoami: %d %s %s", code, out, errOut)
	}
	if code, out, _ := qrctl(env, "whoami", "-o", "json"); code != 0 || !strings.Contains(out, `"expires_in":3600`) || !strings.Contains(out, `"iam":"`+rs.URL+`"`) {
		t.Fatalf("whoami json: %d %s", code, out)
	}
	// whoami says nothing is saved, and nothing is.
	if b, err := os.ReadFile(env["QRCTL_CONFIG"]); err == nil && strings.TrimSpace(string(b)) != "{}" {
		t.Fatalf("whoami saved something: %s", b)
	}
	if code, _, _ := qrctl(map[string]string{"QRCTL_CONFIG": env["QRCTL_CONFIG"]}, "whoami"); code != 2 {
		t.Fatalf("whoami without a key: exit %d", code)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if code, out, _ := qrctl(env, "completion", sh); code != 0 || !strings.Contains(out, "qrctl") {
			t.Errorf("completion %s: %d", sh, code)
		}
	}
	if code, _, _ := qrctl(env, "completion", "tcsh"); code != 2 {
		t.Errorf("completion tcsh: exit %d", code)
	}
}

// --debug shows each retry of a faulted call: the attempt, what it got, the wait and why;
// the call then succeeds. Without --debug the retries are silent.
func TestDebugShowsRetries(t *testing.T) {
	rs := qrtest.NewServer(t)
	env := map[string]string{"QISKIT_IBM_URL": rs.URL + "/api", "IBM_IAM_URL": rs.URL, "QISKIT_IBM_TOKEN": qrtest.KeyAdmin, "QRCTL_CONFIG": filepath.Join(t.TempDir(), "c.yaml")}
	rs.AddFault(t, qrtest.Fault{Operation: "get_instance", Status: 503, RetryAfter: time.Second, Count: 2})
	code, out, errOut := qrctl(env, "instance", "--crn", qrtest.InstanceA, "--debug")
	if code != 0 || !strings.Contains(out, "plan-id-2") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	for _, want := range []string{
		"~ attempt 1 of 4: 503 Service Unavailable; retrying in 1s (Retry-After)\n",
		"~ attempt 2 of 4: 503 Service Unavailable; retrying in 1s (Retry-After)\n",
		"< HTTP/1.1 503 Service Unavailable", "< HTTP/1.1 200 OK",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("debug output lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Count(errOut, "~ attempt") != 2 {
		t.Errorf("want two retry lines:\n%s", errOut)
	}
	rs.AddFault(t, qrtest.Fault{Operation: "get_instance", Status: 503, RetryAfter: time.Second, Count: 1})
	if code, _, errOut := qrctl(env, "instance", "--crn", qrtest.InstanceA); code != 0 || errOut != "" {
		t.Fatalf("without --debug: exit %d, stderr %q", code, errOut)
	}
}

// qrctl fixture create, list and delete against the reference server: the keys are shown
// only by create, and a fixture's key works with the other commands until the delete.
func TestFixtureCommands(t *testing.T) {
	rs := qrtest.NewServer(t)
	doc := filepath.Join(t.TempDir(), "fixture.yaml")
	if err := os.WriteFile(doc, []byte("accounts: [{}]\ninstances:\n  - plan_id: my-plan\n    usage_consumed_seconds: 9\nprincipals: [{}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"QRCTL_CONFIG": filepath.Join(t.TempDir(), "c.yaml"), "QISKIT_IBM_URL": rs.URL + "/api", "IBM_IAM_URL": rs.URL, "QRCTL_ADMIN_TOKEN": qrtest.AdminToken}
	code, out, errOut := qrctl(env, "fixture", "create", "-f", doc)
	fields := func(label string) []string {
		var vals []string
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, label); ok {
				vals = append(vals, strings.TrimSpace(v))
			}
		}
		return vals
	}
	ids, crns, keys := fields("Fixture"), fields("Instance"), fields("  API key")
	if code != 0 || len(ids) != 1 || len(crns) != 1 || len(keys) != 1 || len(keys[0]) != 44 {
		t.Fatalf("create: exit %d\n%s%s", code, out, errOut)
	}
	use := map[string]string{"QRCTL_CONFIG": env["QRCTL_CONFIG"], "QISKIT_IBM_URL": env["QISKIT_IBM_URL"], "IBM_IAM_URL": env["IBM_IAM_URL"], "QISKIT_IBM_TOKEN": keys[0], "QISKIT_IBM_INSTANCE": crns[0]}
	if code, out, errOut := qrctl(use, "usage", "-o", "json"); code != 0 || !strings.Contains(out, `"usage_consumed_seconds":9`) {
		t.Fatalf("usage with the fixture's key: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := qrctl(env, "fixture", "list"); code != 0 || !strings.Contains(out, ids[0]) || strings.Contains(out, keys[0]) {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	if code, out, errOut := qrctl(env, "fixture", "delete", ids[0]); code != 0 || !strings.Contains(out, "Deleted fixture "+ids[0]) {
		t.Fatalf("delete: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := qrctl(use, "usage"); code != 1 || !strings.Contains(errOut, "401") && !strings.Contains(errOut, "API key") {
		t.Fatalf("usage with the deleted fixture's key: exit %d %s", code, errOut)
	}
	if code, _, errOut := qrctl(env, "fixture", "delete", ids[0]); code != 1 || !strings.Contains(errOut, "404") {
		t.Fatalf("delete again: exit %d %s", code, errOut)
	}
	noToken := map[string]string{"QRCTL_CONFIG": env["QRCTL_CONFIG"], "QISKIT_IBM_URL": env["QISKIT_IBM_URL"]}
	if code, _, errOut := qrctl(noToken, "fixture", "list"); code != 2 || !strings.Contains(errOut, "admin token") {
		t.Fatalf("list without the admin token: exit %d %s", code, errOut)
	}
}

// A URL without /api reaches the server but no operation: the error says what to fix.
func TestURLWithoutAPIHint(t *testing.T) {
	rs := qrtest.NewServer(t)
	env := map[string]string{"QISKIT_IBM_URL": rs.URL, "QISKIT_IBM_TOKEN": qrtest.KeyAdmin, "QRCTL_CONFIG": filepath.Join(t.TempDir(), "c.yaml")}
	code, _, errOut := qrctl(env, "instance", "--crn", qrtest.InstanceA)
	if code != 1 || !strings.Contains(errOut, "404 Not Found") || !strings.Contains(errOut, "--url "+rs.URL+" does not end in /api; the API's URL does, as in --url "+rs.URL+"/api") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	env["QISKIT_IBM_URL"] = rs.URL + "/api"
	if code, _, errOut := qrctl(env, "account", "00000000000000000000000000000000"); code != 1 || strings.Contains(errOut, "does not end in /api") {
		t.Fatalf("a 404 of the API itself gets no hint: exit %d: %s", code, errOut)
	}
}
