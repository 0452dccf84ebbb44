// Package auth authenticates registry clients. This first form is HTTP basic
// authentication against an htpasswd file of bcrypt hashes, the format
// `htpasswd -B` writes and distribution's htpasswd access controller reads,
// so docker/podman/skopeo/crane logins work unchanged.
package auth

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// maxHtpasswdSize bounds the htpasswd file.
const maxHtpasswdSize = 8 << 20

// Htpasswd is a set of users with bcrypt password hashes.
type Htpasswd struct {
	// OnFailure, when set, is told about every request whose credentials
	// were refused (user is the name it claimed).
	OnFailure func(r *http.Request, user string)

	users map[string][]byte

	mu sync.Mutex
	// verified caches sha256(user, password) of recently verified logins,
	// so that bcrypt's deliberate slowness is paid once per client and not
	// on every blob request.
	verified map[[32]byte]struct{}
}

// LoadHtpasswd reads an htpasswd file.
func LoadHtpasswd(path string) (*Htpasswd, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open htpasswd file: %w", err)
	}
	defer f.Close()
	h, err := ParseHtpasswd(io.LimitReader(f, maxHtpasswdSize))
	if err != nil {
		return nil, fmt.Errorf("htpasswd file %s: %w", path, err)
	}
	return h, nil
}

// ParseHtpasswd reads "user:hash" lines; blank lines and # comments are
// skipped. Only bcrypt hashes are accepted: the others htpasswd can write
// (MD5, SHA1, crypt) are too weak to store passwords with.
func ParseHtpasswd(r io.Reader) (*Htpasswd, error) {
	h := &Htpasswd{users: map[string][]byte{}, verified: map[[32]byte]struct{}{}}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("line %d: want user:bcrypt-hash", line)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("line %d: user %q: not a bcrypt hash (create entries with htpasswd -B): %w", line, user, err)
		}
		if _, dup := h.users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q listed twice", line, user)
		}
		h.users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return h, nil
}

// Verify reports whether password is user's password.
func (h *Htpasswd) Verify(user, password string) bool {
	key := sha256.Sum256([]byte(user + "\x00" + password))
	h.mu.Lock()
	_, ok := h.verified[key]
	h.mu.Unlock()
	if ok {
		return true
	}
	hash, known := h.users[user]
	if !known {
		// Spend the same time as for a known user, so that timing does not
		// tell which user names exist.
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	h.mu.Lock()
	if len(h.verified) > 1024 {
		clear(h.verified)
	}
	h.verified[key] = struct{}{}
	h.mu.Unlock()
	return true
}

// dummyHash is the bcrypt hash of a random string at the default cost.
var dummyHash = []byte("$2a$10$LNxqi8E0eaEv8MXi3CSeDeZ88OnyIKcIoHaAIldiQbS9Cuh2LSvf.")

// Middleware requires valid basic-auth credentials for every request that
// protect selects (e.g. the /v2/ registry API); other requests pass through.
// Failures get 401 with a WWW-Authenticate challenge and a registry-style
// JSON error, as the distribution spec's clients expect.
func (h *Htpasswd) Middleware(realm string, protect func(*http.Request) bool, next http.Handler) http.Handler {
	challenge := fmt.Sprintf("Basic realm=%q", realm)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !protect(r) {
			next.ServeHTTP(w, r)
			return
		}
		user, pass, ok := r.BasicAuth()
		if ok && h.Verify(user, pass) {
			next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), user)))
			return
		}
		msg := "authentication required"
		if ok {
			msg = "invalid username or password"
			if h.OnFailure != nil {
				h.OnFailure(r, user)
			}
		}
		w.Header().Set("WWW-Authenticate", challenge)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": msg}},
		})
	})
}

type userKey struct{}

// WithUser returns ctx carrying the authenticated user name.
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

// UserFrom returns the authenticated user of a request context, or
// "anonymous".
func UserFrom(ctx context.Context) string {
	if u, ok := ctx.Value(userKey{}).(string); ok && u != "" {
		return u
	}
	return "anonymous"
}
