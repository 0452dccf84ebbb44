package auth

import "context"

// The kinds of principal.
const (
	KindUser      = "user"      // a user of the auth store, by password
	KindToken     = "token"     // an API or robot token of the auth store
	KindAnonymous = "anonymous" // no credentials, when anonymous access is on
	KindHtpasswd  = "htpasswd"  // a user of the legacy htpasswd file
)

// AnonymousName is the name of the anonymous principal.
const AnonymousName = "anonymous"

// Principal is who a request acts as, with what it may do.
type Principal struct {
	// Name is what audit records show: the user name, "token:NAME" for a
	// token, or "anonymous".
	Name string
	// Kind is KindUser, KindToken, KindAnonymous or KindHtpasswd.
	Kind string
	// TokenID is the token's id for KindToken.
	TokenID string
	// Grants are the principal's current grants.
	Grants Grants
}

// Allows reports whether the principal may act in role on namespace.
func (p Principal) Allows(role Role, namespace string) bool {
	return p.Grants.Allows(role, namespace)
}

// tokenPrincipalName is the Name of the principal of token name.
func tokenPrincipalName(name string) string { return "token:" + name }

type principalKey struct{}

// WithPrincipal returns ctx carrying p. It also sets p.Name as the user
// UserFrom returns, for code that only needs a name for the audit log.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	ctx = WithUser(ctx, p.Name)
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of a request context.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
