package kube

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"k8s.io/client-go/kubernetes"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/metrics"
)

// Service is the Kubernetes side of one drydock server, as the JSON API
// and other services (workflows) call it. Parts the configuration leaves
// off answer ErrNotConfigured.
type Service struct {
	// Queries answers from the inventory (nil: kube.watch is off).
	Queries *Queries
	// Planner chooses rollout targets (nil: no kube.registry).
	Planner *Planner
	// Webhooks renders the webhook configurations (nil: the webhooks
	// are off).
	Webhooks func(mutating bool) (*WebhookManifests, error)
	// Client returns the server's own cluster client (kube.kubeconfig or
	// in-cluster credentials), for rollouts the server runs itself.
	Client func() (kubernetes.Interface, error)

	Audit   *audit.Log
	Events  Publisher
	Metrics *metrics.Kube
	Log     *slog.Logger
}

// Images lists the running images (see Queries.Images).
func (s *Service) Images(ctx context.Context, f Filter) (*ImagesReport, error) {
	if s.Queries == nil {
		return nil, fmt.Errorf("%w: the running-image inventory is off (set kube.watch: true)", ErrNotConfigured)
	}
	return s.Queries.Images(ctx, f)
}

// Affected lists the workloads exposed to a vulnerability (see
// Queries.Affected).
func (s *Service) Affected(ctx context.Context, id string, f Filter) (*AffectedReport, error) {
	if s.Queries == nil {
		return nil, fmt.Errorf("%w: the running-image inventory is off (set kube.watch: true)", ErrNotConfigured)
	}
	return s.Queries.Affected(ctx, id, f)
}

// WebhookConfigurations renders the webhook configurations to install.
func (s *Service) WebhookConfigurations(_ context.Context, mutating bool) (*WebhookManifests, error) {
	if s.Webhooks == nil {
		return nil, fmt.Errorf("%w: the admission webhooks are off (set kube.webhook.addr)", ErrNotConfigured)
	}
	return s.Webhooks(mutating)
}

// Plan chooses where a repository's images move (see Planner.Plan).
func (s *Service) Plan(ctx context.Context, req PlanRequest) (*Plan, error) {
	if s.Planner == nil {
		return nil, fmt.Errorf("%w: rollouts need kube.registry, the registry host clusters pull from", ErrNotConfigured)
	}
	return s.Planner.Plan(ctx, req)
}

// Rollout runs a rollout with the server's own cluster client and
// records it: what workflows call after a patched image is promoted.
// actor names who asked, for the audit log.
func (s *Service) Rollout(ctx context.Context, actor string, req RolloutRequest, progress func(Progress)) (*RolloutResult, error) {
	if s.Planner == nil {
		return nil, fmt.Errorf("%w: rollouts need kube.registry, the registry host clusters pull from", ErrNotConfigured)
	}
	if s.Client == nil {
		return nil, fmt.Errorf("%w: no cluster client (set kube.kubeconfig, or run drydock in the cluster)", ErrNotConfigured)
	}
	c, err := s.Client()
	if err != nil {
		return nil, err
	}
	res, err := Rollout(ctx, c, s, req, progress)
	if err != nil {
		return nil, err
	}
	s.RecordRollout(ctx, actor, res)
	return res, nil
}

// RecordRollout audits, announces and counts what a rollout did (one run
// by the CLI reports itself through the API).
func (s *Service) RecordRollout(ctx context.Context, actor string, res *RolloutResult) {
	if res == nil || res.Plan == nil || res.DryRun || len(res.Workloads) == 0 {
		return
	}
	outcome := audit.OutcomeOK
	if res.Failed() {
		outcome = audit.OutcomeError
	}
	for _, w := range res.Workloads {
		s.Metrics.Rollout(metricOutcome(w.State))
	}
	detail := map[string]any{"workloads": res.Workloads}
	to := ""
	for _, ip := range res.Plan.Images {
		if ip.Moves() {
			to = ip.ToTag
			break
		}
	}
	if s.Audit != nil {
		e := audit.Entry{Actor: actor, Action: audit.ActionRollout, Repository: res.Plan.Repository, Reference: to, Outcome: outcome}
		e.Detail, _ = audit.Detail(detail)
		if _, err := s.Audit.Record(context.WithoutCancel(ctx), e); err != nil && s.Log != nil {
			s.Log.Error("audit: recording a rollout failed", "repository", res.Plan.Repository, "err", err)
		}
	}
	if s.Events != nil {
		data := map[string]any{"repository": res.Plan.Repository, "to": to, "outcome": outcome, "workloads": res.Workloads, "actor": actor}
		if err := s.Events.Publish(events.Event{Type: events.TypeRollout, Subject: res.Plan.Repository, Data: data}); err != nil && s.Log != nil {
			s.Log.Warn("publishing a rollout", "repository", res.Plan.Repository, "err", err)
		}
	}
}

func metricOutcome(state string) string {
	switch state {
	case StateDone, StateUpdated:
		return "done"
	case StateRolledBack:
		return "rolled_back"
	}
	return "failed"
}

// LazyClient returns a Client function that builds the client once, on
// first use (a server that never rolls out never reads a kubeconfig).
func LazyClient(o ClientOptions) func() (kubernetes.Interface, error) {
	var (
		once sync.Once
		c    kubernetes.Interface
		err  error
	)
	return func() (kubernetes.Interface, error) {
		once.Do(func() { c, err = NewClient(o) })
		return c, err
	}
}
