package auth

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/imgref"
)

// ErrAuthRequired is the failure of a request without credentials when
// anonymous access is off.
var ErrAuthRequired = errors.New("authentication required")

// errMalformed is the failure of an Authorization header drydock cannot
// read.
var errMalformed = errors.New("malformed Authorization header")

// maxTokenForm bounds the body of a POST to the token endpoint.
const maxTokenForm = 64 << 10

// Authenticator authenticates registry requests against the store (users
// and API tokens), short-lived bearer tokens from its Issuer, and
// optionally a legacy htpasswd file, and authorizes them against the
// principal's current grants.
type Authenticator struct {
	Store  *Store
	Issuer *Issuer
	// Htpasswd, when set, is tried after the store refused a user name and
	// password; its users get HtpasswdGrants.
	Htpasswd       *Htpasswd
	HtpasswdGrants Grants
	// Anonymous are the grants of requests without credentials; empty
	// turns anonymous access off.
	Anonymous Grants
	// Realm is the basic-auth realm of the token endpoint ("drydock" when
	// empty); Service the service bearer challenges name ("drydock").
	Realm   string
	Service string
	// OnFailure, when set, is told about every request whose credentials
	// were refused: name is who they claimed to be (a user name,
	// "token:ID" for an API token, or a bearer token's subject), reason
	// the message the client gets.
	OnFailure func(r *http.Request, name, reason string)
	// OnDenied, when set, is told about every request AuthorizeMiddleware
	// refuses.
	OnDenied func(r *http.Request, p Principal, err *DeniedError)
	// OnError, when set, is told about failures that are not the client's
	// (the store could not be read); the client gets a 500.
	OnError func(r *http.Request, err error)
	// Throttle, when set, limits wrong passwords per user name and per
	// client address (see Throttle): past the limit a login attempt gets
	// 429 Too Many Requests with Retry-After, without its password being
	// checked. API tokens count against the address only: they cannot be
	// guessed, and a guesser of a user's password must not lock out the
	// tokens of that user's robots.
	Throttle Throttle
	// OnThrottled, when set, is told about every attempt the throttle
	// refused (instead of OnFailure).
	OnThrottled func(r *http.Request, name string, w *Wait)
}

func (a *Authenticator) realm() string   { return cmp.Or(a.Realm, "drydock") }
func (a *Authenticator) service() string { return cmp.Or(a.Service, "drydock") }

// Resolve returns the principal a request acts as: from Basic credentials
// (a store user and password, an API token as the password, or an htpasswd
// user), from an Authorization: Bearer API token or issued bearer token,
// or anonymous when there are no credentials and anonymous access is on.
func (a *Authenticator) Resolve(r *http.Request) (Principal, error) {
	p, _, err := a.resolve(r)
	return p, err
}

// resolve is Resolve that also returns who the credentials claimed to be.
func (a *Authenticator) resolve(r *http.Request) (p Principal, claimed string, err error) {
	ctx := r.Context()
	h := r.Header.Get("Authorization")
	if h == "" {
		return a.anonymous()
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "basic":
		user, pass, ok := r.BasicAuth()
		if !ok {
			return Principal{}, "", fmt.Errorf("%w: bad Basic credentials", errMalformed)
		}
		p, err := a.login(r, user, pass)
		return p, claimedName(user, pass), err
	case "bearer":
		if strings.HasPrefix(cred, TokenPrefix) {
			if a.Store == nil {
				return Principal{}, claimedName("", cred), ErrBadCredentials
			}
			p, err := a.Store.AuthenticateToken(ctx, cred)
			return p, claimedName("", cred), err
		}
		return a.bearer(ctx, cred)
	}
	return Principal{}, "", fmt.Errorf("%w: unsupported scheme %q (use Basic or Bearer)", errMalformed, scheme)
}

// claimedName names credentials for OnFailure: the user name, or
// "token:ID" when the password is an API token.
func claimedName(user, pass string) string {
	if strings.HasPrefix(pass, TokenPrefix) {
		if id, ok := tokenIDOf(pass); ok {
			return "token:" + id
		}
		return "token"
	}
	return user
}

func (a *Authenticator) anonymous() (Principal, string, error) {
	if len(a.Anonymous) == 0 {
		return Principal{}, "", ErrAuthRequired
	}
	return Principal{Name: AnonymousName, Kind: KindAnonymous, Grants: a.Anonymous.normalize()}, AnonymousName, nil
}

// login is password under the throttle: a user name or client address
// that failed too often waits (a *ThrottledError) without its password
// being checked; a wrong password keeps the attempt it reserved, anything
// else gives it back.
func (a *Authenticator) login(r *http.Request, user, pass string) (Principal, error) {
	if a.Throttle == nil {
		return a.password(r.Context(), user, pass)
	}
	ctx := r.Context()
	keys := []string{AddressKey(ClientAddress(r))}
	if user != "" && !strings.HasPrefix(pass, TokenPrefix) {
		keys = append(keys, UserKey(user))
	}
	w, err := a.Throttle.Attempt(ctx, keys...)
	if err != nil {
		return Principal{}, fmt.Errorf("login throttle: %w", err)
	}
	if w != nil {
		return Principal{}, &ThrottledError{Wait: *w}
	}
	p, err := a.password(ctx, user, pass)
	if err != nil && errors.Is(err, ErrBadCredentials) {
		return p, err
	}
	if serr := a.Throttle.Succeeded(ctx, keys...); serr != nil && err == nil {
		return Principal{}, fmt.Errorf("login throttle: %w", serr)
	}
	return p, err
}

// password checks a user name and password (or API token) against the
// store, then the htpasswd file.
func (a *Authenticator) password(ctx context.Context, user, pass string) (Principal, error) {
	if a.Store != nil {
		p, err := a.Store.Authenticate(ctx, user, pass)
		if err == nil || !errors.Is(err, ErrBadCredentials) {
			return p, err
		}
	}
	if a.Htpasswd != nil && !strings.HasPrefix(pass, TokenPrefix) && a.Htpasswd.Verify(user, pass) {
		return Principal{Name: user, Kind: KindHtpasswd, Grants: a.HtpasswdGrants.normalize()}, nil
	}
	return Principal{}, ErrBadCredentials
}

// bearer resolves an issued bearer token into the principal it names, with
// that principal's current grants.
func (a *Authenticator) bearer(ctx context.Context, tok string) (Principal, string, error) {
	if a.Issuer == nil {
		return Principal{}, "", fmt.Errorf("%w: this server issues none", ErrInvalidBearer)
	}
	c, err := a.Issuer.Verify(tok)
	if err != nil {
		return Principal{}, "", err
	}
	switch c.Kind {
	case KindAnonymous:
		p, _, err := a.anonymous()
		return p, c.Subject, err
	case KindHtpasswd:
		if a.Htpasswd != nil {
			if _, ok := a.Htpasswd.users[c.User]; ok {
				return Principal{Name: c.User, Kind: KindHtpasswd, Grants: a.HtpasswdGrants.normalize()}, c.Subject, nil
			}
		}
		return Principal{}, c.Subject, fmt.Errorf("htpasswd user %q %w", c.User, ErrNotFound)
	}
	if a.Store == nil {
		return Principal{}, c.Subject, fmt.Errorf("%w: no user store", ErrInvalidBearer)
	}
	if c.Kind == KindToken {
		p, err := a.Store.TokenPrincipal(ctx, c.TokenID)
		return p, c.Subject, err
	}
	p, err := a.Store.UserPrincipal(ctx, c.User)
	return p, c.Subject, err
}

// isAuthFailure reports whether err is the client's failure to
// authenticate (and not, say, an unreadable store).
func isAuthFailure(err error) bool {
	var expired *TokenExpiredError
	var throttled *ThrottledError
	for _, target := range []error{ErrAuthRequired, errMalformed, ErrBadCredentials, ErrTokenRevoked,
		ErrUserDisabled, ErrInvalidBearer, ErrBearerExpired, ErrNotFound} {
		if errors.Is(err, target) {
			return true
		}
	}
	return errors.As(err, &expired) || errors.As(err, &throttled)
}

// failureMessage is what a client is told about an authentication failure.
func failureMessage(r *http.Request, err error) string {
	switch {
	case errors.Is(err, ErrAuthRequired):
		return "authentication required: log in with `drydock login " + r.Host + "` (or docker/podman login)"
	case errors.Is(err, ErrBadCredentials) && !errors.Is(err, ErrNotFound):
		return ErrBadCredentials.Error()
	}
	return err.Error()
}

// fail answers a request whose authentication failed: 401 with challenge,
// or 500 when the failure is not the client's.
func (a *Authenticator) fail(w http.ResponseWriter, r *http.Request, claimed string, err error, challenge string) {
	if !isAuthFailure(err) {
		if a.OnError != nil {
			a.OnError(r, err)
		}
		WriteRegistryError(w, http.StatusInternalServerError, "UNKNOWN", "authentication failed: internal error (see the server log)")
		return
	}
	msg := failureMessage(r, err)
	var throttled *ThrottledError
	if errors.As(err, &throttled) {
		if a.OnThrottled != nil {
			a.OnThrottled(r, cmp.Or(claimed, "unknown"), &throttled.Wait)
		}
		w.Header().Set("Retry-After", retryAfterSeconds(throttled.RetryAfter))
		WriteRegistryError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", msg)
		return
	}
	if (r.Header.Get("Authorization") != "" || claimed != "") && a.OnFailure != nil {
		a.OnFailure(r, cmp.Or(claimed, "unknown"), msg)
	}
	w.Header().Set("WWW-Authenticate", challenge)
	WriteRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", msg)
}

// WriteRegistryError answers with a distribution-spec error body, the
// format registry clients show their user.
func WriteRegistryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": code, "message": msg}},
	})
}

// baseURL is the scheme and host the client reached this server at.
func baseURL(r *http.Request) string {
	scheme := "http"
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	if r.TLS != nil || strings.EqualFold(strings.TrimSpace(proto), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// bearerChallenge is the challenge that sends clients to the token
// endpoint, with the scope the request needs when it is a repository route.
func (a *Authenticator) bearerChallenge(r *http.Request) string {
	c := fmt.Sprintf("Bearer realm=%q,service=%q", baseURL(r)+"/auth/token", a.service())
	if rt, ok := imgref.ParseRoute(r.URL.Path); ok && imgref.ValidRepository(rt.Repository) {
		repo := rt.Repository
		actions := "pull"
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			actions = "pull,push"
		}
		c += fmt.Sprintf(",scope=%q", "repository:"+repo+":"+actions)
	}
	return c
}

func (a *Authenticator) basicChallenge() string { return fmt.Sprintf("Basic realm=%q", a.realm()) }

// Middleware authenticates every request and passes it on with its
// principal in the context (see PrincipalFrom; UserFrom gives its name).
// Failures get 401 with a bearer challenge pointing to /auth/token. A
// request for the API base /v2/ without credentials is challenged even
// when anonymous access is on: clients such as docker ping /v2/ first and
// send credentials only when challenged, and the token endpoint gives
// anonymous clients an anonymous token.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" && (r.URL.Path == "/v2/" || r.URL.Path == "/v2") {
			a.fail(w, r, "", ErrAuthRequired, a.bearerChallenge(r))
			return
		}
		p, claimed, err := a.resolve(r)
		if err != nil {
			a.fail(w, r, claimed, err, a.bearerChallenge(r))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// tokenResponse is the token endpoint's answer (the Docker registry token
// spec; Scope only for the OAuth2 POST form).
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
	Scope       string `json:"scope,omitempty"`
}

// TokenHandler serves the token endpoint (/auth/token): GET with Basic
// credentials, or without any when anonymous access is on, and POST with
// the OAuth2 form grant_type=password&username=...&password=....
// The scope asked for is not checked here: every request is authorized
// against the principal's current grants.
func (a *Authenticator) TokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.Issuer == nil {
			WriteRegistryError(w, http.StatusNotFound, "UNSUPPORTED", "this server issues no bearer tokens")
			return
		}
		var (
			p       Principal
			claimed string
			err     error
			scope   string
		)
		switch r.Method {
		case http.MethodGet:
			p, claimed, err = a.resolve(r)
		case http.MethodPost:
			r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
			if err := r.ParseForm(); err != nil {
				writeOAuthError(w, "invalid_request", "cannot read the form: "+err.Error())
				return
			}
			if gt := r.PostForm.Get("grant_type"); gt != "password" {
				writeOAuthError(w, "unsupported_grant_type", fmt.Sprintf("grant_type %q is not supported: use password, or GET with Basic credentials", gt))
				return
			}
			user, pass := r.PostForm.Get("username"), r.PostForm.Get("password")
			claimed = claimedName(user, pass)
			p, err = a.login(r, user, pass)
			scope = r.PostForm.Get("scope")
		default:
			w.Header().Set("Allow", "GET, POST")
			WriteRegistryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "use GET or POST")
			return
		}
		if err != nil {
			a.fail(w, r, claimed, err, a.basicChallenge())
			return
		}
		issued := a.Issuer.now()
		tok, exp := a.Issuer.Issue(p)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(tokenResponse{Token: tok, AccessToken: tok, ExpiresIn: int64(exp.Sub(issued) / time.Second),
			IssuedAt: issued.UTC().Format(time.RFC3339), Scope: scope})
	})
}

func writeOAuthError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// DeniedError is the refusal of a request its principal lacks a grant for.
type DeniedError struct {
	Principal  string
	Role       Role
	Repository string
	Namespace  string
	// MountInto is the repository a refused blob mount from Repository
	// was for.
	MountInto string
	// Reason, when set, replaces the missing-role explanation.
	Reason string
}

func (e *DeniedError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%q may not access %s: %s", e.Principal, e.Repository, e.Reason)
	}
	verb := string(e.Role) + " in"
	switch e.Role {
	case RolePull:
		verb = "pull from"
	case RolePush:
		verb = "push to"
	}
	mount := ""
	if e.MountInto != "" {
		mount = " (to mount a blob into " + e.MountInto + ")"
	}
	return fmt.Sprintf("%q may not %s %s%s: needs the %s role on namespace %s", e.Principal, verb, e.Repository, mount, e.Role, e.Namespace)
}

// Authorize decides whether p may make registry request r: the API base,
// the token endpoint and the catalog need only authentication; reading a
// repository needs pull on its namespace, changing it push, and mounting a
// blob from another repository also pull on that one's namespace. Paths
// outside /v2/ are not registry requests and pass; unknown /v2/ routes
// need admin. A refusal is a *DeniedError.
func Authorize(p Principal, r *http.Request) error {
	path := r.URL.Path
	if !strings.HasPrefix(path, "/v2/") {
		return nil
	}
	rt, ok := imgref.ParseRoute(path)
	switch {
	case ok && (rt.Kind == imgref.RoutePing || rt.Kind == imgref.RouteCatalog):
		return nil
	case !ok:
		if p.Allows(RoleAdmin, AllNamespaces) {
			return nil
		}
		return &DeniedError{Principal: p.Name, Role: RoleAdmin, Repository: path, Namespace: AllNamespaces, Reason: "not a registry API route"}
	}
	repo := rt.Repository
	if !imgref.ValidRepository(repo) {
		return &DeniedError{Principal: p.Name, Repository: repo, Reason: "invalid repository name"}
	}
	role := RolePull
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		role = RolePush
	}
	ns := imgref.Namespace(repo)
	if !p.Allows(role, ns) {
		return &DeniedError{Principal: p.Name, Role: role, Repository: repo, Namespace: ns}
	}
	if r.Method == http.MethodPost && rt.Kind == imgref.RouteUpload {
		q := r.URL.Query()
		if from := q.Get("from"); q.Get("mount") != "" && from != "" {
			if !imgref.ValidRepository(from) {
				return &DeniedError{Principal: p.Name, Repository: from, MountInto: repo, Reason: "invalid repository name to mount from"}
			}
			if fns := imgref.Namespace(from); !p.Allows(RolePull, fns) {
				return &DeniedError{Principal: p.Name, Role: RolePull, Repository: from, Namespace: fns, MountInto: repo}
			}
		}
	}
	return nil
}

// AuthorizeMiddleware refuses, with 403 DENIED, every request the
// principal Middleware put in its context may not make (see Authorize).
func (a *Authenticator) AuthorizeMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			a.fail(w, r, "", ErrAuthRequired, a.bearerChallenge(r))
			return
		}
		err := Authorize(p, r)
		if err == nil {
			next.ServeHTTP(w, r)
			return
		}
		de, ok := err.(*DeniedError)
		if !ok {
			de = &DeniedError{Principal: p.Name, Reason: err.Error()}
		}
		if a.OnDenied != nil {
			a.OnDenied(r, p, de)
		}
		msg := de.Error()
		if p.Kind == KindAnonymous {
			msg += "; log in first: drydock login " + r.Host
		}
		WriteRegistryError(w, http.StatusForbidden, "DENIED", msg)
	})
}

// Require serves next only to principals holding role on every namespace
// (a global role: metrics, admin): without credentials 401 (as
// Middleware), without the role 403 DENIED, told to OnDenied.
func (a *Authenticator) Require(role Role, next http.Handler) http.Handler {
	return a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if ok && p.Allows(role, AllNamespaces) {
			next.ServeHTTP(w, r)
			return
		}
		de := &DeniedError{Principal: p.Name, Role: role, Repository: r.URL.Path, Namespace: AllNamespaces,
			Reason: fmt.Sprintf("needs the %s role (e.g. drydock token create NAME --role %s)", role, role)}
		if a.OnDenied != nil {
			a.OnDenied(r, p, de)
		}
		msg := de.Error()
		if p.Kind == KindAnonymous {
			msg += "; log in first: drydock login " + r.Host
		}
		WriteRegistryError(w, http.StatusForbidden, "DENIED", msg)
	}))
}
