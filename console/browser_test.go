package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/qrapi/qrapi/qrtest"
)

// browser is a headless Chromium tab (Debian's chromium) for the test, closed when it
// ends. Without Chromium the test skips and says how to install it, except under CI,
// where it fails: .ci/run installs it.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("Chromium is not installed under CI: .ci/run installs it (apt-get install -y chromium)")
		}
		t.Skip("the console's browser test needs Chromium: apt-get install -y chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no timeout of its own
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// within runs steps with a deadline, so a page that never shows what is waited for fails
// the test instead of hanging it.
func within(t *testing.T, ctx context.Context, d time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return s
}

// call is a client's own call of the API, by API key: the answer the page must agree with.
func call(t *testing.T, srv *qrtest.Server, method, path, key, crn, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "apikey "+key)
	if crn != "" {
		req.Header.Set("Service-CRN", crn)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m, resp.Header
}

// control is a call of the control API with the admin token.
func control(t *testing.T, srv *qrtest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+"/control/v1"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+qrtest.AdminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// message is the first message of an error container.
func message(m map[string]any) string {
	errs, _ := m["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	first, _ := errs[0].(map[string]any)
	s, _ := first["message"].(string)
	return s
}

const guidA = "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" // qrtest.InstanceA's

func signIn(t *testing.T, ctx context.Context, srv *qrtest.Server, key string) {
	t.Helper()
	within(t, ctx, 20*time.Second, "sign in",
		chromedp.Navigate(srv.URL+"/console/"),
		chromedp.WaitVisible(chromedp.ID("apikey")),
		chromedp.SendKeys(chromedp.ID("apikey"), key),
		chromedp.Click(chromedp.CSS("#key-form button")),
		chromedp.WaitVisible(chromedp.CSS("#instances article")),
		chromedp.WaitVisible(chromedp.CSS("#plans p, #plans table")))
}

// noSecrets: nothing of a key or token is in the page's HTML, its URL, its storage or
// its cookies.
func noSecrets(t *testing.T, ctx context.Context, secrets ...string) {
	t.Helper()
	page := eval[string](t, ctx, `document.documentElement.outerHTML + "\n" + location.href + "\n" + JSON.stringify(localStorage) + "\n" + JSON.stringify(sessionStorage) + "\n" + document.cookie`)
	for _, s := range append(secrets, "eyJ") { // "eyJ": how every JWT starts
		if strings.Contains(page, s) {
			t.Errorf("the page holds %q", s)
		}
	}
}

// The console in a real browser, against a qrtest server: the reader's view and its
// refused edit, the manager's edits, the admin's journal and fault rules; no credential
// left in the page; readable at 1280 and 400 pixels; the README's screenshots.
func TestConsoleInABrowser(t *testing.T) {
	srv := qrtest.NewServer(t)
	ctx := browser(t)

	// The reader: its one instance, with the usage the API answers, and no limit control.
	signIn(t, ctx, srv, qrtest.KeyReader)
	if n := eval[int](t, ctx, `document.querySelectorAll('#instances article').length`); n != 1 {
		t.Fatalf("the reader sees %d instances, want its one", n)
	}
	_, usage, _ := call(t, srv, "GET", "/api/v1/instances/usage", qrtest.KeyReader, qrtest.InstanceA, "")
	card := text(t, ctx, `#instances article[data-crn="`+qrtest.InstanceA+`"] dl`)
	for _, want := range []string{fmt.Sprintf("Consumed\n%v s", usage["usage_consumed_seconds"]), fmt.Sprintf("Allocation\n%v s", usage["usage_allocation_seconds"]), "Plan\n" + usage["plan_id"].(string)} {
		if !strings.Contains(card, want) {
			t.Errorf("the reader's card lacks %q: %s", want, card)
		}
	}
	if !eval[bool](t, ctx, `document.getElementById('limit-`+guidA+`').disabled && document.querySelector('#instances form.limit button[type=submit]').disabled`) {
		t.Error("the reader's limit control is enabled")
	}
	// Forced: enabled by hand, the call is the API's 403, and the page shows its message.
	_, refused, _ := call(t, srv, "PUT", "/api/v1/instances/configuration", qrtest.KeyReader, qrtest.InstanceA, `{"instance_limit": 100}`)
	within(t, ctx, 10*time.Second, "the reader's forced edit",
		chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('#instances form.limit input, #instances form.limit button').forEach(e => e.disabled = false)`),
		chromedp.SetValue(chromedp.ID("limit-"+guidA), "100"),
		chromedp.Click(chromedp.CSS("#instances form.limit button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#message-"+guidA+".error")))
	if got := text(t, ctx, "#message-"+guidA); got != "403: "+message(refused) || message(refused) == "" {
		t.Errorf("the forced edit shows %q, want the 403's message %q", got, message(refused))
	}
	noSecrets(t, ctx, qrtest.KeyReader)

	// The manager: sets a limit that the API then answers; one below the consumed seconds
	// shows the 409's message.
	within(t, ctx, 10*time.Second, "sign out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitNotVisible(chromedp.ID("user-view")))
	signIn(t, ctx, srv, qrtest.KeyManager)
	within(t, ctx, 10*time.Second, "the manager sets a limit",
		chromedp.SetValue(chromedp.ID("limit-"+guidA), "100"),
		chromedp.Click(chromedp.CSS(`#instances article[data-crn="`+qrtest.InstanceA+`"] form.limit button[type=submit]`)),
		chromedp.Poll[chromedp.Void](`document.getElementById('message-`+guidA+`').textContent === 'The limit is now 100 s.'`))
	if _, cfg, _ := call(t, srv, "GET", "/api/v1/instances/configuration", qrtest.KeyManager, qrtest.InstanceA, ""); cfg["instance_limit"] != float64(100) {
		t.Fatalf("after the page set 100, the API answers %v", cfg)
	}
	if card := text(t, ctx, `#instances article[data-crn="`+qrtest.InstanceA+`"] dl`); !strings.Contains(card, "Limit\n100 s") {
		t.Errorf("the card does not show the new limit: %s", card)
	}
	_, conflict, _ := call(t, srv, "PUT", "/api/v1/instances/configuration", qrtest.KeyManager, qrtest.InstanceA, `{"instance_limit": 10}`)
	within(t, ctx, 10*time.Second, "the manager sets a limit below the usage",
		chromedp.SetValue(chromedp.ID("limit-"+guidA), "10"),
		chromedp.Click(chromedp.CSS(`#instances article[data-crn="`+qrtest.InstanceA+`"] form.limit button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#message-"+guidA+".error")))
	if got := text(t, ctx, "#message-"+guidA); got != "409: "+message(conflict) || message(conflict) == "" {
		t.Errorf("the limit below the usage shows %q, want the 409's message %q", got, message(conflict))
	}
	if _, cfg, _ := call(t, srv, "GET", "/api/v1/instances/configuration", qrtest.KeyManager, qrtest.InstanceA, ""); cfg["instance_limit"] != float64(100) {
		t.Fatalf("a refused limit changed it: %v", cfg)
	}
	noSecrets(t, ctx, qrtest.KeyManager, qrtest.KeyReader)

	// The demo's admin key: the account's two instances, editable, and its three plans as
	// the Accounts page's example has them.
	within(t, ctx, 10*time.Second, "sign out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitNotVisible(chromedp.ID("user-view")))
	signIn(t, ctx, srv, qrtest.KeyAdmin)
	if n := eval[int](t, ctx, `document.querySelectorAll('#instances article').length`); n != 2 {
		t.Errorf("the demo admin sees %d instances, want the account's 2", n)
	}
	if eval[bool](t, ctx, `[...document.querySelectorAll('#instances form.limit input')].some(e => e.disabled)`) {
		t.Error("an Administrator's limit control is disabled")
	}
	_, account, _ := call(t, srv, "GET", "/api/v1/accounts/"+qrtest.AccountDemo, qrtest.KeyAdmin, "", "")
	plans, _ := account["plans"].([]any)
	if n := eval[int](t, ctx, `document.querySelectorAll('#plans-table tbody tr').length`); n != len(plans) || n == 0 {
		t.Errorf("the page shows %d plans, the API answers %d", n, len(plans))
	}
	screenshot(t, ctx, filepath.Join("..", "docs", "console-user.png"), chromedp.FullScreenshot(100))

	// Readable at 400 pixels: nothing wider than the window; every control labelled.
	within(t, ctx, 10*time.Second, "400 pixels", chromedp.EmulateViewport(400, 900))
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 400 {
		t.Errorf("at 400 pixels the page is %d wide", w)
	}
	within(t, ctx, 10*time.Second, "1280 pixels", chromedp.EmulateViewport(1280, 900))

	// The admin: a request by another client shows in the journal within 2 s.
	within(t, ctx, 20*time.Second, "the admin view",
		chromedp.SendKeys(chromedp.ID("admin-token"), qrtest.AdminToken),
		chromedp.Click(chromedp.CSS("#admin-form button")),
		chromedp.WaitVisible(chromedp.ID("journal")))
	_, _, hdr := call(t, srv, "GET", "/api/v1/instance", qrtest.KeyAdmin, qrtest.InstanceB, "")
	trace := hdr.Get("X-Correlation-ID")
	if trace == "" {
		t.Fatal("no X-Correlation-ID")
	}
	within(t, ctx, 2*time.Second, "the other client's request in the journal within 2 s",
		chromedp.WaitVisible(chromedp.CSS(`#journal tr[data-trace="`+trace+`"]`)))
	if row := text(t, ctx, `#journal tr[data-trace="`+trace+`"]`); !strings.Contains(row, "quantum-computing.instance.read") || !strings.Contains(row, qrtest.InstanceB) || !strings.Contains(row, "success") {
		t.Errorf("the journal's row: %s", row)
	}

	// A fault rule added in the page hits the next matching call; its hit shows.
	within(t, ctx, 10*time.Second, "add a fault rule",
		chromedp.SetValue(chromedp.ID("fault-operation"), "get_usage"),
		chromedp.SetValue(chromedp.ID("fault-status"), "503"),
		chromedp.SetValue(chromedp.ID("fault-count"), "1"),
		chromedp.Click(chromedp.CSS("#fault-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#faults tbody tr")))
	if code, body, _ := call(t, srv, "GET", "/api/v1/instances/usage", qrtest.KeyAdmin, qrtest.InstanceB, ""); code != 503 || !strings.Contains(fmt.Sprint(body), "injected_fault") {
		t.Fatalf("the rule added in the page did not hit: %d %v", code, body)
	}
	within(t, ctx, 3*time.Second, "the rule's hit in the page",
		chromedp.Poll[chromedp.Void](`document.querySelector('#faults tbody tr td.hits')?.textContent === '1'`))
	within(t, ctx, 3*time.Second, "the faulted call in the journal",
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('#journal tbody tr')].some(r => r.textContent.includes('injected'))`))
	noSecrets(t, ctx, qrtest.KeyManager, qrtest.KeyReader, qrtest.AdminToken)
	screenshot(t, ctx, filepath.Join("..", "docs", "console-admin.png"), chromedp.Screenshot(chromedp.ID("admin-view")))

	// The rule's Delete removes it.
	within(t, ctx, 5*time.Second, "delete the rule",
		chromedp.Click(chromedp.CSS("#faults tbody tr button")),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#faults tbody tr').length === 0`))
	if code, body := control(t, srv, "GET", "/faults", ""); code != 200 || strings.Contains(body, `"id"`) {
		t.Errorf("after the page deleted the rule: %d %s", code, body)
	}
	// Usage recorded in the page is the API's usage; advancing the period zeroes it.
	within(t, ctx, 5*time.Second, "record usage",
		chromedp.SetValue(chromedp.ID("usage-instance"), qrtest.InstanceA),
		chromedp.SetValue(chromedp.ID("usage-seconds"), "5"),
		chromedp.Click(chromedp.CSS("#usage-form button[type=submit]")),
		chromedp.Poll[chromedp.Void](`document.getElementById('usage-message').textContent.startsWith('Recorded')`))
	if _, u, _ := call(t, srv, "GET", "/api/v1/instances/usage", qrtest.KeyAdmin, qrtest.InstanceA, ""); u["usage_consumed_seconds"] != float64(35) {
		t.Errorf("after the page recorded 5 s on 30: %v", u)
	}
	within(t, ctx, 5*time.Second, "advance the period",
		chromedp.Click(chromedp.ID("advance")),
		chromedp.Poll[chromedp.Void](`document.getElementById('usage-message').textContent.startsWith('The period now starts')`))
	if _, u, _ := call(t, srv, "GET", "/api/v1/instances/usage", qrtest.KeyAdmin, qrtest.InstanceA, ""); u["usage_consumed_seconds"] != float64(0) {
		t.Errorf("after the page advanced the period: %v", u)
	}
	// A fixture made by another client shows, and its Delete removes it.
	code, made := control(t, srv, "POST", "/fixtures", `{"accounts": [{}], "instances": [{"plan_id": "p"}], "principals": [{}]}`)
	var fx struct{ ID string }
	if json.Unmarshal([]byte(made), &fx); code != 201 || fx.ID == "" {
		t.Fatalf("a fixture: %d %s", code, made)
	}
	within(t, ctx, 5*time.Second, "the fixture in the page, deleted",
		chromedp.WaitVisible(chromedp.CSS(`#fixtures tr[data-fixture="`+fx.ID+`"]`)),
		chromedp.Click(chromedp.CSS(`#fixtures tr[data-fixture="`+fx.ID+`"] button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#fixtures tr[data-fixture="`+fx.ID+`"]`)))
	if code, _ := control(t, srv, "GET", "/fixtures/"+fx.ID, ""); code != 404 {
		t.Errorf("the fixture the page deleted answers %d", code)
	}

	// Keyboard: every control has a label or a name, and Tab reaches the first field.
	if unlabelled := eval[[]string](t, ctx, `[...document.querySelectorAll('input, select, button')].filter(e =>
		!(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).map(e => e.outerHTML)`); len(unlabelled) > 0 {
		t.Errorf("controls with no label: %v", unlabelled)
	}
	within(t, ctx, 10*time.Second, "sign out", chromedp.Click(chromedp.ID("sign-out")))
	// From the top of the page, Tab reaches the API key field, and Tab again its button.
	within(t, ctx, 10*time.Second, "Tab", chromedp.Navigate(srv.URL+"/console/"), chromedp.WaitVisible(chromedp.ID("apikey")), chromedp.KeyEvent(kb.Tab))
	if id := eval[string](t, ctx, `document.activeElement.id`); id != "apikey" {
		t.Errorf("Tab from the top reaches %q, want the API key field", id)
	}
	within(t, ctx, 10*time.Second, "Tab", chromedp.KeyEvent(kb.Tab))
	if got := eval[string](t, ctx, `document.activeElement.textContent`); got != "Sign in" {
		t.Errorf("Tab after the API key field reaches %q, want its button", got)
	}
}

// screenshot writes what shot captures, as PNG, to file: the README shows it.
func screenshot(t *testing.T, ctx context.Context, file string, shot chromedp.Action[[]byte]) {
	t.Helper()
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		t.Fatal(err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("%s: not a PNG", file)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
