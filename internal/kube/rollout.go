package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Targets decides where images move: *Planner in process, the JSON API
// for the CLI.
type Targets interface {
	Plan(ctx context.Context, req PlanRequest) (*Plan, error)
}

// RolloutRequest asks to move the workloads that run a repository.
type RolloutRequest struct {
	// Repository is the live/ repository ("nginx" or "live/nginx").
	Repository string `json:"repository"`
	// To is the tag to move to (empty: the newest passing patch tag).
	To string `json:"to,omitempty"`
	// Namespace limits the rollout to one namespace (empty: all).
	Namespace string `json:"namespace,omitempty"`
	// DryRun sends the changes as server-side dry runs (the API server
	// and its admission webhooks check them) and changes nothing.
	DryRun bool `json:"dryRun,omitempty"`
	// Timeout bounds the wait for all rollouts (default 5 minutes); a
	// workload not rolled out by then is rolled back.
	Timeout time.Duration `json:"timeout,omitempty"`
	// NoRollback leaves a failed rollout as it is.
	NoRollback bool `json:"noRollback,omitempty"`
}

// Workload states of a rollout.
const (
	StatePlanned    = "planned"     // dry run: would be changed
	StateDone       = "done"        // rolled out
	StateUpdated    = "updated"     // changed; nothing to wait for (a CronJob)
	StateRolledBack = "rolled-back" // failed or timed out, spec restored
	StateFailed     = "failed"      // failed, not restored
)

// ContainerChange is one container's image change.
type ContainerChange struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
	// ToTag names the tag To is the digest of.
	ToTag string `json:"toTag"`
}

// WorkloadRollout is the rollout of one workload.
type WorkloadRollout struct {
	Kind       string            `json:"kind"`
	Namespace  string            `json:"namespace"`
	Name       string            `json:"name"`
	Containers []ContainerChange `json:"containers"`
	State      string            `json:"state"`
	Message    string            `json:"message,omitempty"`
}

// String names the workload: "Deployment team-a/web".
func (w WorkloadRollout) String() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// RolloutResult is what a rollout did.
type RolloutResult struct {
	Plan      *Plan             `json:"plan"`
	Workloads []WorkloadRollout `json:"workloads"`
	DryRun    bool              `json:"dryRun,omitempty"`
}

// Failed reports whether any workload failed or was rolled back.
func (r *RolloutResult) Failed() bool {
	return slices.ContainsFunc(r.Workloads, func(w WorkloadRollout) bool {
		return w.State == StateRolledBack || w.State == StateFailed
	})
}

// Progress is one step of a rollout, for the caller to show.
type Progress struct {
	Workload string `json:"workload"`
	// Message says what happened: "updated", "2 of 3 updated, 1 available".
	Message string `json:"message"`
	Done    bool   `json:"done,omitempty"`
}

// Annotations drydock sets on a workload it rolls out.
const (
	AnnotationChangeCause = "kubernetes.io/change-cause"
	AnnotationRollout     = "drydock.dev/rollout"
)

// rolloutPoll is how often rollout status is read.
const rolloutPoll = 500 * time.Millisecond

// Rollout moves the Deployments, StatefulSets, DaemonSets and CronJobs
// that run any tag (or digest) of req.Repository to the image targets
// chooses, by digest, through their normal rolling update; it waits for
// every rollout and rolls back each one that fails or is not done within
// req.Timeout. progress, when not nil, gets every step.
//
// A rollback restores the images the rollout replaced, and only while the
// workload still has the images the rollout set: a change made by someone
// else in between is never overwritten.
func Rollout(ctx context.Context, c kubernetes.Interface, targets Targets, req RolloutRequest, progress func(Progress)) (*RolloutResult, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	if req.Timeout <= 0 {
		req.Timeout = 5 * time.Minute
	}
	ws, err := listWorkloads(ctx, c, req.Namespace)
	if err != nil {
		return nil, err
	}
	var images []string
	for _, w := range ws {
		for _, ct := range w.containers {
			images = append(images, ct.Image)
		}
	}
	plan, err := targets.Plan(ctx, PlanRequest{Repository: req.Repository, To: req.To, Images: images})
	if err != nil {
		return nil, err
	}
	moves := map[string]ImagePlan{}
	for _, ip := range plan.Images {
		if ip.Moves() {
			moves[ip.Image] = ip
		}
	}
	res := &RolloutResult{Plan: plan, Workloads: []WorkloadRollout{}, DryRun: req.DryRun}
	var changed []*liveWorkload
	for _, w := range ws {
		var cs []ContainerChange
		for _, ct := range w.containers {
			if ip, ok := moves[ct.Image]; ok {
				cs = append(cs, ContainerChange{Kind: ct.Kind, Name: ct.Name, From: ct.Image, To: ip.ToImage, ToTag: ip.ToTag})
			}
		}
		if len(cs) == 0 {
			continue
		}
		w.changes = cs
		changed = append(changed, w)
	}
	for _, w := range changed {
		wr := WorkloadRollout{Kind: w.kind, Namespace: w.namespace, Name: w.name, Containers: w.changes}
		if err := w.apply(ctx, c, req.DryRun, false); err != nil {
			wr.State, wr.Message = StateFailed, err.Error()
			progress(Progress{Workload: wr.String(), Message: "not changed: " + err.Error(), Done: true})
			w.failed = true
		} else if req.DryRun {
			wr.State = StatePlanned
			progress(Progress{Workload: wr.String(), Message: "would move " + describeChanges(w.changes) + " (dry run accepted by the API server)", Done: true})
		} else {
			progress(Progress{Workload: wr.String(), Message: "moving " + describeChanges(w.changes)})
		}
		res.Workloads = append(res.Workloads, wr)
	}
	if req.DryRun {
		return res, nil
	}

	// Wait for every changed workload at once.
	wctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, w := range changed {
		if w.failed {
			continue
		}
		wg.Go(func() {
			state, msg := w.wait(wctx, c, func(m string) { progress(Progress{Workload: res.Workloads[i].String(), Message: m}) })
			if state == StateDone && w.kind == "CronJob" {
				state = StateUpdated
			}
			if state != StateDone && state != StateUpdated {
				if ctx.Err() == nil && wctx.Err() != nil {
					msg = fmt.Sprintf("not rolled out within %s: %s", req.Timeout, msg)
				}
				state = StateFailed
				if !req.NoRollback {
					// The rollback gets its own time: the wait's is spent.
					rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
					if err := w.apply(rctx, c, false, true); err != nil {
						msg += "; rollback failed: " + err.Error()
					} else {
						state, msg = StateRolledBack, msg+"; rolled back to "+describeFrom(w.changes)
					}
					rcancel()
				}
			}
			res.Workloads[i].State, res.Workloads[i].Message = state, msg
			progress(Progress{Workload: res.Workloads[i].String(), Message: state + ": " + msg, Done: true})
		})
	}
	wg.Wait()
	return res, nil
}

func describeChanges(cs []ContainerChange) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s %s to %s (%s)", c.Kind, c.Name, c.ToTag, digestOfRef(c.To)))
	}
	return strings.Join(parts, ", ")
}

func describeFrom(cs []ContainerChange) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.From)
	}
	return strings.Join(slices.Compact(parts), ", ")
}

func digestOfRef(image string) string {
	_, d, _ := strings.Cut(image, "@")
	return d
}

// liveWorkload is a workload found in the cluster, with the pointer to
// its pod spec.
type liveWorkload struct {
	kind, namespace, name string
	specPath              string
	annotations           map[string]string
	containers            []Container
	changes               []ContainerChange
	// generation is the one the change produced (the rollout waits for
	// the controller to observe it).
	generation int64
	failed     bool
}

// listWorkloads lists the workloads whose images a rollout can move.
func listWorkloads(ctx context.Context, c kubernetes.Interface, ns string) ([]*liveWorkload, error) {
	var out []*liveWorkload
	add := func(kind string, meta metav1.ObjectMeta, specPath string, spec corev1.PodSpec) {
		w := &liveWorkload{kind: kind, namespace: meta.Namespace, name: meta.Name, specPath: specPath, annotations: meta.Annotations}
		for i, ct := range spec.InitContainers {
			w.containers = append(w.containers, Container{Kind: KindInitContainer, Name: ct.Name, Image: ct.Image, Path: specPath + "/initContainers/" + strconv.Itoa(i) + "/image"})
		}
		for i, ct := range spec.Containers {
			w.containers = append(w.containers, Container{Kind: KindContainer, Name: ct.Name, Image: ct.Image, Path: specPath + "/containers/" + strconv.Itoa(i) + "/image"})
		}
		out = append(out, w)
	}
	ds, err := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing deployments: %w", err)
	}
	for _, d := range ds.Items {
		add("Deployment", d.ObjectMeta, "/spec/template/spec", d.Spec.Template.Spec)
	}
	ss, err := c.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing statefulsets: %w", err)
	}
	for _, s := range ss.Items {
		add("StatefulSet", s.ObjectMeta, "/spec/template/spec", s.Spec.Template.Spec)
	}
	dss, err := c.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing daemonsets: %w", err)
	}
	for _, d := range dss.Items {
		add("DaemonSet", d.ObjectMeta, "/spec/template/spec", d.Spec.Template.Spec)
	}
	cjs, err := c.BatchV1().CronJobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing cronjobs: %w", err)
	}
	for _, cj := range cjs.Items {
		add("CronJob", cj.ObjectMeta, "/spec/jobTemplate/spec/template/spec", cj.Spec.JobTemplate.Spec.Template.Spec)
	}
	slices.SortFunc(out, func(a, b *liveWorkload) int {
		return strings.Compare(a.kind+"/"+a.namespace+"/"+a.name, b.kind+"/"+b.namespace+"/"+b.name)
	})
	return out, nil
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// apply sends the change (or, with back, its reversal) as one JSON patch
// whose "test" operations make it apply only to the images it expects.
func (w *liveWorkload) apply(ctx context.Context, c kubernetes.Interface, dryRun, back bool) error {
	var ops []patchOp
	for _, ch := range w.changes {
		i := slices.IndexFunc(w.containers, func(ct Container) bool { return ct.Kind == ch.Kind && ct.Name == ch.Name })
		from, to := ch.From, ch.To
		if back {
			from, to = to, from
		}
		ops = append(ops, patchOp{"test", w.containers[i].Path, from}, patchOp{"replace", w.containers[i].Path, to})
	}
	cause := "drydock rollout: " + describeChanges(w.changes)
	if back {
		cause = "drydock rollback to " + describeFrom(w.changes)
	}
	note, _ := json.Marshal(map[string]any{"back": back, "containers": w.changes})
	if w.annotations == nil {
		ops = append(ops, patchOp{"add", "/metadata/annotations", map[string]string{AnnotationChangeCause: cause, AnnotationRollout: string(note)}})
		w.annotations = map[string]string{}
	} else {
		ops = append(ops, patchOp{"add", "/metadata/annotations/" + escapePointer(AnnotationChangeCause), cause},
			patchOp{"add", "/metadata/annotations/" + escapePointer(AnnotationRollout), string(note)})
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: "drydock"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var gen int64
	switch w.kind {
	case "Deployment":
		var d *appsv1.Deployment
		if d, err = c.AppsV1().Deployments(w.namespace).Patch(ctx, w.name, types.JSONPatchType, body, opts); err == nil {
			gen = d.Generation
		}
	case "StatefulSet":
		var s *appsv1.StatefulSet
		if s, err = c.AppsV1().StatefulSets(w.namespace).Patch(ctx, w.name, types.JSONPatchType, body, opts); err == nil {
			gen = s.Generation
		}
	case "DaemonSet":
		var d *appsv1.DaemonSet
		if d, err = c.AppsV1().DaemonSets(w.namespace).Patch(ctx, w.name, types.JSONPatchType, body, opts); err == nil {
			gen = d.Generation
		}
	case "CronJob":
		var cj *batchv1.CronJob
		if cj, err = c.BatchV1().CronJobs(w.namespace).Patch(ctx, w.name, types.JSONPatchType, body, opts); err == nil {
			gen = cj.Generation
		}
	default:
		return fmt.Errorf("%s: cannot roll out this kind", w.kind)
	}
	if err != nil {
		return fmt.Errorf("patching %s %s/%s: %w", w.kind, w.namespace, w.name, err)
	}
	if !dryRun {
		w.generation = gen
	}
	return nil
}

// escapePointer escapes a JSON pointer token (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// errRolloutFailed marks a rollout the controller reports as failed.
var errRolloutFailed = errors.New("rollout failed")

// wait polls the workload's rollout status until it is done, fails or
// ctx ends; it returns StateDone, or the state and why not.
func (w *liveWorkload) wait(ctx context.Context, c kubernetes.Interface, report func(string)) (string, string) {
	last := ""
	for {
		msg, done, err := w.status(ctx, c)
		switch {
		case errors.Is(err, errRolloutFailed):
			return StateFailed, msg
		case err != nil && ctx.Err() == nil:
			msg = "reading rollout status: " + err.Error()
		case done:
			return StateDone, msg
		}
		if msg != last {
			report(msg)
			last = msg
		}
		select {
		case <-ctx.Done():
			return StateFailed, last
		case <-time.After(rolloutPoll):
		}
	}
}

// status reads the workload's rollout status the way kubectl rollout
// status does.
func (w *liveWorkload) status(ctx context.Context, c kubernetes.Interface) (msg string, done bool, err error) {
	switch w.kind {
	case "Deployment":
		d, err := c.AppsV1().Deployments(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return "", false, err
		}
		return deploymentStatus(d, w.generation)
	case "StatefulSet":
		s, err := c.AppsV1().StatefulSets(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return "", false, err
		}
		return statefulSetStatus(s, w.generation)
	case "DaemonSet":
		d, err := c.AppsV1().DaemonSets(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return "", false, err
		}
		return daemonSetStatus(d, w.generation)
	}
	return "runs at its next schedule", true, nil
}

func deploymentStatus(d *appsv1.Deployment, gen int64) (string, bool, error) {
	if d.Status.ObservedGeneration < max(gen, d.Generation) {
		return "waiting for the deployment controller", false, nil
	}
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentProgressing && cond.Reason == "ProgressDeadlineExceeded" {
			return "progress deadline exceeded: " + cond.Message, false, errRolloutFailed
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	msg := fmt.Sprintf("%d of %d updated, %d available", s.UpdatedReplicas, want, s.AvailableReplicas)
	switch {
	case s.UpdatedReplicas < want:
		return msg, false, nil
	case s.Replicas > s.UpdatedReplicas:
		return fmt.Sprintf("%s, %d old replicas pending termination", msg, s.Replicas-s.UpdatedReplicas), false, nil
	case s.AvailableReplicas < s.UpdatedReplicas:
		return msg, false, nil
	}
	return msg, true, nil
}

func statefulSetStatus(s *appsv1.StatefulSet, gen int64) (string, bool, error) {
	if s.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		return "updated: the OnDelete update strategy rolls out as pods are deleted", true, nil
	}
	if s.Status.ObservedGeneration < max(gen, s.Generation) {
		return "waiting for the statefulset controller", false, nil
	}
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	msg := fmt.Sprintf("%d of %d updated, %d ready", s.Status.UpdatedReplicas, want, s.Status.ReadyReplicas)
	if p := s.Spec.UpdateStrategy.RollingUpdate; p != nil && p.Partition != nil && *p.Partition > 0 {
		if s.Status.UpdatedReplicas < want-*p.Partition {
			return msg, false, nil
		}
		return msg + fmt.Sprintf(" (partition %d)", *p.Partition), s.Status.ReadyReplicas >= want, nil
	}
	if s.Status.ReadyReplicas < want || s.Status.UpdateRevision != s.Status.CurrentRevision {
		return msg, false, nil
	}
	return msg, true, nil
}

func daemonSetStatus(d *appsv1.DaemonSet, gen int64) (string, bool, error) {
	if d.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		return "updated: the OnDelete update strategy rolls out as pods are deleted", true, nil
	}
	if d.Status.ObservedGeneration < max(gen, d.Generation) {
		return "waiting for the daemonset controller", false, nil
	}
	s := d.Status
	msg := fmt.Sprintf("%d of %d updated, %d available", s.UpdatedNumberScheduled, s.DesiredNumberScheduled, s.NumberAvailable)
	if s.UpdatedNumberScheduled < s.DesiredNumberScheduled || s.NumberAvailable < s.DesiredNumberScheduled {
		return msg, false, nil
	}
	return msg, true, nil
}
