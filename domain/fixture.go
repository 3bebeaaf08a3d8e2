package domain

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Fixture is state that a test made at run time from a seed document, on a server other
// tests share: its own accounts, instances and principals, removed or reset on their own.
type Fixture struct {
	ID        string
	CreatedAt time.Time
	// Seed is the document completed (NewFixture): every id, CRN and policy given, and no
	// API key: those are kept only as hashes.
	Seed *Seed
	// KeyHashes are the HashAPIKey of each principal's keys, by principal id.
	KeyHashes map[string][]string
}

// The limits of fixtures: a fixture's document (the control API's schema says the same)
// and the fixtures one server keeps.
const (
	MaxFixtureInstances  = 1000
	MaxFixturePrincipals = 1000
	MaxFixtures          = 10000
)

// DefaultRegion is where a fixture's generated CRNs are when its document names none.
const DefaultRegion = "us-east"

// NewFixture completes a seed document into a fixture, checked as a seed is. What the
// document leaves out is generated: account ids (32 lowercase hex), instance CRNs (in its
// region, under the instance's account), principal ids, one API key for a principal that
// lists none (44 characters, as IBM Cloud's), and for a principal that names no policy,
// Administrator on each of the document's accounts. It returns the API keys by principal:
// the only place a generated key is to be shown.
func NewFixture(doc *Seed, now time.Time) (*Fixture, map[string][]string, error) {
	if len(doc.Instances) > MaxFixtureInstances {
		return nil, nil, Errorf(EINVALID, "A fixture has at most %d instances; this one has %d.", MaxFixtureInstances, len(doc.Instances)).
			WithTarget("field", "instances").WithReason("fixture_limit")
	}
	if len(doc.Principals) > MaxFixturePrincipals {
		return nil, nil, Errorf(EINVALID, "A fixture has at most %d principals; this one has %d.", MaxFixturePrincipals, len(doc.Principals)).
			WithTarget("field", "principals").WithReason("fixture_limit")
	}
	if len(doc.Accounts) == 0 {
		return nil, nil, Errorf(EINVALID, "A fixture needs at least one account.").WithTarget("field", "accounts").WithReason("invalid_field")
	}
	s := &Seed{Region: doc.Region, Accounts: slices.Clone(doc.Accounts), Instances: slices.Clone(doc.Instances), Principals: slices.Clone(doc.Principals)}
	if s.Region == "" {
		s.Region = DefaultRegion
	}
	var accounts []string
	for i := range s.Accounts {
		if s.Accounts[i].ID == "" {
			s.Accounts[i].ID = randomHex(16)
		}
		accounts = append(accounts, s.Accounts[i].ID)
	}
	for i := range s.Instances {
		in := &s.Instances[i]
		if in.CRN == "" {
			account := in.Account
			if account == "" {
				account = accounts[0]
			}
			if !slices.Contains(accounts, account) {
				return nil, nil, Errorf(EINVALID, "instances[%d].account: %q is not an account of the document.", i, account).
					WithTarget("field", fmt.Sprintf("instances[%d].account", i)).WithReason("invalid_field")
			}
			in.CRN = fmt.Sprintf("crn:v1:bluemix:public:quantum-computing:%s:a/%s:%s::", s.Region, account, uuid.NewString())
		} else if c, err := ParseCRN(in.CRN); err == nil && in.Account != "" && in.Account != c.AccountID {
			return nil, nil, Errorf(EINVALID, "instances[%d]: the CRN is in account %s, not in account %s.", i, c.AccountID, in.Account).
				WithTarget("field", fmt.Sprintf("instances[%d].account", i)).WithReason("invalid_field")
		}
		in.Account = ""
	}
	keys := map[string][]string{}
	hashes := map[string][]string{}
	for i := range s.Principals {
		p := &s.Principals[i]
		if p.Type == "" {
			p.Type = PrincipalUser
		}
		if p.ID == "" {
			p.ID = "IBMid-" + randomHex(5)
			if p.Type == PrincipalServiceID {
				p.ID = "iam-ServiceId-" + uuid.NewString()
			}
		}
		if p.Name == "" {
			p.Name = p.ID
		}
		if p.Account == "" {
			p.Account = accounts[0]
		}
		if p.APIKeys == nil {
			p.APIKeys = []string{newAPIKey()}
		}
		if p.Policies == nil {
			for _, a := range accounts {
				p.Policies = append(p.Policies, SeedPolicyIn{Role: RoleAdministrator, Account: a})
			}
		}
		keys[p.ID] = p.APIKeys
	}
	if _, err := s.State(); err != nil { // the seed rules, naming the field
		return nil, nil, err
	}
	for i := range s.Principals {
		p := &s.Principals[i]
		for _, k := range p.APIKeys {
			hashes[p.ID] = append(hashes[p.ID], HashAPIKey(k))
		}
		p.APIKeys = nil
	}
	f := &Fixture{ID: "fx-" + randomHex(8), CreatedAt: KeptTime(now), Seed: s, KeyHashes: hashes}
	return f, keys, nil
}

// State is the fixture's state as it is made at now (a current_month period is now's
// month), every entity marked as the fixture's.
func (f *Fixture) State(now time.Time) (*State, error) {
	st, err := f.Seed.At(now).State()
	if err != nil {
		return nil, err
	}
	for i := range st.Accounts {
		st.Accounts[i].FixtureID = f.ID
	}
	for i := range st.Instances {
		st.Instances[i].FixtureID = f.ID
	}
	for i := range st.Principals {
		st.Principals[i].FixtureID = f.ID
		for _, h := range f.KeyHashes[st.Principals[i].ID] {
			st.APIKeyHash[h] = st.Principals[i].ID
		}
	}
	return st, nil
}

// Encode is how a store keeps a fixture's document and key hashes: as JSON.
func (f *Fixture) Encode() (seed, hashes []byte, err error) {
	if seed, err = json.Marshal(f.Seed); err == nil {
		hashes, err = json.Marshal(f.KeyHashes)
	}
	return seed, hashes, err
}

// Decode reads back into f what Encode made.
func (f *Fixture) Decode(seed, hashes []byte) error {
	if err := json.Unmarshal(seed, &f.Seed); err != nil {
		return fmt.Errorf("a kept fixture's document: %w", err)
	}
	return json.Unmarshal(hashes, &f.KeyHashes)
}

// FixtureName is a name a fixture takes (an account id, an instance CRN, a principal id or
// an API key's hash) with the document's field that gives it: it must not be taken yet.
type FixtureName struct {
	Field, Kind, Value string
}

// The kinds of FixtureName.
const (
	NameAccount   = "account"
	NameInstance  = "instance"
	NamePrincipal = "principal"
	NameAPIKey    = "API key"
)

// Names lists the names the fixture takes, in the document's order.
func (f *Fixture) Names() []FixtureName {
	var out []FixtureName
	for i, a := range f.Seed.Accounts {
		out = append(out, FixtureName{fmt.Sprintf("accounts[%d].id", i), NameAccount, a.ID})
	}
	for i, in := range f.Seed.Instances {
		out = append(out, FixtureName{fmt.Sprintf("instances[%d].crn", i), NameInstance, in.CRN})
	}
	for i, p := range f.Seed.Principals {
		out = append(out, FixtureName{fmt.Sprintf("principals[%d].id", i), NamePrincipal, p.ID})
		for j, h := range f.KeyHashes[p.ID] {
			out = append(out, FixtureName{fmt.Sprintf("principals[%d].api_keys[%d]", i, j), NameAPIKey, h})
		}
	}
	return out
}

// FirstTaken is the 409 for the first of names that taken holds (by kind, then value), or
// nil if none is taken. The message never repeats an API key.
func FirstTaken(names []FixtureName, taken map[string]map[string]bool) error {
	for _, n := range names {
		if taken[n.Kind][n.Value] {
			return n.Taken()
		}
	}
	return nil
}

// Taken is the 409 for a name that is taken already. The message never repeats an API key.
func (n FixtureName) Taken() *Error {
	what := n.Kind + " " + n.Value
	if n.Kind == NameAPIKey {
		what = "API key"
	}
	return Errorf(ECONFLICT, "%s: the %s exists already.", n.Field, what).WithTarget("field", n.Field).WithReason("already_exists")
}

// TooManyFixtures is the answer when a server keeps MaxFixtures already.
func TooManyFixtures() *Error {
	return Errorf(ECONFLICT, "This server keeps %d fixtures, its limit: delete one first.", MaxFixtures).WithReason("fixture_limit")
}

// FixtureNotFound is a store's answer for a fixture id it does not hold.
func FixtureNotFound(id string) *Error {
	return Errorf(ENOTFOUND, "No fixture has the id %s.", id).WithReason("fixture_not_found")
}

// Summary is what a fixture made, by kind: account ids, instance CRNs, and its principals.
func (f *Fixture) Summary() (accounts, instances []string, principals []Principal) {
	for _, a := range f.Seed.Accounts {
		accounts = append(accounts, a.ID)
	}
	for _, in := range f.Seed.Instances {
		instances = append(instances, in.CRN)
	}
	for _, p := range f.Seed.Principals {
		principals = append(principals, Principal{ID: p.ID, Type: p.Type, Name: p.Name, AccountID: p.Account, FixtureID: f.ID})
	}
	return accounts, instances, principals
}

// Owned are the ids an audit event's target or initiator has when it is one of the
// fixture's: its instances' CRNs, its accounts (a/<id>) and its principals.
func (f *Fixture) Owned() map[string]bool {
	ids := map[string]bool{}
	for _, a := range f.Seed.Accounts {
		ids["a/"+a.ID] = true
	}
	for _, in := range f.Seed.Instances {
		ids[in.CRN] = true
	}
	for _, p := range f.Seed.Principals {
		ids[p.ID] = true
	}
	return ids
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newAPIKey is a random API key of 44 characters, as IBM Cloud's are.
func newAPIKey() string {
	b := make([]byte, 33)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
