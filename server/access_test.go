package server_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/enginetest"
	"github.com/qrapi/qrapi/server"
)

// The access matrix: each role, granted on the caller's instance or on its whole
// account, × each operation × the caller's instance, another instance of the same
// account, and another account's instance.
func TestAccessMatrix(t *testing.T) {
	const (
		acctA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		acctB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	)
	crn := func(acct, guid string) string {
		return "crn:v1:bluemix:public:quantum-computing:us-east:a/" + acct + ":" + guid + "::"
	}
	own, sibling, foreign := crn(acctA, "11111111-1111-4111-8111-111111111111"), crn(acctA, "22222222-2222-4222-8222-222222222222"), crn(acctB, "33333333-3333-4333-8333-333333333333")
	alloc := int64(1000)
	sd := &domain.Seed{
		Accounts: []domain.SeedAccount{{ID: acctA}, {ID: acctB}},
		Instances: []domain.SeedInstance{
			{CRN: own, PlanID: "p", Backends: []string{"b"}, UsageAllocationSeconds: &alloc},
			{CRN: sibling, PlanID: "p", Backends: []string{"b"}, UsageAllocationSeconds: &alloc},
			{CRN: foreign, PlanID: "p", Backends: []string{"b"}, UsageAllocationSeconds: &alloc},
		},
	}
	roles := []domain.Role{domain.RoleReader, domain.RoleWriter, domain.RoleManager, domain.RoleViewer, domain.RoleAdministrator}
	for _, scope := range []string{"instance", "account"} {
		for _, role := range roles {
			pol := domain.SeedPolicyIn{Role: role, Instance: own}
			if scope == "account" {
				pol = domain.SeedPolicyIn{Role: role, Account: acctA}
			}
			id := fmt.Sprintf("IBMid-%s-%s", scope, role)
			sd.Principals = append(sd.Principals, domain.SeedPrincipal{
				ID: id, Type: domain.PrincipalUser, Name: id, Account: acctA,
				APIKeys: []string{"key-of-" + id + "-0123456789"}, Policies: []domain.SeedPolicyIn{pol},
			})
		}
	}
	h := newHarness(t, func(c *server.Config) {
		st := enginetest.Open(t)
		if err := st.Load(context.Background(), sd); err != nil {
			t.Fatal(err)
		}
		c.Store = st
	})

	// What each role may do, written out (README, "Access"): the five operations in order
	// get_instance, get_instance_configuration, replace_instance_configuration, get_usage,
	// get_account.
	may := map[domain.Role][5]bool{
		domain.RoleReader:        {true, true, false, true, false},
		domain.RoleWriter:        {true, true, false, true, false},
		domain.RoleManager:       {true, true, true, true, true},
		domain.RoleViewer:        {true, false, false, true, true},
		domain.RoleAdministrator: {true, true, true, true, true},
	}
	type op struct {
		name, method, path string
		ok                 int
	}
	ops := []op{
		{"get_instance", "GET", "/api/v1/instance", 200},
		{"get_instance_configuration", "GET", "/api/v1/instances/configuration", 200},
		{"replace_instance_configuration", "PUT", "/api/v1/instances/configuration", 204},
		{"get_usage", "GET", "/api/v1/instances/usage", 200},
		{"get_account", "GET", "/api/v1/accounts/", 200},
	}
	targets := []struct {
		name, crn, acct string
	}{{"own instance", own, acctA}, {"same account's other instance", sibling, acctA}, {"other account's instance", foreign, acctB}}

	// Each cell twice: with a bearer token from /identity/token, and with the API key itself
	// in the Authorization header (Authorization: apikey <key>).
	n := 0
	for _, cred := range []string{"bearer token", "apikey header"} {
		for _, scope := range []string{"instance", "account"} {
			for _, role := range roles {
				key := fmt.Sprintf("key-of-IBMid-%s-%s-0123456789", scope, role)
				tok, auth := h.token(key), ""
				if cred == "apikey header" {
					tok, auth = "", "apikey "+key
				}
				for i, o := range ops {
					for ti, tg := range targets {
						n++
						// Expected: allowed if the role includes the action and the policy covers the
						// target; a denial is 403, or 404 for get_account, whose page lists no 403.
						covered := tg.acct == acctA && (scope == "account" || (ti == 0 && o.name != "get_account"))
						want := o.ok
						if !(covered && may[role][i]) {
							want = 403
							if o.name == "get_account" {
								want = 404
							}
						}
						path, body := o.path, ""
						hdr := map[string]string{"Service-CRN": tg.crn}
						if o.name == "get_account" {
							path += tg.acct
							delete(hdr, "Service-CRN")
						}
						if auth != "" {
							hdr["Authorization"] = auth
						}
						if o.method == "PUT" {
							body = `{"instance_limit": 900}`
							hdr["Content-Type"] = "application/json"
						}
						resp, b := h.do(o.method, path, tok, hdr, body)
						if resp.StatusCode != want {
							t.Errorf("%s, %s on %s scope, %s on %s: %d, want %d: %s", cred, role, scope, o.name, tg.name, resp.StatusCode, want, b)
						}
					}
				}
			}
		}
	}
	if n != 2*2*5*5*3 {
		t.Fatalf("ran %d cells", n)
	}
}
