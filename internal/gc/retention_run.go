package gc

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/registry"
)

// retain applies the retention policies: it plans, then (unless dryRun)
// deletes the tags the plan deletes, each only if it still points at the
// manifest the plan decided on. It returns the report and, for a dry run,
// the tags the collection should treat as deleted ("repo:tag").
func (s *Service) retain(ctx context.Context, dryRun bool, g Guards) (*RetentionReport, map[string]bool, error) {
	tags, err := s.retentionInputs(ctx)
	if err != nil {
		return nil, nil, err
	}
	rep := Plan(s.o.Now(), s.policies, tags, g)
	if dryRun {
		ignore := map[string]bool{}
		for _, d := range rep.Deleted {
			ignore[d.Repository+":"+d.Tag] = true
		}
		return rep, ignore, nil
	}
	planned := rep.Deleted
	rep.Deleted = []TagDecision{}
	for _, d := range planned {
		err := s.o.Registry.DeleteTag(ctx, d.Repository, d.Tag, digest.Digest(d.Digest))
		switch {
		case err == nil:
			rep.Deleted = append(rep.Deleted, d)
			if err := s.activity.forget(ctx, d.Repository, d.Tag); err != nil {
				s.o.Log.Warn("retention: forgetting a deleted tag's push", "err", err)
			}
			s.auditTag(ctx, d)
		case errors.Is(err, registry.ErrTagMoved), errors.Is(err, registry.ErrNotFound):
			d.Delete, d.Reason = false, "not deleted: "+err.Error()
			rep.Skipped = append(rep.Skipped, d)
		default:
			s.o.Metrics.RetentionDeleted(len(rep.Deleted))
			return rep, nil, err
		}
	}
	s.o.Metrics.RetentionDeleted(len(rep.Deleted))
	return rep, nil, nil
}

func (s *Service) auditTag(ctx context.Context, d TagDecision) {
	if s.o.Audit == nil {
		return
	}
	detail, _ := audit.Detail(map[string]any{"reason": d.Reason, "retention": true})
	if _, err := s.o.Audit.Record(context.WithoutCancel(ctx), audit.Entry{Actor: ActorGC, Action: audit.ActionDelete,
		Repository: d.Repository, Reference: d.Tag, Digest: d.Digest, Outcome: audit.OutcomeOK, Detail: detail}); err != nil {
		s.o.Log.Error("audit: recording a retention deletion failed", "err", err)
	}
}

// retentionInputs reads every tag of the repositories a policy matches,
// with its manifest's lineage and children and its push and pull times.
func (s *Service) retentionInputs(ctx context.Context) ([]TagInfo, error) {
	repos, err := s.o.Registry.Repositories(ctx)
	if err != nil {
		return nil, err
	}
	pushes, err := s.activity.pushTimes(ctx)
	if err != nil {
		return nil, err
	}
	pulls, err := s.activity.pullTimes(ctx)
	if err != nil {
		return nil, err
	}
	var out []TagInfo
	for _, repo := range repos {
		if policyFor(s.policies, repo) == nil {
			continue
		}
		tags, err := s.o.Registry.Tags(ctx, repo)
		if errors.Is(err, registry.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, tag := range tags {
			desc, body, err := s.o.Registry.Manifest(ctx, repo, tag)
			if errors.Is(err, registry.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, fmt.Errorf("reading %s:%s: %w", repo, tag, err)
			}
			ti := TagInfo{Repository: repo, Tag: tag, Digest: desc.Digest, PulledAt: pulls[imageOf(repo)+"@"+desc.Digest.String()]}
			ti.Base, ti.Children = annotations(body)
			if at, ok := pushes[repo+":"+tag]; ok {
				ti.PushedAt = at
			} else if ti.PushedAt, err = s.o.Registry.TagWritten(ctx, repo, tag); err != nil {
				// Unknown: count it as pushed now, which keeps it.
				ti.PushedAt = s.o.Now()
			}
			out = append(out, ti)
		}
	}
	return out, nil
}
