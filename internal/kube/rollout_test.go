package kube

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drydock-project/drydock/internal/gate"
)

func deployment(ns, name string, images ...string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Generation: 1},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: podSpec(images...)}}}
}

type rolloutFixture struct {
	reg     *testRegistry
	planner *Planner
	orig    string
	patched string
	h       string
}

func newRolloutFixture(t *testing.T) *rolloutFixture {
	f := &rolloutFixture{reg: newTestRegistry(t)}
	v := &fakeVerdicts{}
	f.orig = f.reg.push("live/nginx", "1.27.1", 1)
	f.patched = f.reg.push("live/nginx", "1.27.1-1", 2)
	v.set(f.orig, gate.StatePass)
	v.set(f.patched, gate.StatePass)
	f.h = f.reg.host
	var err error
	if f.planner, err = NewPlanner([]string{f.h}, f.reg, v); err != nil {
		t.Fatal(err)
	}
	return f
}

type progressLog struct {
	mu    sync.Mutex
	lines []string
}

func (p *progressLog) add(pr Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, pr.Workload+": "+pr.Message)
}

func (p *progressLog) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// TestRolloutTimesOutAndRollsBack: with no controller (a fake clientset),
// nothing ever rolls out: the wait ends at the time-out and each workload
// gets its images back; a workload someone changed meanwhile is left
// alone.
func TestRolloutTimesOutAndRollsBack(t *testing.T) {
	f := newRolloutFixture(t)
	img := f.h + "/live/nginx:1.27.1"
	web := deployment("a", "web", img, "busybox")
	web.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: img}}
	api := deployment("b", "api", img)
	other := deployment("a", "other", "evil.io/live/nginx:1.27.1")
	cron := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "a"},
		Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: podSpec(img)}}}}}
	c := fake.NewClientset(web, api, other, cron)
	// Someone edits api's image while the rollout waits.
	var once sync.Once
	c.PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.GetAction).GetName() == "api" {
			once.Do(func() {
				go func() {
					d, _ := c.Tracker().Get(appsv1.SchemeGroupVersion.WithResource("deployments"), "b", "api")
					dd := d.(*appsv1.Deployment).DeepCopy()
					dd.Spec.Template.Spec.Containers[0].Image = f.h + "/live/nginx:hand-edited"
					_ = c.Tracker().Update(appsv1.SchemeGroupVersion.WithResource("deployments"), dd, "b")
				}()
			})
		}
		return false, nil, nil
	})
	var log progressLog
	res, err := Rollout(t.Context(), c, f.planner, RolloutRequest{Repository: "nginx", Timeout: 1500 * time.Millisecond}, log.add)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]WorkloadRollout{}
	for _, w := range res.Workloads {
		states[w.String()] = w
	}
	if len(res.Workloads) != 3 || !res.Failed() {
		t.Fatalf("workloads %+v", res.Workloads)
	}
	pinned := f.h + "/live/nginx@" + f.patched
	if w := states["Deployment a/web"]; w.State != StateRolledBack || len(w.Containers) != 2 || !strings.Contains(w.Message, "not rolled out within 1.5s") {
		t.Errorf("web: %+v", w)
	}
	if w := states["CronJob a/nightly"]; w.State != StateUpdated {
		t.Errorf("cronjob: %+v", w)
	}
	if w := states["Deployment b/api"]; w.State != StateFailed || !strings.Contains(w.Message, "rollback failed") {
		t.Errorf("api: %+v", w)
	}
	get := func(ns, name string) *appsv1.Deployment {
		d, err := c.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := get("a", "web"); d.Spec.Template.Spec.Containers[0].Image != img || d.Spec.Template.Spec.InitContainers[0].Image != img ||
		d.Spec.Template.Spec.Containers[1].Image != "busybox" || !strings.HasPrefix(d.Annotations[AnnotationChangeCause], "drydock rollback") {
		t.Errorf("web after the rollback: %+v %v", d.Spec.Template.Spec, d.Annotations)
	}
	if d := get("b", "api"); d.Spec.Template.Spec.Containers[0].Image != f.h+"/live/nginx:hand-edited" {
		t.Errorf("the rollback overwrote a change made meanwhile: %s", d.Spec.Template.Spec.Containers[0].Image)
	}
	if d := get("a", "other"); d.Spec.Template.Spec.Containers[0].Image != "evil.io/live/nginx:1.27.1" {
		t.Error("a workload of another registry was changed")
	}
	cj, _ := c.BatchV1().CronJobs("a").Get(context.Background(), "nightly", metav1.GetOptions{})
	if cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image != pinned {
		t.Errorf("cronjob image %s, want %s", cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image, pinned)
	}
	if !strings.Contains(log.String(), "Deployment a/web: moving initContainer init to 1.27.1-1 ("+f.patched+"), container c0 to 1.27.1-1") {
		t.Errorf("progress:\n%s", log.String())
	}
}

func TestDeploymentStatus(t *testing.T) {
	three := int32(3)
	base := func(mod func(d *appsv1.Deployment)) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Spec: appsv1.DeploymentSpec{Replicas: &three},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}}
		mod(d)
		return d
	}
	for _, tc := range []struct {
		name string
		d    *appsv1.Deployment
		done bool
		fail bool
		msg  string
	}{
		{"done", base(func(*appsv1.Deployment) {}), true, false, "3 of 3 updated, 3 available"},
		{"not observed", base(func(d *appsv1.Deployment) { d.Status.ObservedGeneration = 1 }), false, false, "waiting for the deployment controller"},
		{"updating", base(func(d *appsv1.Deployment) { d.Status.UpdatedReplicas = 1 }), false, false, "1 of 3 updated"},
		{"old pods", base(func(d *appsv1.Deployment) { d.Status.Replicas = 4 }), false, false, "1 old replicas pending termination"},
		{"unavailable", base(func(d *appsv1.Deployment) { d.Status.AvailableReplicas = 2 }), false, false, "2 available"},
		{"deadline", base(func(d *appsv1.Deployment) {
			d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Reason: "ProgressDeadlineExceeded", Message: "ReplicaSet web-1 has timed out progressing."}}
		}), false, true, "progress deadline exceeded"},
	} {
		msg, done, err := deploymentStatus(tc.d, 2)
		if done != tc.done || (err != nil) != tc.fail || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %q done=%v err=%v", tc.name, msg, done, err)
		}
	}
}
