package domain

import "slices"

// The IAM actions of the API's operations, as the reference pages name them.
const (
	ActionInstanceRead           = "quantum-computing.instance.read"
	ActionConfigurationRead      = "quantum-computing.instance.configuration.read"
	ActionConfigurationUpdate    = "quantum-computing.instance.configuration.update"
	ActionUsageRead              = "quantum-computing.instance-usage.read"
	ActionAccountConfigurationRd = "quantum-computing.account-configuration.read"
)

// Role is an IBM Cloud IAM role: a service role (Reader, Writer, Manager) or a platform
// role (Viewer, Administrator).
type Role string

// The roles a policy can grant.
const (
	RoleReader        Role = "Reader"
	RoleWriter        Role = "Writer"
	RoleManager       Role = "Manager"
	RoleViewer        Role = "Viewer"
	RoleAdministrator Role = "Administrator"
)

// RoleActions maps each role to the actions it includes. Writers run jobs, which this API
// does not cover, so on these operations they can do what Readers can; changing an
// instance's limit is Manager's or Administrator's; the account's configuration is for
// the platform roles and Manager.
var RoleActions = map[Role][]string{
	RoleReader:        {ActionInstanceRead, ActionConfigurationRead, ActionUsageRead},
	RoleWriter:        {ActionInstanceRead, ActionConfigurationRead, ActionUsageRead},
	RoleManager:       {ActionInstanceRead, ActionConfigurationRead, ActionConfigurationUpdate, ActionUsageRead, ActionAccountConfigurationRd},
	RoleViewer:        {ActionInstanceRead, ActionUsageRead, ActionAccountConfigurationRd},
	RoleAdministrator: {ActionInstanceRead, ActionConfigurationRead, ActionConfigurationUpdate, ActionUsageRead, ActionAccountConfigurationRd},
}

// Granted reports whether some role includes the action: an action no role grants would
// refuse every call that needs it.
func Granted(action string) bool {
	for _, actions := range RoleActions {
		if slices.Contains(actions, action) {
			return true
		}
	}
	return false
}

// ValidRole reports whether r is a role this service knows.
func ValidRole(r Role) bool { _, ok := RoleActions[r]; return ok }

// PrincipalType tells users from service IDs, as IAM does.
type PrincipalType string

// The principal types.
const (
	PrincipalUser      PrincipalType = "user"
	PrincipalServiceID PrincipalType = "serviceid"
)

// Principal is an identity that calls the API: a user or a service ID of an account.
type Principal struct {
	ID        string // IBMid-... for users, iam-ServiceId-... for service IDs
	Type      PrincipalType
	Name      string
	AccountID string // the account that the principal belongs to
	FixtureID string // the fixture that made it, if one did
}

// Policy grants a role to a principal on a whole account or on one instance.
type Policy struct {
	PrincipalID string
	Role        Role
	AccountID   string // the account the policy is on
	InstanceCRN string // if set, the policy covers only this instance
}

// Resource is what an operation acts on: an account, or one instance of an account.
type Resource struct {
	AccountID   string
	InstanceCRN string // empty for account-level operations
}

// Allowed reports whether any of the policies grants action on the resource. An account
// policy covers the account and all its instances; an instance policy only that instance.
func Allowed(policies []Policy, action string, res Resource) bool {
	for _, p := range policies {
		if p.AccountID != res.AccountID {
			continue
		}
		if p.InstanceCRN != "" && p.InstanceCRN != res.InstanceCRN {
			continue
		}
		if slices.Contains(RoleActions[p.Role], action) {
			return true
		}
	}
	return false
}

// String names the resource as IAM would: the instance CRN, or a/<account id>.
func (r Resource) String() string {
	if r.InstanceCRN != "" {
		return r.InstanceCRN
	}
	return "a/" + r.AccountID
}
