package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/drydock-project/drydock/internal/database/dbtest"
)

func controllerRef(kind, name, uid string) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{Kind: kind, Name: name, UID: types.UID(uid), Controller: &yes, APIVersion: "v1"}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWatcher(t *testing.T) {
	reg := newTestRegistry(t)
	tagged := reg.push("live/nginx", "1.27.1", 1)
	pinned := "sha256:" + strings.Repeat("ab", 32)
	pulled := d64
	h := reg.host
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f", Namespace: "a", UID: "rs-1", OwnerReferences: controllerRef("Deployment", "web", "dep-1")}}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "nightly-2900", Namespace: "a", UID: "job-1", OwnerReferences: controllerRef("CronJob", "nightly", "cj-1")}}
	web := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f-x", Namespace: "a", UID: "p1", OwnerReferences: controllerRef("ReplicaSet", "web-5d8f", "rs-1")},
		Spec: corev1.PodSpec{NodeName: "n1",
			InitContainers: []corev1.Container{{Name: "init", Image: h + "/live/nginx:1.27.1"}},
			Containers:     []corev1.Container{{Name: "app", Image: h + "/live/nginx@" + pinned}, {Name: "side", Image: "docker.io/library/busybox:1"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "side", Image: "docker.io/library/busybox:1", ImageID: "docker.io/library/busybox@" + pulled},
			// A status for another repository (the image was changed in
			// place and the kubelet has not caught up) is not trusted.
			{Name: "app", Image: h + "/live/other:1", ImageID: h + "/live/other@" + pulled},
		}}}
	cron := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "nightly-2900-y", Namespace: "a", UID: "p2", OwnerReferences: controllerRef("Job", "nightly-2900", "job-1")},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "quay.io/x/y:2"}}}}
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare", Namespace: "b", UID: "p3"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "not a reference"}}}}
	client := fake.NewClientset(rs, job, web, cron, bare)

	store, err := OpenInventory(t.Context(), dbtest.SQLite(t).Opener(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// A pod of a cluster recorded before a restart, gone since: the first
	// resync drops it.
	if err := store.PutPod(t.Context(), PodRecord{Cluster: "c1", Namespace: "a", Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	clock := newTestClock()
	w, err := NewWatcher(WatcherOptions{Client: client, Store: store, Cluster: "c1", Hosts: []string{h}, Registry: reg, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the first resync", w.Synced)

	byName := func() map[string]PodRecord {
		ps, err := store.Pods(t.Context(), PodFilter{Cluster: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]PodRecord{}
		for _, p := range ps {
			m[p.Name] = p
		}
		return m
	}
	got := byName()
	if len(got) != 3 {
		t.Fatalf("pods %v", got)
	}
	if g := got["web-5d8f-x"]; g.Workload != (Workload{"Deployment", "web"}) || g.Node != "n1" || g.Phase != "Running" || !g.ObservedAt.Equal(clock.Now()) {
		t.Errorf("web pod %+v", g)
	}
	want := []RunningContainer{
		{Kind: KindInitContainer, Name: "init", Image: h + "/live/nginx:1.27.1", Host: h, Repository: "live/nginx", Digest: tagged, DigestFrom: FromTag},
		{Kind: KindContainer, Name: "app", Image: h + "/live/nginx@" + pinned, Host: h, Repository: "live/nginx", Digest: pinned, DigestFrom: FromSpec},
		{Kind: KindContainer, Name: "side", Image: "docker.io/library/busybox:1", Host: "docker.io", Repository: "library/busybox", Digest: pulled, DigestFrom: FromStatus},
	}
	for i, c := range got["web-5d8f-x"].Containers {
		if c != want[i] {
			t.Errorf("container %d = %+v, want %+v", i, c, want[i])
		}
	}
	if g := got["nightly-2900-y"]; g.Workload != (Workload{"CronJob", "nightly"}) || g.Containers[0].Digest != "" || g.Containers[0].Host != "quay.io" {
		t.Errorf("cronjob pod %+v", g)
	}
	if g := got["bare"]; g.Workload != (Workload{"Pod", "bare"}) || g.Containers[0].Host != "" || g.Containers[0].Image != "not a reference" {
		t.Errorf("bare pod %+v", g)
	}

	// Changes flow in: a deleted pod, a new pod whose ReplicaSet arrives
	// after it.
	if err := client.CoreV1().Pods("b").Delete(t.Context(), "bare", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	late := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "api-1", Namespace: "a", UID: "p4", OwnerReferences: controllerRef("ReplicaSet", "api-7", "rs-2")},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: h + "/live/nginx:1.27.1"}}}}
	if _, err := client.CoreV1().Pods("a").Create(t.Context(), late, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new pod under its ReplicaSet", func() bool {
		g := byName()
		_, stale := g["bare"]
		return !stale && g["api-1"].Workload == (Workload{"ReplicaSet", "api-7"})
	})
	if _, err := client.AppsV1().ReplicaSets("a").Create(t.Context(), &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "api-7", Namespace: "a", UID: "rs-2",
		OwnerReferences: controllerRef("Deployment", "api", "dep-2")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pod's Deployment once its ReplicaSet shows", func() bool {
		return byName()["api-1"].Workload == (Workload{"Deployment", "api"})
	})
}

func TestStatusDigest(t *testing.T) {
	for in, want := range map[string]string{
		"docker-pullable://d.io/live/x@" + d64: d64,
		"d.io/live/x@" + d64:                   d64,
		d64:                                    "",
		"d.io/live/x@sha256:abc":               "",
		"":                                     "",
	} {
		if got := statusDigest(in); got != want {
			t.Errorf("statusDigest(%q) = %q, want %q", in, got, want)
		}
	}
}
