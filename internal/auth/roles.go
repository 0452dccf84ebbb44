package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/drydock-project/drydock/internal/imgref"
)

// Role is what a principal may do in a namespace.
type Role string

// The roles. Each is its own permission: push does not imply pull, and
// promote (moving a digest from quarantine/ to live/) implies neither.
// Metrics (reading /metrics) is not about repositories, so, like admin, it
// is global. Admin allows everything everywhere.
const (
	RolePull    Role = "pull"
	RolePush    Role = "push"
	RolePromote Role = "promote"
	RoleMetrics Role = "metrics"
	RoleAdmin   Role = "admin"
)

// roles lists the valid roles in the order help texts show them.
var roles = []Role{RolePull, RolePush, RolePromote, RoleMetrics, RoleAdmin}

// validRoles is the list of roles for error messages.
const validRoles = "pull, push, promote, metrics, admin"

// Global reports whether r is a role of the whole server, granted only on
// "*": admin and metrics.
func (r Role) Global() bool { return r == RoleAdmin || r == RoleMetrics }

// AllNamespaces is the namespace of a grant that applies to every
// namespace.
const AllNamespaces = "*"

// Valid reports whether r is one of the roles above.
func (r Role) Valid() bool { return slices.Contains(roles, r) }

// Grant gives a role in one namespace (the first path component of a
// repository: "quarantine", "live", ...) or in all of them ("*").
type Grant struct {
	Role      Role
	Namespace string
}

// String formats g as "ROLE:NAMESPACE", the form ParseGrant reads.
func (g Grant) String() string { return string(g.Role) + ":" + g.Namespace }

// MarshalText implements encoding.TextMarshaler, so grants encode in JSON
// as "push:quarantine".
func (g Grant) MarshalText() ([]byte, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return []byte(g.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseGrant.
func (g *Grant) UnmarshalText(b []byte) error {
	p, err := ParseGrant(string(b))
	if err != nil {
		return err
	}
	*g = p
	return nil
}

// Validate checks a grant built by hand: a known role, a valid namespace,
// and admin only on "*".
func (g Grant) Validate() error {
	if err := g.check(); err != nil {
		return fmt.Errorf("grant %q: %w", g.String(), err)
	}
	return nil
}

func (g Grant) check() error {
	if !g.Role.Valid() {
		return fmt.Errorf("unknown role %q (valid roles: %s; e.g. push:quarantine)", g.Role, validRoles)
	}
	if g.Namespace != AllNamespaces && !imgref.ValidComponent(g.Namespace) {
		return fmt.Errorf("invalid namespace %q: want \"*\" or a repository's first path component such as quarantine or live (lowercase letters and digits, single . _ - between them)", g.Namespace)
	}
	if g.Role == RoleAdmin && g.Namespace != AllNamespaces {
		return fmt.Errorf("admin is global (it allows everything in every namespace): write just \"admin\"")
	}
	if g.Role.Global() && g.Namespace != AllNamespaces {
		return fmt.Errorf("%s is global (it is not about repositories): write just %q", g.Role, string(g.Role))
	}
	return nil
}

// ParseGrant reads "ROLE:NAMESPACE" (push:quarantine) or "ROLE" alone,
// which means ROLE in every namespace (pull = pull:*).
func ParseGrant(s string) (Grant, error) {
	text := strings.TrimSpace(s)
	if text == "" {
		return Grant{}, fmt.Errorf("empty role: want ROLE or ROLE:NAMESPACE (valid roles: %s)", validRoles)
	}
	role, ns, hasNS := strings.Cut(text, ":")
	if !hasNS {
		ns = AllNamespaces
	}
	g := Grant{Role: Role(role), Namespace: ns}
	if err := g.check(); err != nil {
		return Grant{}, fmt.Errorf("role %q: %w", s, err)
	}
	return g, nil
}

// Grants is a set of grants, kept sorted and without duplicates by the
// functions that build one.
type Grants []Grant

// ParseGrants reads grants given as separate items, each of which may also
// hold several separated by commas ("pull:live,push:quarantine"). Empty
// items are skipped. The result is sorted and without duplicates.
func ParseGrants(items []string) (Grants, error) {
	var gs Grants
	for _, item := range items {
		for part := range strings.SplitSeq(item, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			g, err := ParseGrant(part)
			if err != nil {
				return nil, err
			}
			gs = append(gs, g)
		}
	}
	return gs.normalize(), nil
}

// Validate checks every grant.
func (gs Grants) Validate() error {
	for _, g := range gs {
		if err := g.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// normalize returns the grants sorted by their string form, without
// duplicates, never nil.
func (gs Grants) normalize() Grants {
	out := slices.Clone(gs)
	if out == nil {
		out = Grants{}
	}
	slices.SortFunc(out, func(a, b Grant) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

// IsAdmin reports whether the grants include admin.
func (gs Grants) IsAdmin() bool {
	for _, g := range gs {
		if g.Role == RoleAdmin {
			return true
		}
	}
	return false
}

// Allows reports whether the grants allow role in namespace: admin allows
// everything; otherwise a grant of exactly that role on that namespace or
// on "*".
func (gs Grants) Allows(role Role, namespace string) bool {
	for _, g := range gs {
		if g.Role == RoleAdmin {
			return true
		}
		if g.Role == role && (g.Namespace == AllNamespaces || g.Namespace == namespace) {
			return true
		}
	}
	return false
}

// Covers reports whether gs allows everything g allows: a grant on "*"
// is covered only by the same role on "*" (or admin).
func (gs Grants) Covers(g Grant) bool {
	if gs.IsAdmin() {
		return true
	}
	if g.Role == RoleAdmin {
		return false
	}
	return gs.Allows(g.Role, g.Namespace) && (g.Namespace != AllNamespaces || gs.Allows(g.Role, AllNamespaces))
}

// Intersect returns what both gs and other allow.
func (gs Grants) Intersect(other Grants) Grants {
	var out Grants
	for _, a := range gs {
		for _, b := range other {
			if g, ok := intersectGrant(a, b); ok {
				out = append(out, g)
			}
		}
	}
	return out.normalize()
}

func intersectGrant(a, b Grant) (Grant, bool) {
	switch {
	case a.Role == RoleAdmin:
		return b, true
	case b.Role == RoleAdmin:
		return a, true
	case a.Role != b.Role:
		return Grant{}, false
	case a.Namespace == AllNamespaces:
		return b, true
	case b.Namespace == AllNamespaces || a.Namespace == b.Namespace:
		return a, true
	}
	return Grant{}, false
}

// Strings returns the grants as "ROLE:NAMESPACE" strings.
func (gs Grants) Strings() []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.String()
	}
	return out
}

// String joins the grants with commas ("none" when there are none).
func (gs Grants) String() string {
	if len(gs) == 0 {
		return "none"
	}
	return strings.Join(gs.Strings(), ",")
}
