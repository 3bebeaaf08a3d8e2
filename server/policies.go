package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/gen/platform"
)

// ListPolicies answers IAM Policy Management's listing with the caller's own policies in
// the account: IAM's shape (subjects, roles by CRN, resources by attribute) of the
// policies the server checks every call against.
func (h platformHandlers) ListPolicies(ctx context.Context, req platform.ListPoliciesRequestObject) (platform.ListPoliciesResponseObject, error) {
	rs := stateFrom(ctx)
	if p := req.Params.IamId; p != nil && *p != rs.principal.ID {
		return nil, domain.Errorf(domain.EFORBIDDEN, "Only your own policies can be listed here: iam_id %s is not the caller.", *p)
	}
	out := platform.PolicyList{Policies: []platform.Policy{}}
	for _, p := range rs.policies {
		if p.AccountID != req.Params.AccountId {
			continue
		}
		out.Policies = append(out.Policies, iamPolicy(p))
	}
	return platform.ListPolicies200JSONResponse(out), nil
}

// iamPolicy is p as IAM Policy Management shows a policy. Its id is derived from what it
// grants, so it is the same in every answer and on every replica.
func iamPolicy(p domain.Policy) platform.Policy {
	kind := "serviceRole"
	if p.Role == domain.RoleViewer || p.Role == domain.RoleAdministrator {
		kind = "role"
	}
	eq := "stringEquals"
	attr := func(name, value string) platform.PolicyAttribute {
		return platform.PolicyAttribute{Name: name, Operator: &eq, Value: value}
	}
	resource := platform.PolicyAttributes{}
	resource.Attributes = append(resource.Attributes, attr("accountId", p.AccountID), attr("serviceName", "quantum-computing"))
	if p.InstanceCRN != "" {
		c, _ := domain.ParseCRN(p.InstanceCRN)
		resource.Attributes = append(resource.Attributes, attr("serviceInstance", c.Instance))
	}
	subject := platform.PolicyAttributes{}
	subject.Attributes = append(subject.Attributes, attr("iam_id", p.PrincipalID))
	sum := sha256.Sum256([]byte(p.PrincipalID + "\x00" + string(p.Role) + "\x00" + p.AccountID + "\x00" + p.InstanceCRN))
	return platform.Policy{
		Id:        hex.EncodeToString(sum[:16]),
		Type:      platform.PolicyTypeAccess,
		State:     platform.PolicyStateActive,
		Subjects:  []platform.PolicyAttributes{subject},
		Resources: []platform.PolicyAttributes{resource},
		Roles:     []platform.PolicyRole{{DisplayName: string(p.Role), RoleId: "crn:v1:bluemix:public:iam::::" + kind + ":" + string(p.Role)}},
	}
}
