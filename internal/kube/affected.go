package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/drydock-project/drydock/internal/store"
)

// AffectedFinding is one finding of the vulnerability in a running image.
type AffectedFinding struct {
	// Platform is the image of an index the finding is in ("" for an
	// image).
	Platform         string `json:"platform,omitempty"`
	Package          string `json:"package"`
	InstalledVersion string `json:"installedVersion"`
	FixedVersion     string `json:"fixedVersion,omitempty"`
	Severity         string `json:"severity"`
	Status           string `json:"status,omitempty"`
}

// AffectedImage is a running digest whose stored scan has the
// vulnerability.
type AffectedImage struct {
	Digest   string            `json:"digest"`
	Images   []string          `json:"images"`
	Findings []AffectedFinding `json:"findings"`
}

// AffectedWorkload is a workload with pods that run an affected image.
type AffectedWorkload struct {
	WorkloadRef
	Images []AffectedImage `json:"images"`
}

// AffectedReport answers "which running workloads are exposed to this
// vulnerability", from the stored scans of the digests pods run.
type AffectedReport struct {
	Vulnerability string             `json:"vulnerability"`
	Workloads     []AffectedWorkload `json:"workloads"`
	// Pods counts the affected pods.
	Pods int `json:"pods"`
	// RunningDigests is how many digests run; ScannedDigests how many of
	// them have a stored scan the answer covers.
	RunningDigests int `json:"runningDigests"`
	ScannedDigests int `json:"scannedDigests"`
	// Unscanned are running images the answer cannot speak for: no
	// stored scan (an image from elsewhere, or a failed scan), or no
	// known digest.
	Unscanned []RunningImage `json:"unscanned"`
}

// vulnIDRE bounds what a vulnerability ID may look like: CVE-2023-4911,
// GHSA-…, DSA-5514-1, TEMP-….
var vulnIDRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9.:_]+)+$`)

// ErrInvalidVulnerability is returned for an ID that is not one.
var ErrInvalidVulnerability = errors.New("invalid vulnerability ID")

// Affected lists the workloads whose pods run a digest whose stored scan
// found vulnerability id, with the findings; running images without a
// scan are listed apart, so the answer never claims more than it knows.
func (q *Queries) Affected(ctx context.Context, id string, f Filter) (*AffectedReport, error) {
	id = strings.TrimSpace(id)
	if len(id) > 64 || !vulnIDRE.MatchString(id) {
		return nil, fmt.Errorf("%w: %q (e.g. CVE-2023-4911)", ErrInvalidVulnerability, truncate(id, 64))
	}
	want := strings.ToUpper(id)
	scanned, unscanned, err := q.refresh(ctx)
	if err != nil {
		return nil, err
	}
	found, err := q.inv.Findings(ctx, want)
	if err != nil {
		return nil, err
	}
	hits := map[string][]AffectedFinding{}
	for _, f := range found {
		if scanned[f.Digest] { // the index may hold a digest no longer running, or whose rescan failed
			hits[f.Digest] = append(hits[f.Digest], f.AffectedFinding)
		}
	}
	rep := &AffectedReport{Vulnerability: want, Workloads: []AffectedWorkload{}, Unscanned: []RunningImage{},
		RunningDigests: len(scanned) + len(unscanned), ScannedDigests: len(scanned)}

	// The affected pods, grouped by workload, then by image.
	hitList := make([]string, 0, len(hits))
	for d := range hits {
		hitList = append(hitList, d)
	}
	pods, err := q.inv.Pods(ctx, PodFilter{Cluster: f.Cluster, Namespace: f.Namespace, Digests: hitList})
	if err != nil {
		return nil, err
	}
	type wkey [4]string
	byWorkload := map[wkey]*AffectedWorkload{}
	var order []wkey
	for _, p := range pods {
		k := wkey{p.Cluster, p.Namespace, p.Workload.Kind, p.Workload.Name}
		w := byWorkload[k]
		if w == nil {
			w = &AffectedWorkload{WorkloadRef: WorkloadRef{Cluster: k[0], Namespace: k[1], Kind: k[2], Name: k[3]}}
			byWorkload[k] = w
			order = append(order, k)
		}
		affected := false
		for _, c := range p.Containers {
			fs, ok := hits[c.Digest]
			if !ok {
				continue
			}
			affected = true
			i := slices.IndexFunc(w.Images, func(im AffectedImage) bool { return im.Digest == c.Digest })
			if i < 0 {
				w.Images = append(w.Images, AffectedImage{Digest: c.Digest, Findings: fs})
				i = len(w.Images) - 1
			}
			if !slices.Contains(w.Images[i].Images, c.Image) {
				w.Images[i].Images = append(w.Images[i].Images, c.Image)
			}
		}
		if affected {
			w.Pods = append(w.Pods, p.Name)
			rep.Pods++
		}
	}
	for _, k := range order {
		w := byWorkload[k]
		slices.Sort(w.Pods)
		for i := range w.Images {
			slices.Sort(w.Images[i].Images)
		}
		slices.SortFunc(w.Images, func(a, b AffectedImage) int { return strings.Compare(a.Digest, b.Digest) })
		rep.Workloads = append(rep.Workloads, *w)
	}
	slices.SortFunc(rep.Workloads, func(a, b AffectedWorkload) int {
		return cmp.Or(strings.Compare(a.Cluster, b.Cluster), strings.Compare(a.Namespace, b.Namespace),
			strings.Compare(a.Kind, b.Kind), strings.Compare(a.Name, b.Name))
	})

	// What the answer does not cover: unscanned digests and containers
	// whose digest is unknown.
	keep := map[string]bool{"": true}
	list := []string{""}
	for d := range unscanned {
		keep[d] = true
		list = append(list, d)
	}
	pods, err = q.inv.Pods(ctx, PodFilter{Cluster: f.Cluster, Namespace: f.Namespace, Digests: list})
	if err != nil {
		return nil, err
	}
	if rep.Unscanned, err = q.group(ctx, pods, keep); err != nil {
		return nil, err
	}
	return rep, nil
}

// Warm indexes the stored scan of every running digest not indexed yet
// (or rescanned since), so that the next question reads no scan, and
// drops the index of digests no longer running. The server calls it after
// each resync of the inventory.
func (q *Queries) Warm(ctx context.Context) error {
	if _, _, err := q.refresh(ctx); err != nil {
		return err
	}
	return q.inv.PruneScanIndex(ctx)
}

// indexBatch is how many scans one index write holds (about 150 findings
// each for a Debian image): memory stays bounded while a first index of
// thousands of digests is built.
const indexBatch = 100

// refresh brings the scan index up to date for the running digests: it
// returns those with a usable stored scan (now indexed) and those without
// one (together, every running digest). Only the scans not indexed yet,
// or rescanned since, are read, in parallel.
func (q *Queries) refresh(ctx context.Context) (scanned, unscanned map[string]bool, err error) {
	uses, err := q.inv.Digests(ctx)
	if err != nil {
		return nil, nil, err
	}
	states, err := q.scans.ScanStates(ctx)
	if err != nil {
		return nil, nil, err
	}
	stateOf := make(map[string]store.ScanState, len(states))
	for _, s := range states {
		stateOf[s.Digest] = s
	}
	indexed, err := q.inv.ScanIndex(ctx)
	if err != nil {
		return nil, nil, err
	}
	scanned, unscanned = map[string]bool{}, map[string]bool{}
	var stale []string
	for _, u := range uses {
		d := u.Digest
		st, ok := stateOf[d]
		if !ok || st.ScannedAt.IsZero() || st.Error != "" {
			unscanned[d] = true
			continue
		}
		scanned[d] = true
		if at, ok := indexed[d]; !ok || !at.Equal(st.ScannedAt) {
			stale = append(stale, d) // not indexed yet, or rescanned since
		}
	}
	for len(stale) > 0 {
		n := min(len(stale), indexBatch)
		batch := make([]*IndexedScan, n)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(max(2, runtime.GOMAXPROCS(0)))
		for i, d := range stale[:n] {
			g.Go(func() error {
				sc, err := q.scans.Scan(gctx, d)
				if errors.Is(err, store.ErrNotFound) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("scan of %s: %w", d, err)
				}
				if sc.ScannedAt.IsZero() || sc.Error != "" {
					return nil // failed since the states were read
				}
				is := indexScan(sc)
				batch[i] = &is
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, nil, err
		}
		var put []IndexedScan
		for i, d := range stale[:n] {
			if batch[i] == nil {
				delete(scanned, d)
				unscanned[d] = true
				continue
			}
			put = append(put, *batch[i])
		}
		if err := q.inv.PutScanIndex(ctx, put); err != nil {
			return nil, nil, err
		}
		stale = stale[n:]
	}
	return scanned, unscanned, nil
}

// indexScan reduces a stored scan to its indexed findings, vulnerability
// IDs in upper case.
func indexScan(sc *store.Scan) IndexedScan {
	is := IndexedScan{Digest: sc.Digest, ScannedAt: sc.ScannedAt}
	for _, pr := range sc.Reports {
		if pr.Report == nil {
			continue
		}
		for _, fd := range pr.Report.Findings {
			is.Findings = append(is.Findings, IndexedFinding{VulnerabilityID: strings.ToUpper(fd.VulnerabilityID),
				AffectedFinding: AffectedFinding{Platform: pr.Platform, Package: fd.PkgName, InstalledVersion: fd.InstalledVersion,
					FixedVersion: fd.FixedVersion, Severity: string(fd.Severity), Status: string(fd.Status)}})
		}
	}
	return is
}
