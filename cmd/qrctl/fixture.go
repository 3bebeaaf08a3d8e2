package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qrapi/qrapi/gen/control"
)

// envAdminToken names the reference server's control API token.
const envAdminToken = "QRCTL_ADMIN_TOKEN"

// fixtureCommand is qrctl fixture: the reference server's fixtures, through its control
// API, at the server of --url.
func (a *app) fixtureCommand() *cobra.Command {
	fx := &cobra.Command{Use: "fixture", Short: "Make, list and delete fixtures on the reference server (its control API, at --url's server)"}
	fx.PersistentFlags().StringVar(&a.adminToken, "admin-token", "", "the reference server's admin token (env "+envAdminToken+")")
	var file string
	create := &cobra.Command{Use: "create -f FILE", Short: "Make a fixture from a seed document (YAML or JSON; - for standard input) and show its keys", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.fixtureCreate(cmd.Context(), file) }}
	create.Flags().StringVarP(&file, "file", "f", "", "the seed document")
	fx.AddCommand(create,
		&cobra.Command{Use: "list", Short: "List the fixtures (without keys)", Args: noArgs, RunE: func(cmd *cobra.Command, _ []string) error { return a.fixtureList(cmd.Context()) }},
		&cobra.Command{Use: "delete ID", Short: "Delete a fixture and everything it made", Args: oneArg, RunE: func(cmd *cobra.Command, args []string) error { return a.fixtureDelete(cmd.Context(), args[0]) }},
	)
	return fx
}

// controlClient is the control API's client at the server of --url.
func (a *app) controlClient() (*control.ClientWithResponses, error) {
	if a.adminToken == "" {
		a.adminToken = a.getenv(envAdminToken)
	}
	if a.adminToken == "" {
		return nil, usageError{errors.New("no admin token: give --admin-token (or " + envAdminToken + "), the token qrserver was started with")}
	}
	if a.s.url == "" {
		return nil, usageError{errors.New("fixtures are the reference server's: give --url (or the environment's), such as http://127.0.0.1:8080/api")}
	}
	base := strings.TrimSuffix(strings.TrimSuffix(a.s.url, "/"), "/api")
	token := a.adminToken
	return control.NewClientWithResponses(base+"/control", control.WithHTTPClient(a.httpClient()),
		control.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+token)
			return nil
		}))
}

// controlFailed is the error of a control call that did not answer want.
func controlFailed(status, want int, body []byte) error {
	if status == want {
		return nil
	}
	return fmt.Errorf("the control API answered %d: %s", status, strings.TrimSpace(string(body)))
}

func (a *app) fixtureCreate(ctx context.Context, file string) error {
	if file == "" {
		return usageError{errors.New("fixture create needs -f FILE (a seed document; - for standard input)")}
	}
	var (
		doc []byte
		err error
	)
	if file == "-" {
		doc, err = io.ReadAll(os.Stdin)
	} else {
		doc, err = os.ReadFile(file)
	}
	if err != nil {
		return usageError{err}
	}
	c, err := a.controlClient()
	if err != nil {
		return err
	}
	contentType := "application/yaml"
	if t := bytes.TrimSpace(doc); len(t) > 0 && t[0] == '{' {
		contentType = "application/json"
	}
	r, err := c.CreateFixtureWithBodyWithResponse(ctx, contentType, bytes.NewReader(doc))
	if err != nil {
		return err
	}
	if err := controlFailed(r.StatusCode(), http.StatusCreated, r.Body); err != nil {
		return err
	}
	if ok, err := a.shown(r.Body); ok || err != nil {
		return err
	}
	f := r.JSON201
	rows := [][2]string{{"Fixture", f.Id}}
	for _, id := range f.Accounts {
		rows = append(rows, [2]string{"Account", id})
	}
	for _, crn := range f.Instances {
		rows = append(rows, [2]string{"Instance", crn})
	}
	for _, p := range f.Principals {
		rows = append(rows, [2]string{"Principal", p.Id + " (" + string(p.Type) + ")"})
		if p.ApiKeys != nil {
			for _, k := range *p.ApiKeys {
				rows = append(rows, [2]string{"  API key", k})
			}
		}
	}
	if err := table(a.stdout, rows); err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, "The keys are shown only now; `qrctl fixture delete "+f.Id+"` removes it all.")
	return err
}

func (a *app) fixtureList(ctx context.Context) error {
	c, err := a.controlClient()
	if err != nil {
		return err
	}
	r, err := c.ListFixturesWithResponse(ctx)
	if err != nil {
		return err
	}
	if err := controlFailed(r.StatusCode(), http.StatusOK, r.Body); err != nil {
		return err
	}
	if ok, err := a.shown(r.Body); ok || err != nil {
		return err
	}
	rows := [][2]string{{"ID", "CREATED  ACCOUNTS  INSTANCES  PRINCIPALS"}}
	for _, f := range r.JSON200.Fixtures {
		rows = append(rows, [2]string{f.Id, fmt.Sprintf("%s  %d  %d  %d", f.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"),
			len(f.Accounts), len(f.Instances), len(f.Principals))})
	}
	if len(r.JSON200.Fixtures) == 0 {
		_, err := fmt.Fprintln(a.stdout, "No fixtures.")
		return err
	}
	return table(a.stdout, rows)
}

func (a *app) fixtureDelete(ctx context.Context, id string) error {
	c, err := a.controlClient()
	if err != nil {
		return err
	}
	r, err := c.DeleteFixtureWithResponse(ctx, id)
	if err != nil {
		return err
	}
	if err := controlFailed(r.StatusCode(), http.StatusNoContent, r.Body); err != nil {
		return err
	}
	return a.done("Deleted fixture "+id+".", map[string]string{"deleted": id, "status": strconv.Itoa(r.StatusCode())})
}
