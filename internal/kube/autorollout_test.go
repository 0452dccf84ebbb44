package kube

import (
	"context"
	"log/slog"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/kube/kubetest"
)

// TestAutoRollout: a promotion of a patch tag a workflow wants rolled out
// queues one job on the real job queue, which moves the workloads to the
// patch by digest; a promotion no workflow asks for queues nothing; and
// without kube.registry the job is cancelled with the reason, not retried.
func TestAutoRollout(t *testing.T) {
	f := newRolloutFixture(t)
	img := f.h + "/live/nginx:1.27.1"
	cron := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "a"},
		Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: podSpec(img)}}}}}
	c := fake.NewClientset(cron)
	q, err := jobs.Open(t.Context(), dbtest.SQLite(t).Opener(t), jobs.WithPollInterval(50*time.Millisecond), jobs.WithQueue("workflow", 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	var asked []string
	ar := &AutoRollout{
		Service: &Service{Planner: f.planner, Client: func() (kubernetes.Interface, error) { return c, nil }, Log: slog.Default()},
		Workflows: func(_ context.Context, repo, tag string) ([]string, error) {
			asked = append(asked, repo+":"+tag)
			if repo == "live/nginx" && tag == "1.27.1-1" {
				return []string{"nightly-patch"}, nil
			}
			return nil, nil
		},
		Queue: q, QueueName: "workflow", Log: slog.Default(),
	}
	if err := ar.Register(); err != nil {
		t.Fatal(err)
	}
	if err := q.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
	})
	ctx := t.Context()
	for _, p := range [][2]string{{"live/nginx:1.27.1", f.orig}, {"live/nginx", f.orig}, {"quarantine/nginx:1.27.1-1", f.patched}} {
		if err := ar.Promoted(ctx, p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if js, err := q.Jobs(ctx, jobs.Filter{Kinds: []string{RolloutJob{}.Kind()}}); err != nil || len(js) != 0 {
		t.Fatalf("promotions no workflow asked for queued %d rollouts (%v)", len(js), err)
	}
	if err := ar.Promoted(ctx, "live/nginx:1.27.1-1", f.patched); err != nil {
		t.Fatal(err)
	}
	pinned := f.h + "/live/nginx@" + f.patched
	if err := kubetest.Eventually(ctx, 30*time.Second, func() (bool, error) {
		cj, err := c.BatchV1().CronJobs("a").Get(ctx, "nightly", metav1.GetOptions{})
		return err == nil && cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image == pinned, err
	}); err != nil {
		t.Fatalf("the CronJob was not moved to %s: %v", pinned, err)
	}
	if len(asked) != 2 || asked[1] != "live/nginx:1.27.1-1" {
		t.Errorf("workflows asked about %v, want live/nginx:1.27.1 and live/nginx:1.27.1-1 only", asked)
	}

	// Without kube.registry (no planner): cancelled with the reason.
	ar.Service.Planner = nil
	f2 := f.reg.push("live/nginx", "1.27.1-2", 3)
	if err := ar.Promoted(ctx, "live/nginx:1.27.1-1", f2); err != nil {
		t.Fatal(err)
	}
	if err := kubetest.Eventually(ctx, 30*time.Second, func() (bool, error) {
		js, err := q.Jobs(ctx, jobs.Filter{Kinds: []string{RolloutJob{}.Kind()}, States: []jobs.State{jobs.StateCancelled}})
		return err == nil && len(js) == 1, err
	}); err != nil {
		js, _ := q.Jobs(ctx, jobs.Filter{Kinds: []string{RolloutJob{}.Kind()}})
		t.Fatalf("the rollout without kube.registry was not cancelled: %v %+v", err, js)
	}
}
