package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
)

// liveNamespace is the namespace clusters pull from. Content enters it
// only by promotion of a digest whose verdict passed (the gate); until
// promotion is wired into the server, every write to it is refused.
const liveNamespace = "live/"

// liveRefusal is the message registry clients (docker, podman, skopeo,
// crane) show their user.
const liveRefusal = "live/ is write-protected: content enters live/ only by promotion of a digest whose verdict passed " +
	"(drydock promote quarantine/NAME:TAG); push to quarantine/ instead. This attempt was recorded in the audit log."

// repoOf returns the repository of a /v2/ API path and what follows it
// ("manifests/REF", "blobs/uploads/...", "tags/list"...), or "" when the
// path is not a repository route.
func repoOf(p string) (repo, rest string) {
	p = strings.TrimPrefix(p, "/v2/")
	for _, kind := range []string{"/manifests/", "/blobs/", "/tags/", "/referrers/"} {
		if i := strings.LastIndex(p, kind); i > 0 {
			return p[:i], p[i+1:]
		}
	}
	return "", ""
}

// guardLive refuses every request that would change live/: manifest and
// tag pushes and deletes, blob uploads and mounts, blob deletes. Reads
// pass. Each refusal is an OCI DENIED error and an audit entry.
func guardLive(log *slog.Logger, audits *audit.Log, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repo, rest := repoOf(r.URL.Path)
		if !strings.HasPrefix(repo, liveNamespace) || r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		ref := ""
		if after, ok := strings.CutPrefix(rest, "manifests/"); ok {
			ref = after
		}
		detail, _ := audit.Detail(map[string]any{"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery, "remote": r.RemoteAddr})
		actor := auth.UserFrom(r.Context())
		if audits != nil {
			if _, err := audits.Record(context.WithoutCancel(r.Context()), audit.Entry{
				Actor: actor, Action: audit.ActionBypassRefused, Repository: repo, Reference: ref,
				Outcome: audit.OutcomeRefused, Detail: detail,
			}); err != nil {
				log.Error("audit: recording a refused live/ write failed", "err", err)
			}
		}
		log.Warn("refused a write to live/", "actor", actor, "method", r.Method, "repository", repo, "path", r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"errors": []map[string]string{{"code": "DENIED", "message": liveRefusal}},
		})
	})
}
