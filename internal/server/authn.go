package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/imgref"
)

// initialPasswordFile is where the first start writes the generated admin
// password (DATA/auth/initial-admin-password, mode 0600).
const initialPasswordFile = "initial-admin-password"

// openAuth opens the user and token store and builds the authenticator:
// users and API tokens from DATA/auth, the optional htpasswd file,
// anonymous grants from the config, the failed-login throttle. Denied
// requests go to the audit log; refused logins too, a burst of them as one
// record with a count (the returned FailureBursts, to be swept and
// flushed).
func openAuth(ctx context.Context, cfg config.Config, dbs *database.Opener, log *slog.Logger, audits *audit.Log, now func() time.Time) (*auth.Authenticator, *auth.Store, *auth.FailureBursts, error) {
	var sopts []auth.StoreOption
	if now != nil {
		sopts = append(sopts, auth.WithClock(now))
	}
	st, err := auth.Open(ctx, dbs, sopts...)
	if err != nil {
		return nil, nil, nil, err
	}
	fail := func(err error) (*auth.Authenticator, *auth.Store, *auth.FailureBursts, error) {
		st.Close()
		return nil, nil, nil, err
	}
	anon, err := auth.ParseGrants(cfg.Auth.Anonymous)
	if err != nil {
		return fail(fmt.Errorf("auth.anonymous: %w", err))
	}
	htGrants, err := auth.ParseGrants(cfg.Auth.HtpasswdRoles)
	if err != nil {
		return fail(fmt.Errorf("auth.htpasswdRoles: %w", err))
	}
	key, err := st.SigningKey(ctx)
	if err != nil {
		return fail(err)
	}
	a := &auth.Authenticator{
		Store: st, Issuer: auth.NewIssuer(key, time.Duration(cfg.Auth.TokenTTL), now),
		HtpasswdGrants: htGrants, Anonymous: anon, Realm: cfg.Auth.Realm, Service: "drydock",
	}
	if cfg.Auth.Htpasswd != "" {
		if a.Htpasswd, err = auth.LoadHtpasswd(cfg.Auth.Htpasswd); err != nil {
			return fail(err)
		}
	}
	record := func(r *http.Request, e audit.Entry, detail map[string]any) {
		detail["method"], detail["path"], detail["remote"] = r.Method, r.URL.Path, r.RemoteAddr
		e.Detail, _ = audit.Detail(detail)
		if _, err := audits.Record(context.WithoutCancel(r.Context()), e); err != nil {
			log.Error("audit: recording a refusal failed", "action", e.Action, "err", err)
		}
	}
	if t := cfg.Auth.Throttle; !t.Off {
		// Replicas share their counts in PostgreSQL; one server keeps
		// them in memory, where they cost no write per login.
		user := auth.ThrottleLimit{Failures: t.User.Failures, Per: time.Duration(t.User.Per)}
		addr := auth.ThrottleLimit{Failures: t.Address.Failures, Per: time.Duration(t.Address.Per)}
		var th auth.Throttle
		if dbs.Driver() == database.Postgres {
			th, err = st.SQLThrottle(user, addr)
		} else {
			th, err = auth.NewMemoryThrottle(user, addr, now)
		}
		if err != nil {
			return fail(fmt.Errorf("auth.throttle: %w", err))
		}
		a.Throttle = th
	}
	bursts := auth.NewFailureBursts(time.Duration(cfg.Auth.Throttle.AuditWindow), now, func(ctx context.Context, b auth.Burst) {
		detail, _ := audit.Detail(map[string]any{"reason": b.Reason, "count": b.Count, "throttled": b.Throttled,
			"first": b.First.UTC().Format(time.RFC3339Nano), "last": b.Last.UTC().Format(time.RFC3339Nano),
			"remote": b.Address, "method": b.Method, "path": b.Path})
		e := audit.Entry{Actor: b.Name, Action: audit.ActionLoginFailed, Outcome: audit.OutcomeRefused, Detail: detail}
		if _, err := audits.Record(context.WithoutCancel(ctx), e); err != nil {
			log.Error("audit: recording refused logins failed", "actor", b.Name, "count", b.Count, "err", err)
		}
	})
	a.OnFailure = func(r *http.Request, name, reason string) {
		bursts.Refused(r.Context(), r, name, reason, false)
	}
	a.OnThrottled = func(r *http.Request, name string, w *auth.Wait) {
		bursts.Refused(r.Context(), r, name, (&auth.ThrottledError{Wait: *w}).Error(), true)
	}
	a.OnDenied = func(r *http.Request, p auth.Principal, de *auth.DeniedError) {
		rt, _ := imgref.ParseRoute(r.URL.Path)
		repo := rt.Repository
		record(r, audit.Entry{Actor: p.Name, Action: audit.ActionDenied, Repository: repo, Outcome: audit.OutcomeRefused}, map[string]any{"reason": de.Error()})
	}
	a.OnError = func(r *http.Request, err error) {
		log.Error("authentication failed on the server side", "path", r.URL.Path, "err", err)
	}
	if err := bootstrapAdmin(ctx, cfg, log, st, audits, anon); err != nil {
		return fail(err)
	}
	return a, st, bursts, nil
}

// sweepLogins writes, as requests come, the records of login-failure
// bursts that are over (FailureBursts.Sweep looks at most twice a window).
func sweepLogins(b *auth.FailureBursts, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		b.Sweep(context.WithoutCancel(r.Context()))
	})
}

// bootstrapAdmin creates the first user, "admin", with a random password
// written to DATA/auth/initial-admin-password, when there is no user, no
// htpasswd file and no anonymous access: otherwise nobody could log in.
func bootstrapAdmin(ctx context.Context, cfg config.Config, log *slog.Logger, st *auth.Store, audits *audit.Log, anon auth.Grants) error {
	n, err := st.CountUsers(ctx)
	if err != nil || n > 0 || cfg.Auth.Htpasswd != "" || len(anon) > 0 {
		return err
	}
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	pw := base64.RawURLEncoding.EncodeToString(b[:])
	path := filepath.Join(filepath.Dir(auth.DefaultPath(cfg.Data)), initialPasswordFile)
	// The password reaches its file only if this process created the user:
	// replicas starting together on an empty database race to create it,
	// and only the winner's password is the admin's.
	tmp := path + ".tmp"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing the initial admin password: %w", err)
	}
	if err := os.WriteFile(tmp, []byte(pw+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing the initial admin password: %w", err)
	}
	if err := st.AddUser(ctx, "admin", pw, auth.Grants{{Role: auth.RoleAdmin, Namespace: auth.AllNamespaces}}); err != nil {
		_ = os.Remove(tmp)
		if errors.Is(err, auth.ErrExists) {
			log.Info("another drydock sharing this database created the initial admin user; its password is in that server's data directory")
			return nil
		}
		return fmt.Errorf("creating the initial admin user: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing the initial admin password (the admin user exists: set its password with \"drydock user passwd admin\"): %w", err)
	}
	detail, _ := audit.Detail(map[string]any{"op": "add", "roles": []string{"admin"}, "bootstrap": true})
	if _, err := audits.Record(ctx, audit.Entry{Actor: "drydock:serve", Action: audit.ActionUserChange, Reference: "admin", Outcome: audit.OutcomeOK, Detail: detail}); err != nil {
		return err
	}
	log.Warn("no users yet: created user \"admin\" with a generated password in "+path+
		"; log in with \"docker login -u admin\" and change it with \"drydock user passwd admin\"", "password_file", path)
	return nil
}

// filterCatalog keeps, in /v2/_catalog answers, only the repositories the
// principal may pull.
func filterCatalog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.PrincipalFrom(r.Context())
		if r.URL.Path != "/v2/_catalog" || r.Method != http.MethodGet || !ok || p.Allows(auth.RolePull, auth.AllNamespaces) {
			next.ServeHTTP(w, r)
			return
		}
		rec := &bufferedResponse{header: http.Header{}, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		var body struct {
			Repositories []string `json:"repositories"`
		}
		if rec.code != http.StatusOK || json.Unmarshal(rec.body.Bytes(), &body) != nil {
			copyResponse(w, rec)
			return
		}
		body.Repositories = slices.DeleteFunc(body.Repositories, func(repo string) bool {
			return !p.Allows(auth.RolePull, imgref.Namespace(repo))
		})
		if body.Repositories == nil {
			body.Repositories = []string{}
		}
		out, _ := json.Marshal(body)
		rec.body = *bytes.NewBuffer(out)
		rec.header.Set("Content-Length", strconv.Itoa(len(out)))
		copyResponse(w, rec)
	})
}

type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) WriteHeader(code int)        { b.code = code }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }

func copyResponse(w http.ResponseWriter, b *bufferedResponse) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.code)
	_, _ = w.Write(b.body.Bytes())
}

// apiAuthorizer checks a principal's role on a repository's namespace for
// the JSON API.
func apiAuthorizer(r *http.Request, role, repo string) error {
	p, ok := auth.PrincipalFrom(r.Context())
	if !ok {
		return errors.New("authentication required")
	}
	ns := imgref.Namespace(repo)
	if !p.Allows(auth.Role(role), ns) {
		return &auth.DeniedError{Principal: p.Name, Role: auth.Role(role), Repository: repo, Namespace: ns}
	}
	return nil
}
