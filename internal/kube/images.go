package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/store"
)

// ScanSource reads the gate's stored scans; *store.SQLite implements it.
type ScanSource interface {
	Scan(ctx context.Context, digest string) (*store.Scan, error)
	ScanStates(ctx context.Context) ([]store.ScanState, error)
}

// VerdictSource reads the gate's stored verdicts; *store.SQLite
// implements it.
type VerdictSource interface {
	Image(ctx context.Context, digest string) (*store.Image, error)
}

// Queries answer questions about what runs from the inventory, the
// stored scans and the stored verdicts. One scan is read per digest,
// however many pods run it, and only when it changed: the inventory keeps
// an index of each running digest's scan (its vulnerability IDs and their
// findings, checked against the scan's time at every query), so "who runs
// CVE-X" is a few indexed queries whatever the number of pods and
// digests. The index lives in the database, shared by replicas and kept
// across restarts.
type Queries struct {
	inv      InventoryStore
	scans    ScanSource
	verdicts VerdictSource
}

// NewQueries returns Queries over an inventory and the gate's store.
func NewQueries(inv InventoryStore, scans ScanSource, verdicts VerdictSource) *Queries {
	return &Queries{inv: inv, scans: scans, verdicts: verdicts}
}

// Filter narrows a query to a cluster or namespace (empty: all).
type Filter struct {
	Cluster   string `json:"cluster,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// WorkloadRef names a workload and the pods of it a query found.
type WorkloadRef struct {
	Cluster   string   `json:"cluster"`
	Namespace string   `json:"namespace"`
	Kind      string   `json:"kind"`
	Name      string   `json:"name"`
	Pods      []string `json:"pods"`
}

// RunningImage is one digest (or, when the digest is unknown, one image
// reference) running in the inventory.
type RunningImage struct {
	// Digest is the manifest digest; "" when no digest is known for
	// Images (an outside image named by tag, before the kubelet reports).
	Digest string `json:"digest,omitempty"`
	// Images are the references pods name it by, sorted.
	Images []string `json:"images"`
	// Verdict is the digest's stored verdict state, "unknown" when the
	// gate has none (an image from elsewhere).
	Verdict gate.State `json:"verdict"`
	// Promoted says the digest was promoted to live/.
	Promoted  bool          `json:"promoted"`
	Pods      int           `json:"pods"`
	Workloads []WorkloadRef `json:"workloads"`
}

// StateUnknown is the verdict of a digest the gate does not know.
const StateUnknown gate.State = "unknown"

// ImagesReport is the answer of Images.
type ImagesReport struct {
	Images []RunningImage `json:"images"`
}

// Images lists what runs: each digest with the references it runs under,
// its stored verdict, and its workloads and pods. Sorted by digest (the
// unknown ones last, by reference).
func (q *Queries) Images(ctx context.Context, f Filter) (*ImagesReport, error) {
	pods, err := q.inv.Pods(ctx, PodFilter{Cluster: f.Cluster, Namespace: f.Namespace})
	if err != nil {
		return nil, err
	}
	images, err := q.group(ctx, pods, nil)
	if err != nil {
		return nil, err
	}
	return &ImagesReport{Images: images}, nil
}

// group groups the containers of pods by digest (by reference when the
// digest is unknown) with their stored verdicts; keep, when not nil,
// selects the digests ("" for unknown ones).
func (q *Queries) group(ctx context.Context, pods []PodRecord, keep map[string]bool) ([]RunningImage, error) {
	type key struct{ digest, image string }
	groups := map[key]*imageGroup{}
	for _, p := range pods {
		for _, c := range p.Containers {
			if keep != nil && !keep[c.Digest] {
				continue
			}
			k := key{digest: c.Digest}
			if c.Digest == "" {
				k.image = c.Image
			}
			g := groups[k]
			if g == nil {
				g = newImageGroup()
				groups[k] = g
			}
			g.add(p, c.Image)
		}
	}
	out := []RunningImage{}
	for k, g := range groups {
		ri := g.result()
		ri.Digest, ri.Verdict = k.digest, StateUnknown
		if k.digest != "" && q.verdicts != nil {
			im, err := q.verdicts.Image(ctx, k.digest)
			switch {
			case err == nil:
				ri.Verdict, ri.Promoted = im.Verdict.State, im.Promoted
			case !errors.Is(err, store.ErrNotFound):
				return nil, fmt.Errorf("verdict of %s: %w", k.digest, err)
			}
		}
		out = append(out, ri)
	}
	slices.SortFunc(out, func(a, b RunningImage) int {
		if (a.Digest == "") != (b.Digest == "") {
			if a.Digest == "" {
				return 1
			}
			return -1
		}
		return cmp.Or(strings.Compare(a.Digest, b.Digest), slices.Compare(a.Images, b.Images))
	})
	return out, nil
}

// imageGroup collects the pods and references of one image.
type imageGroup struct {
	images    map[string]bool
	pods      map[string]bool
	workloads map[[4]string]map[string]bool
}

func newImageGroup() *imageGroup {
	return &imageGroup{images: map[string]bool{}, pods: map[string]bool{}, workloads: map[[4]string]map[string]bool{}}
}

func (g *imageGroup) add(p PodRecord, image string) {
	g.images[image] = true
	g.pods[p.Cluster+"/"+p.Namespace+"/"+p.Name] = true
	wk := [4]string{p.Cluster, p.Namespace, p.Workload.Kind, p.Workload.Name}
	if g.workloads[wk] == nil {
		g.workloads[wk] = map[string]bool{}
	}
	g.workloads[wk][p.Name] = true
}

func (g *imageGroup) result() RunningImage {
	return RunningImage{Images: sortedKeys(g.images), Pods: len(g.pods), Workloads: workloadRefs(g.workloads)}
}

func workloadRefs(m map[[4]string]map[string]bool) []WorkloadRef {
	out := make([]WorkloadRef, 0, len(m))
	for k, pods := range m {
		out = append(out, WorkloadRef{Cluster: k[0], Namespace: k[1], Kind: k[2], Name: k[3], Pods: sortedKeys(pods)})
	}
	slices.SortFunc(out, func(a, b WorkloadRef) int {
		return cmp.Or(strings.Compare(a.Cluster, b.Cluster), strings.Compare(a.Namespace, b.Namespace),
			strings.Compare(a.Kind, b.Kind), strings.Compare(a.Name, b.Name))
	})
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
