package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/metrics"
)

// liveNamespace is the namespace clusters pull from. Content enters it
// only by promotion of a digest whose verdict passed (the gate), which
// writes in process, never through the HTTP API: every API write to it is
// refused.
const liveNamespace = "live/"

// liveRefusal is the message registry clients (docker, podman, skopeo,
// crane) show their user.
const liveRefusal = "live/ is write-protected: content enters live/ only by promotion of a digest whose verdict passed " +
	"(drydock promote quarantine/NAME:TAG); push to quarantine/ instead. This attempt was recorded in the audit log."

// guardLive refuses every request that would change live/: manifest and
// tag pushes and deletes, blob uploads and mounts, blob deletes. Reads
// pass. Each refusal is an OCI DENIED error and an audit entry.
func guardLive(log *slog.Logger, audits *audit.Log, pub gatekeeper.Publisher, m *metrics.Gate, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repo, rest := auth.RepoOf(r.URL.Path)
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
		m.LiveWriteRefused()
		if pub != nil {
			if err := pub.Publish(events.Event{Type: events.TypeBypassRefused, Subject: repo, Data: map[string]any{
				"kind": "write", "actor": actor, "method": r.Method, "repository": repo, "reference": ref, "remote": r.RemoteAddr}}); err != nil {
				log.Warn("event not published", "type", events.TypeBypassRefused, "err", err)
			}
		}
		log.Warn("refused a write to live/", "actor", actor, "method", r.Method, "repository", repo, "path", r.URL.Path)
		auth.WriteRegistryError(w, http.StatusForbidden, "DENIED", liveRefusal)
	})
}
