package server

import (
	"context"
	"log/slog"
	"net/http"
	"path"
	"strings"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/metrics"
)

// liveRefusal is the message registry clients (docker, podman, skopeo,
// crane) show their user.
const liveRefusal = "live/ is write-protected: content enters live/ only by promotion of a digest whose verdict passed " +
	"(drydock promote quarantine/NAME:TAG); push to quarantine/ instead. This attempt was recorded in the audit log."

// guardLive refuses every request that would change the live namespace
// (the repository "live" itself and every "live/..." repository):
// manifest and tag pushes and deletes, blob uploads and mounts, blob
// deletes. Content enters it only by promotion of a digest whose verdict
// passed, which the gate writes in process, never through this handler.
// Only GET and HEAD pass. Each refusal is an OCI DENIED error, an audit
// entry, a metric and an event.
func guardLive(log *slog.Logger, audits *audit.Log, pub gatekeeper.Publisher, m *metrics.Gate, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repo, ref, live := liveWrite(r)
		if !live {
			next.ServeHTTP(w, r)
			return
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

// liveWrite reports whether r would change the live namespace, and the
// repository and reference it names. Every method but GET and HEAD
// counts as a write. The path is read as the registry routes it
// (imgref.ParseRoute, the same rule as the registry and the roles) and,
// in case a path the registry refuses today is accepted tomorrow, also
// cleaned of dot segments and double slashes and with its first
// component compared without case: any of these naming live is refused.
func liveWrite(r *http.Request) (repo, ref string, live bool) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return "", "", false
	}
	isLive := func(repo string) bool {
		return strings.EqualFold(imgref.Namespace(strings.TrimLeft(repo, "/")), imgref.Live)
	}
	for _, p := range []string{path.Clean(r.URL.Path), r.URL.Path} {
		if rt, ok := imgref.ParseRoute(p); ok && isLive(rt.Repository) {
			if rt.Kind == imgref.RouteManifest {
				ref = rt.Ref
			}
			return rt.Repository, ref, true
		}
		if rest, ok := strings.CutPrefix(p, "/v2/"); ok && isLive(rest) {
			return strings.TrimLeft(rest, "/"), "", true
		}
	}
	return "", "", false
}
