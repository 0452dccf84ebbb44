package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/jobs"
)

// RolloutJob is a rollout a promotion queued: the gate promoted Tag (a
// patch tag) of Repository, and Workflows asked for their patches to be
// rolled out.
type RolloutJob struct {
	Repository string   `json:"repository"`
	Tag        string   `json:"tag"`
	Digest     string   `json:"digest"`
	Workflows  []string `json:"workflows"`
}

// Kind implements jobs.JobArgs.
func (RolloutJob) Kind() string { return "kube.rollout" }

// AutoRollout rolls out, on the server's own cluster client, the patch
// tags that workflows with the rollout option wrote, once the gate has
// promoted them into live/. Each promotion queues one durable job on the
// job queue (a restart or another replica finishes it), and the job runs
// Service.Rollout: every workload running a tag of the repository moves to
// the newest passing patch tag of the tag it runs, by digest, and is
// rolled back when its rollout fails. The outcome is audited and sent as a
// rollout event like any rollout.
type AutoRollout struct {
	Service *Service
	// Workflows names the workflows that want repo:tag rolled out
	// (workflow.Engine.RolloutFor).
	Workflows func(ctx context.Context, repo, tag string) ([]string, error)
	Queue     *jobs.Queue
	// QueueName is the queue the jobs run in (one apart from scans: a
	// rollout waits minutes).
	QueueName string
	// Timeout bounds each rollout's wait (0: RolloutRequest's default).
	Timeout time.Duration
	Log     *slog.Logger
}

// Register installs the job handler; call it before the queue starts.
func (a *AutoRollout) Register() error { return jobs.Register(a.Queue, a.run) }

// Promoted is told of each promotion into live/: target is
// "live/NAME:TAG" (no tag: nothing to roll out) and digest what it names.
// It queues a rollout when a workflow asks for one.
func (a *AutoRollout) Promoted(ctx context.Context, target, digest string) error {
	repo, tag, ok := strings.Cut(target, ":")
	if !ok || !imgref.IsLive(repo) {
		return nil
	}
	names, err := a.Workflows(ctx, repo, tag)
	if err != nil {
		return fmt.Errorf("auto rollout of %s: %w", target, err)
	}
	if len(names) == 0 {
		return nil
	}
	id, err := a.Queue.Enqueue(ctx, RolloutJob{Repository: repo, Tag: tag, Digest: digest, Workflows: names},
		jobs.EnqueueOptions{Queue: a.QueueName, UniqueKey: repo + "@" + digest})
	if err != nil {
		return fmt.Errorf("auto rollout of %s: queueing: %w", target, err)
	}
	a.Log.Info("rollout queued", "repository", repo, "tag", tag, "digest", digest, "workflows", names, "job", id)
	return nil
}

func (a *AutoRollout) run(ctx context.Context, j RolloutJob) error {
	log := a.Log.With("repository", j.Repository, "tag", j.Tag, "workflows", j.Workflows)
	res, err := a.Service.Rollout(ctx, "workflow:"+strings.Join(j.Workflows, ","), RolloutRequest{Repository: j.Repository, Timeout: a.Timeout},
		func(p Progress) { log.Info("rollout", "workload", p.Workload, "message", p.Message, "done", p.Done) })
	switch {
	case errors.Is(err, ErrNotConfigured), errors.Is(err, ErrInvalidPlan):
		log.Error("rollout not possible", "err", err)
		return jobs.Permanent(err)
	case err != nil:
		return err // the cluster unreachable: retried
	case res.Failed():
		// Recorded (audit, event); not retried: it would roll the same
		// image out again.
		log.Warn("rollout failed and was rolled back", "workloads", len(res.Workloads))
	default:
		log.Info("rollout done", "workloads", len(res.Workloads))
	}
	return nil
}
