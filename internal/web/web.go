// Package web is drydock's web UI, served under /ui/ on the server's port.
//
// Pages are rendered on the server with html/template (which escapes every
// value for its context) from embedded templates and one embedded style
// sheet; there is no JavaScript, so reading works in any browser and every
// view is a bookmarkable URL with its filters in the query string.
//
// The UI is a client of the JSON API: each page calls the API's handler
// in-process with the signed-in user as the request's principal, so the
// API's authorization decides what the UI shows and does, and the
// numbers on a page are the API's. Sign-in opens a session in the auth
// store (auth.Store.NewSession): the cookie holds a random secret and is
// HttpOnly, SameSite=Lax, and Secure when the request came over HTTPS
// (directly or through a proxy's X-Forwarded-Proto). Every state-changing
// form carries the session's CSRF token; the sign-in form a double-submit
// token of its own.
package web

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/auth"
)

// Prefix is where the UI is mounted.
const Prefix = "/ui/"

// Cookie names.
const (
	sessionCookie = "drydock_session"
	loginCookie   = "drydock_login"
)

// DefaultSessionTTL is how long a sign-in lasts.
const DefaultSessionTTL = 12 * time.Hour

// maxForm bounds a form body.
const maxForm = 64 << 10

//go:embed templates/*.html static/*
var assets embed.FS

// Options configure the UI.
type Options struct {
	// Auth checks sign-in forms (throttled and audited like every login)
	// and keeps sessions in its Store.
	Auth *auth.Authenticator
	// API is the JSON API's handler, without the authentication
	// middleware: the UI calls it with the session's principal.
	API http.Handler
	// SessionTTL is how long a session lasts (DefaultSessionTTL when 0).
	SessionTTL time.Duration
	Log        *slog.Logger
}

// UI serves the web UI.
type UI struct {
	o     Options
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// New builds the UI's handler, to be mounted at Prefix.
func New(o Options) (*UI, error) {
	if o.Auth == nil || o.Auth.Store == nil || o.API == nil {
		return nil, errors.New("web UI: the authenticator, its store and the API handler are required")
	}
	o.SessionTTL = cmp.Or(o.SessionTTL, DefaultSessionTTL)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	u := &UI{o: o, pages: pages, mux: http.NewServeMux()}
	static, _ := fs.Sub(assets, "static")
	u.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", staticHandler(static)))
	u.mux.HandleFunc("GET /ui/login", u.loginPage)
	u.mux.HandleFunc("POST /ui/login", u.login)
	u.mux.Handle("POST /ui/logout", u.session(u.logout))
	u.mux.Handle("GET /ui/{$}", u.session(u.dashboard))
	u.mux.Handle("GET /ui/images", u.session(u.images))
	u.mux.Handle("GET /ui/image", u.session(u.image))
	u.mux.Handle("GET /ui/artifact", u.session(u.artifact))
	u.mux.Handle("GET /ui/audit", u.session(u.audit))
	u.mux.Handle("GET /ui/cves", u.session(u.findCVE))
	u.mux.Handle("GET /ui/cves/{id}", u.session(u.cve))
	u.mux.Handle("GET /ui/packages/{name}", u.session(u.pkg))
	u.mux.Handle("POST /ui/exceptions", u.session(u.createException))
	u.mux.Handle("POST /ui/exceptions/revoke", u.session(u.revokeException))
	u.policyRoutes()
	u.workflowRoutes()
	u.promoteRoutes()
	u.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		u.render(w, r, http.StatusNotFound, "error", &page{Title: "Not found"}, map[string]any{"Message": "There is no page at " + r.URL.Path + "."})
	})
	return u, nil
}

// ServeHTTP implements http.Handler, with the security headers of every
// response: no scripts at all, no framing, no sniffing, no referrer
// outside the server.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	u.mux.ServeHTTP(w, r)
}

func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// secure reports whether the request came over HTTPS.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, expires time.Time) {
	c := &http.Cookie{Name: name, Value: value, Path: "/ui/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure(r)}
	if value == "" {
		c.MaxAge = -1
	} else if !expires.IsZero() {
		c.Expires = expires
	}
	http.SetCookie(w, c)
}

// signedIn is what the session middleware puts in a request's context.
type signedIn struct {
	sess *auth.Session
	p    auth.Principal
}

type signedInKey struct{}

func current(r *http.Request) signedIn {
	s, _ := r.Context().Value(signedInKey{}).(signedIn)
	return s
}

// session runs next for a request with a valid session (its principal in
// the context, as the API's authentication would put it), checking the
// CSRF token of every POST; without one, it sends the browser to sign in
// and back.
func (u *UI) session(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		var s signedIn
		if err == nil {
			s.sess, s.p, err = u.o.Auth.Store.SessionPrincipal(r.Context(), c.Value)
		}
		if err != nil {
			if !errors.Is(err, auth.ErrNoSession) && !errors.Is(err, http.ErrNoCookie) {
				u.o.Log.Error("web UI: reading a session failed", "err", err)
				u.render(w, r, http.StatusInternalServerError, "error", &page{Title: "Error"}, map[string]any{"Message": "The session store could not be read; see the server log."})
				return
			}
			if c != nil {
				setCookie(w, r, sessionCookie, "", time.Time{})
			}
			if r.Method != http.MethodGet {
				http.Error(w, "Your session has ended: sign in again.", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
				return
			}
			if !s.sess.CheckCSRF(r.PostForm.Get("csrf")) {
				http.Error(w, "The form's CSRF token is missing or wrong: reload the page and try again.", http.StatusForbidden)
				return
			}
		}
		ctx := context.WithValue(auth.WithPrincipal(r.Context(), s.p), signedInKey{}, s)
		next(w, r.WithContext(ctx))
	})
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// safeNext is where to go after signing in: a path of the UI, never
// another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	u.showLogin(w, r, http.StatusOK, "")
}

func (u *UI) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	tok, err := randomToken()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	setCookie(w, r, loginCookie, tok, time.Time{})
	w.Header().Set("Cache-Control", "no-store")
	u.render(w, r, status, "login", &page{Title: "Sign in", CSRF: tok}, map[string]any{
		"Next": safeNext(r.FormValue("next")), "Error": msg, "User": r.PostFormValue("user")})
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf"))) != 1 || c.Value == "" {
		u.showLogin(w, r, http.StatusForbidden, "The sign-in form expired or came from elsewhere: try again.")
		return
	}
	user := r.PostForm.Get("user")
	p, err := u.o.Auth.Login(r, user, r.PostForm.Get("password"))
	if err != nil {
		var th *auth.ThrottledError
		switch {
		case errors.As(err, &th):
			w.Header().Set("Retry-After", strconv.FormatInt(max(1, int64(math.Ceil(th.RetryAfter.Seconds()))), 10))
			u.showLogin(w, r, http.StatusTooManyRequests, th.Error())
		case errors.Is(err, auth.ErrBadCredentials), errors.Is(err, auth.ErrUserDisabled):
			u.showLogin(w, r, http.StatusUnauthorized, "Wrong user name or password.")
		case errors.Is(err, auth.ErrTokenSignIn):
			u.showLogin(w, r, http.StatusUnauthorized, err.Error())
		default:
			u.o.Log.Error("web UI: sign-in failed on the server side", "user", user, "err", err)
			u.showLogin(w, r, http.StatusInternalServerError, "Sign-in failed on the server; see its log.")
		}
		return
	}
	sess, err := u.o.Auth.Store.NewSession(r.Context(), p.Name, u.o.SessionTTL)
	if err != nil {
		u.o.Log.Error("web UI: opening a session failed", "user", p.Name, "err", err)
		u.showLogin(w, r, http.StatusInternalServerError, "Sign-in failed on the server; see its log.")
		return
	}
	setCookie(w, r, loginCookie, "", time.Time{})
	setCookie(w, r, sessionCookie, sess.Secret, sess.ExpiresAt)
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := u.o.Auth.Store.EndSession(r.Context(), c.Value); err != nil {
			u.o.Log.Error("web UI: ending a session failed", "err", err)
		}
	}
	setCookie(w, r, sessionCookie, "", time.Time{})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
