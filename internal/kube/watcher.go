package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/drydock-project/drydock/internal/metrics"
	"github.com/drydock-project/drydock/internal/registry"
)

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	Client kubernetes.Interface
	Store  InventoryStore
	// Cluster names the cluster in the inventory.
	Cluster string
	// Hosts are drydock's registry hosts: a container naming one of its
	// images by tag gets the digest the registry resolves the tag to.
	Hosts []string
	// Registry resolves those tags; nil leaves their digest unknown.
	Registry Registry
	// ResyncInterval is how often every record is written again from the
	// informers' cache (default 10 minutes).
	ResyncInterval time.Duration
	Now            func() time.Time
	Log            *slog.Logger
	Metrics        *metrics.Kube
	// AfterResync, when not nil, is called (in its own goroutine, never
	// two at once) after each full resync: the server warms its queries.
	AfterResync func(ctx context.Context)
}

// Watcher keeps the inventory of one cluster from Pod informers (with
// ReplicaSet and Job informers to name each pod's workload). One worker
// writes every change in order; at start, and every ResyncInterval, the
// whole cluster is written again in one transaction, which also drops
// pods deleted while drydock was not watching.
type Watcher struct {
	o       WatcherOptions
	hosts   map[string]bool
	queue   workqueue.TypedRateLimitingInterface[string]
	pods    corelisters.PodLister
	podIdx  cache.Indexer
	rs      appslisters.ReplicaSetLister
	jobs    batchlisters.JobLister
	synced  atomic.Bool
	warming atomic.Bool
}

// resyncKey is the queue item of a full resync (never a pod's key, which
// always holds a "/").
const resyncKey = "resync"

// ownerIndex indexes pods by the UIDs of their owners.
const ownerIndex = "owner"

// NewWatcher validates o and returns a Watcher; Run starts it.
func NewWatcher(o WatcherOptions) (*Watcher, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("kube watcher: no client")
	case o.Store == nil:
		return nil, errors.New("kube watcher: no inventory store")
	case o.Cluster == "":
		return nil, errors.New("kube watcher: no cluster name")
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{o: o, hosts: map[string]bool{}}
	for _, h := range o.Hosts {
		n, err := NormalizeHost(h)
		if err != nil {
			return nil, fmt.Errorf("kube watcher: %w", err)
		}
		w.hosts[n] = true
	}
	return w, nil
}

// Synced reports whether the first full resync has been written.
func (w *Watcher) Synced() bool { return w.synced.Load() }

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(w.o.Client, 0, informers.WithTransform(slim))
	podInf := factory.Core().V1().Pods()
	rsInf := factory.Apps().V1().ReplicaSets()
	jobInf := factory.Batch().V1().Jobs()
	if err := podInf.Informer().AddIndexers(cache.Indexers{ownerIndex: func(obj any) ([]string, error) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return nil, nil
		}
		var uids []string
		for _, r := range p.OwnerReferences {
			uids = append(uids, string(r.UID))
		}
		return uids, nil
	}}); err != nil {
		return fmt.Errorf("kube watcher: %w", err)
	}
	w.pods, w.podIdx = podInf.Lister(), podInf.Informer().GetIndexer()
	w.rs, w.jobs = rsInf.Lister(), jobInf.Lister()
	w.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "drydock-inventory"})
	defer w.queue.ShutDown()

	enqueuePod := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			w.queue.Add(key)
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueuePod, UpdateFunc: func(_, obj any) { enqueuePod(obj) }, DeleteFunc: enqueuePod,
	}); err != nil {
		return fmt.Errorf("kube watcher: %w", err)
	}
	// A pod's workload is named through its owner: when an owner shows
	// up or changes (adoption), its pods are written again.
	enqueueOwned := func(obj any) {
		m, err := metaOf(obj)
		if err != nil {
			return
		}
		owned, _ := w.podIdx.ByIndex(ownerIndex, string(m.GetUID()))
		for _, p := range owned {
			enqueuePod(p)
		}
	}
	for _, inf := range []cache.SharedIndexInformer{rsInf.Informer(), jobInf.Informer()} {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: enqueueOwned, UpdateFunc: func(_, obj any) { enqueueOwned(obj) },
		}); err != nil {
			return fmt.Errorf("kube watcher: %w", err)
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	w.o.Log.Info("inventory: watching pods", "cluster", w.o.Cluster)
	// A cache that does not sync (no route to the cluster, or no right to
	// list) waits silently in client-go: say so every minute.
	syncing := make(chan struct{})
	go func() {
		for {
			select {
			case <-syncing:
				return
			case <-time.After(time.Minute):
				w.o.Log.Warn("inventory: not synced yet: is the cluster reachable, and may drydock list and watch pods, replicasets and jobs?", "cluster", w.o.Cluster)
			}
		}
	}()
	synced := factory.WaitForCacheSync(ctx.Done())
	close(syncing)
	for typ, ok := range synced {
		if !ok {
			return fmt.Errorf("kube watcher: %v cache never synced (is the cluster reachable, and may drydock list and watch pods, replicasets and jobs?)", typ)
		}
	}
	w.queue.Add(resyncKey)
	go func() {
		t := time.NewTicker(w.o.ResyncInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				w.queue.ShutDown()
				return
			case <-t.C:
				w.queue.Add(resyncKey)
			}
		}
	}()
	for w.processNext(ctx) {
	}
	return nil
}

func metaOf(obj any) (metav1.Object, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}

func (w *Watcher) processNext(ctx context.Context) bool {
	key, quit := w.queue.Get()
	if quit {
		return false
	}
	defer w.queue.Done(key)
	var err error
	if key == resyncKey {
		err = w.resync(ctx)
	} else {
		err = w.syncPod(ctx, key)
	}
	switch {
	case err == nil:
		w.queue.Forget(key)
	case ctx.Err() != nil:
	default:
		w.o.Metrics.InventoryUpdate("error")
		w.o.Log.Warn("inventory: writing failed, will retry", "key", key, "err", err)
		w.queue.AddRateLimited(key)
	}
	return true
}

func (w *Watcher) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key of ours: nothing to retry
	}
	pod, err := w.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		w.o.Metrics.InventoryUpdate("delete")
		return w.o.Store.DeletePod(ctx, w.o.Cluster, ns, name)
	}
	if err != nil {
		return err
	}
	w.o.Metrics.InventoryUpdate("put")
	return w.o.Store.PutPod(ctx, w.record(ctx, pod))
}

func (w *Watcher) resync(ctx context.Context) error {
	all, err := w.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	recs := make([]PodRecord, 0, len(all))
	for _, p := range all {
		recs = append(recs, w.record(ctx, p))
	}
	if err := w.o.Store.ReplaceCluster(ctx, w.o.Cluster, recs); err != nil {
		return err
	}
	w.o.Metrics.InventoryUpdate("resync")
	if !w.synced.Swap(true) {
		w.o.Log.Info("inventory: synced", "cluster", w.o.Cluster, "pods", len(recs))
	}
	if w.o.AfterResync != nil && w.warming.CompareAndSwap(false, true) {
		go func() {
			defer w.warming.Store(false)
			w.o.AfterResync(ctx)
		}()
	}
	return nil
}

// record builds the inventory record of a pod.
func (w *Watcher) record(ctx context.Context, p *corev1.Pod) PodRecord {
	r := PodRecord{Cluster: w.o.Cluster, Namespace: p.Namespace, Name: p.Name, UID: string(p.UID), Node: p.Spec.NodeName,
		Phase: string(p.Status.Phase), Workload: w.workload(p), ObservedAt: w.o.Now()}
	statuses := map[string]corev1.ContainerStatus{}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses, p.Status.EphemeralContainerStatuses} {
		for _, s := range list {
			statuses[s.Name] = s
		}
	}
	add := func(kind, name, image string) {
		c := RunningContainer{Kind: kind, Name: name, Image: image}
		ref, err := ParseImage(image)
		if err == nil {
			c.Host, c.Repository = ref.Host, ref.Repository
			c.Digest, c.DigestFrom = w.digestOf(ctx, ref, statuses[name])
		}
		r.Containers = append(r.Containers, c)
	}
	for _, c := range p.Spec.InitContainers {
		add(KindInitContainer, c.Name, c.Image)
	}
	for _, c := range p.Spec.Containers {
		add(KindContainer, c.Name, c.Image)
	}
	for _, c := range p.Spec.EphemeralContainers {
		add(KindEphemeralContainer, c.Name, c.Image)
	}
	return r
}

// digestOf is the manifest digest a container runs: what the kubelet
// reports it pulled (when that is the same repository as the spec names),
// else the spec's digest, else, for drydock's own images, the digest its
// tag resolves to now.
func (w *Watcher) digestOf(ctx context.Context, ref ImageRef, st corev1.ContainerStatus) (string, string) {
	if d := statusDigest(st.ImageID); d != "" {
		if sref, err := ParseImage(st.Image); err == nil && sref.Host == ref.Host && sref.Repository == ref.Repository {
			return d, FromStatus
		}
	}
	if ref.Digest != "" {
		return ref.Digest, FromSpec
	}
	if w.o.Registry != nil && w.hosts[ref.Host] {
		desc, err := w.o.Registry.Resolve(ctx, ref.Repository, ref.Tag)
		if err == nil {
			return desc.Digest.String(), FromTag
		}
		if !errors.Is(err, registry.ErrNotFound) {
			w.o.Log.Warn("inventory: resolving a tag", "image", ref.String(), "err", err)
		}
	}
	return "", ""
}

// statusDigest reads the manifest digest from a container status's
// imageID: "docker-pullable://host/repo@sha256:…", "host/repo@sha256:…".
// A bare "sha256:…" is the image's config digest, not its manifest's.
func statusDigest(imageID string) string {
	_, after, ok := strings.Cut(imageID, "@")
	if !ok || validDigest(after) != nil {
		return ""
	}
	return after
}

// workload names the pod's top controller through the informers' caches.
func (w *Watcher) workload(p *corev1.Pod) Workload {
	owner := metav1.GetControllerOf(p)
	if owner == nil {
		return Workload{Kind: "Pod", Name: p.Name}
	}
	switch owner.Kind {
	case "ReplicaSet":
		if rs, err := w.rs.ReplicaSets(p.Namespace).Get(owner.Name); err == nil {
			if top := metav1.GetControllerOf(rs); top != nil && top.Kind == "Deployment" {
				return Workload{Kind: top.Kind, Name: top.Name}
			}
		}
	case "Job":
		if j, err := w.jobs.Jobs(p.Namespace).Get(owner.Name); err == nil {
			if top := metav1.GetControllerOf(j); top != nil && top.Kind == "CronJob" {
				return Workload{Kind: top.Kind, Name: top.Name}
			}
		}
	}
	return Workload{Kind: owner.Kind, Name: owner.Name}
}

// slim keeps what the inventory reads of informer objects, so 10,000 pods
// take little memory.
func slim(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		out := &corev1.Pod{ObjectMeta: slimMeta(o.ObjectMeta)}
		out.Spec.NodeName = o.Spec.NodeName
		out.Spec.InitContainers = slimContainers(o.Spec.InitContainers)
		out.Spec.Containers = slimContainers(o.Spec.Containers)
		for _, c := range o.Spec.EphemeralContainers {
			out.Spec.EphemeralContainers = append(out.Spec.EphemeralContainers, corev1.EphemeralContainer{
				EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: c.Name, Image: c.Image}})
		}
		out.Status.Phase = o.Status.Phase
		out.Status.InitContainerStatuses = slimStatuses(o.Status.InitContainerStatuses)
		out.Status.ContainerStatuses = slimStatuses(o.Status.ContainerStatuses)
		out.Status.EphemeralContainerStatuses = slimStatuses(o.Status.EphemeralContainerStatuses)
		return out, nil
	case *appsv1.ReplicaSet:
		return &appsv1.ReplicaSet{ObjectMeta: slimMeta(o.ObjectMeta)}, nil
	case *batchv1.Job:
		return &batchv1.Job{ObjectMeta: slimMeta(o.ObjectMeta)}, nil
	}
	return obj, nil
}

func slimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		OwnerReferences: m.OwnerReferences, DeletionTimestamp: m.DeletionTimestamp}
}

func slimContainers(cs []corev1.Container) []corev1.Container {
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: c.Name, Image: c.Image}
	}
	return out
}

func slimStatuses(ss []corev1.ContainerStatus) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, len(ss))
	for i, s := range ss {
		out[i] = corev1.ContainerStatus{Name: s.Name, Image: s.Image, ImageID: s.ImageID}
	}
	return out
}
