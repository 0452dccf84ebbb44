package kube

import (
	"context"
	"errors"
	"time"
)

// PodRecord is what the inventory keeps of one running (or pending) pod:
// which workload it belongs to and which image digest each of its
// containers runs.
type PodRecord struct {
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	Node      string `json:"node,omitempty"`
	Phase     string `json:"phase,omitempty"`
	// Workload is the pod's top controller (a ReplicaSet's Deployment, a
	// Job's CronJob), or the pod itself.
	Workload   Workload           `json:"workload"`
	Containers []RunningContainer `json:"containers"`
	// ObservedAt is when the watcher wrote the record.
	ObservedAt time.Time `json:"observedAt"`
}

// Workload names a controller of pods.
type Workload struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Digest sources: how a container's digest was learnt.
const (
	// FromStatus: the kubelet's imageID, what the node pulled.
	FromStatus = "status"
	// FromSpec: the pod names the image by digest.
	FromSpec = "spec"
	// FromTag: the tag as drydock's registry resolves it now (a pod not
	// started yet, or a runtime that does not report the digest).
	FromTag = "tag"
)

// RunningContainer is one container of a pod record.
type RunningContainer struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Image string `json:"image"`
	// Host and Repository are the image's normalised registry and path
	// (empty when the image does not parse).
	Host       string `json:"host,omitempty"`
	Repository string `json:"repository,omitempty"`
	// Digest is the manifest digest it runs, "" when unknown; DigestFrom
	// says how it was learnt.
	Digest     string `json:"digest,omitempty"`
	DigestFrom string `json:"digestFrom,omitempty"`
}

// PodFilter selects pod records; zero fields match everything.
type PodFilter struct {
	Cluster   string
	Namespace string
	// Digests, when not nil, keeps the pods with a container running one
	// of them (all the pod's containers are returned).
	Digests []string
}

// DigestUse is one digest the inventory has seen running, with how many
// pods run it.
type DigestUse struct {
	Digest string `json:"digest"`
	Pods   int    `json:"pods"`
}

// IndexedScan is what the inventory keeps of one digest's stored scan:
// its time and its findings, reduced to what "who runs CVE-X" answers
// with. The gate's store keeps the scan itself; the index makes the
// question one indexed query instead of reading every running digest's
// scan.
type IndexedScan struct {
	Digest    string
	ScannedAt time.Time
	Findings  []IndexedFinding
}

// IndexedFinding is one finding of an indexed scan.
type IndexedFinding struct {
	// Digest is the scanned digest (set by Findings; ignored by
	// PutScanIndex, which takes the IndexedScan's).
	Digest          string
	VulnerabilityID string
	AffectedFinding
}

// ErrInvalidRecord is wrapped by a store's errors for a record it cannot
// keep (no cluster, namespace or name).
var ErrInvalidRecord = errors.New("invalid pod record")

// InventoryStore keeps the running-image inventory. It stores what the
// watcher observed; it decides nothing (no digest resolution, no owner
// lookup). Every implementation passes kube/inventorytest.Run.
type InventoryStore interface {
	// PutPod replaces the record of p's pod (and its containers).
	PutPod(ctx context.Context, p PodRecord) error
	// DeletePod removes a pod's record; an unknown pod is no error.
	DeletePod(ctx context.Context, cluster, namespace, name string) error
	// ReplaceCluster makes the cluster's records exactly pods, in one
	// transaction (a full resync after a restart or a relist).
	ReplaceCluster(ctx context.Context, cluster string, pods []PodRecord) error
	// Pods returns the matching records sorted by cluster, namespace and
	// name, containers in their stored order.
	Pods(ctx context.Context, f PodFilter) ([]PodRecord, error)
	// Digests lists every digest running in any pod, with its pod count,
	// sorted by digest.
	Digests(ctx context.Context) ([]DigestUse, error)

	// ScanIndex returns, for each digest with an indexed scan, the time
	// of that scan.
	ScanIndex(ctx context.Context) (map[string]time.Time, error)
	// PutScanIndex replaces the indexed scan of each digest given, in
	// one transaction.
	PutScanIndex(ctx context.Context, scans []IndexedScan) error
	// PruneScanIndex drops the indexed scans of digests no pod runs.
	PruneScanIndex(ctx context.Context) error
	// Findings returns the indexed findings of vulnerability id (compared
	// exactly; callers store and ask in upper case), sorted by digest,
	// platform and package.
	Findings(ctx context.Context, id string) ([]IndexedFinding, error)
	Close() error
}

// Validate checks what every store needs of a record.
func (p PodRecord) Validate() error {
	if p.Cluster == "" || p.Namespace == "" || p.Name == "" {
		return errors.Join(ErrInvalidRecord, errors.New("a pod record needs its cluster, namespace and name"))
	}
	return nil
}
