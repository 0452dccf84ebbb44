package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/drydock-project/drydock/internal/imgref"
)

// listConcurrency bounds the driver calls a collection makes at once
// (object storage answers in milliseconds; many in flight hide that).
const listConcurrency = 8

// collection is one run of Collect.
type collection struct {
	r   *Registry
	o   CollectOptions
	now time.Time
	rep *Report
	// pace yields and rests between units of work.
	pace *pacer
	// yield makes the sweep's deletions give way to the registry's writes.
	yield *yielder

	repos map[string]*repoState
	names []string // sorted repository names
	// data is the stored blob content, by digest, with its size.
	data map[digest.Digest]int64

	// pending is the bytes of the upload sessions kept, by repository.
	pending uploadBytes

	mu   sync.Mutex
	refs map[digest.Digest]*manifestRefs // parsed manifests
}

// repoState is what the listing found in one repository and what the
// marking keeps of it.
type repoState struct {
	name      string
	tags      map[string]digest.Digest
	revisions map[digest.Digest]bool
	layers    map[digest.Digest]bool
	// entries maps a subject to the referrers recorded for it.
	entries map[digest.Digest][]digest.Digest
	uploads []string

	// kept are the revisions kept, keptLayers the blob links kept.
	kept       map[digest.Digest]bool
	keptLayers map[digest.Digest]bool
	// orphans are the tags of cosign's tag scheme whose subject no
	// repository keeps (the sweep's candidates), by tag.
	orphans map[string]imgref.TagScheme
}

// manifestRefs is what a stored manifest references.
type manifestRefs struct {
	blobs    []digest.Digest
	children []digest.Digest
	// base is the manifest a patched image derives from (its
	// org.opencontainers.image.base.digest annotation).
	base digest.Digest
}

// list reads what the storage holds: every repository's tags, manifests,
// blob links, referrers entries and uploads, and every blob's content.
func (c *collection) list(ctx context.Context) error {
	c.progress(PhaseList, 0, 0)
	c.repos = map[string]*repoState{}
	c.refs = map[digest.Digest]*manifestRefs{}
	type found struct {
		name     string
		children []string
	}
	var dirs []found
	err := c.r.walkRepos(ctx, func(name string, children []string) error {
		dirs = append(dirs, found{name, children})
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing repositories: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listConcurrency)
	var mu sync.Mutex
	for _, f := range dirs {
		g.Go(func() error {
			if err := c.pace.step(gctx); err != nil {
				return err
			}
			rs, err := c.listRepo(gctx, f.name, f.children)
			if err != nil {
				return fmt.Errorf("listing repository %s: %w", f.name, err)
			}
			mu.Lock()
			c.repos[f.name] = rs
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for name := range c.repos {
		c.names = append(c.names, name)
	}
	slices.Sort(c.names)
	c.rep.Repositories = len(c.names)
	if c.data, err = c.r.listBlobs(ctx, c.pace); err != nil {
		return fmt.Errorf("listing blobs: %w", err)
	}
	c.rep.Blobs = len(c.data)
	for _, n := range c.data {
		c.rep.BlobBytes += n
	}
	return nil
}

// listRepo lists one repository.
func (c *collection) listRepo(ctx context.Context, name string, children []string) (*repoState, error) {
	rs := &repoState{name: name, tags: map[string]digest.Digest{}, revisions: map[digest.Digest]bool{},
		layers: map[digest.Digest]bool{}, entries: map[digest.Digest][]digest.Digest{},
		kept: map[digest.Digest]bool{}, keptLayers: map[digest.Digest]bool{}}
	if slices.Contains(children, "_manifests") {
		tags, err := c.r.list(ctx, tagsPath(name))
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			if !imgref.ValidTag(t) || (c.o.IgnoreTags != nil && c.o.IgnoreTags(name, t)) {
				continue
			}
			if err := c.pace.step(ctx); err != nil {
				return nil, err
			}
			d, err := c.r.readLink(ctx, tagLinkPath(name, t))
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			rs.tags[t] = d
		}
		revs, err := c.r.listDigestDirs(ctx, revisionsPath(name))
		if err != nil {
			return nil, err
		}
		for _, d := range revs {
			if err := c.pace.step(ctx); err != nil {
				return nil, err
			}
			got, err := c.r.readLink(ctx, revisionLinkPath(name, d))
			if errors.Is(err, ErrNotFound) || (err == nil && got != d) {
				// A revision directory without its link: a push cut off
				// before the link, or a deletion cut off after it. It
				// stores no manifest; deleting the directory is safe.
				rs.revisions[d] = true
				continue
			}
			if err != nil {
				return nil, err
			}
			rs.revisions[d] = true
		}
	}
	if slices.Contains(children, "_layers") {
		layers, err := c.r.listDigestDirs(ctx, path.Join(repoPath(name), "_layers"))
		if err != nil {
			return nil, err
		}
		for _, d := range layers {
			rs.layers[d] = true
		}
	}
	if slices.Contains(children, "_referrers") {
		subjects, err := c.r.listDigestDirs(ctx, path.Join(repoPath(name), "_referrers"))
		if err != nil {
			return nil, err
		}
		for _, s := range subjects {
			if err := c.pace.step(ctx); err != nil {
				return nil, err
			}
			names, err := c.r.list(ctx, referrersDir(name, s))
			if err != nil {
				return nil, err
			}
			for _, e := range names {
				alg, enc, ok := strings.Cut(e, "-")
				if !ok {
					continue
				}
				if rd, err := imgref.ParseDigest(alg + ":" + enc); err == nil {
					rs.entries[s] = append(rs.entries[s], rd)
				}
			}
		}
	}
	if slices.Contains(children, "_uploads") {
		ids, err := c.r.list(ctx, uploadsPath(name))
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if uploadIDRE.MatchString(id) {
				rs.uploads = append(rs.uploads, id)
			}
		}
	}
	return rs, nil
}

// listDigestDirs lists <dir>/<alg>/<hex> directories as digests.
func (r *Registry) listDigestDirs(ctx context.Context, dir string) ([]digest.Digest, error) {
	var out []digest.Digest
	for _, alg := range []string{"sha256", "sha512"} {
		hexes, err := r.list(ctx, path.Join(dir, alg))
		if err != nil {
			return nil, err
		}
		for _, h := range hexes {
			if d, err := imgref.ParseDigest(alg + ":" + h); err == nil {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// listBlobs returns every blob's content stored, with its size. Object
// storage is walked (one listing returns a thousand sizes); the
// filesystem is listed two levels down and each blob's data stat'ed,
// several at once. pace rests between units of work.
func (r *Registry) listBlobs(ctx context.Context, pace *pacer) (map[digest.Digest]int64, error) {
	out := map[digest.Digest]int64{}
	root := path.Join(rootPath, "blobs")
	if !strings.HasPrefix(r.driver.Name(), "filesystem") {
		err := r.driver.Walk(ctx, root, func(fi storagedriver.FileInfo) error {
			if fi.IsDir() || path.Base(fi.Path()) != "data" {
				return nil
			}
			if err := pace.step(ctx); err != nil {
				return err
			}
			if d, ok := blobDigestOf(fi.Path()); ok {
				out[d] = fi.Size()
			}
			return nil
		})
		if err != nil && !isNotFound(err) {
			return nil, err
		}
		return out, nil
	}
	var mu sync.Mutex
	for _, alg := range []string{"sha256", "sha512"} {
		prefixes, err := r.list(ctx, path.Join(root, alg))
		if err != nil {
			return nil, err
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(listConcurrency)
		for _, p := range prefixes {
			g.Go(func() error {
				if err := pace.step(gctx); err != nil {
					return err
				}
				hexes, err := r.list(gctx, path.Join(root, alg, p))
				if err != nil {
					return err
				}
				for _, h := range hexes {
					d, err := imgref.ParseDigest(alg + ":" + h)
					if err != nil || !strings.HasPrefix(h, p) {
						continue
					}
					if err := pace.step(gctx); err != nil {
						return err
					}
					fi, err := r.driver.Stat(gctx, blobDataPath(d))
					if isNotFound(err) {
						continue
					}
					if err != nil {
						return err
					}
					if !fi.IsDir() {
						mu.Lock()
						out[d] = fi.Size()
						mu.Unlock()
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// blobDigestOf reads the digest of a blobs/<alg>/<xx>/<hex>/data path.
func blobDigestOf(p string) (digest.Digest, bool) {
	parts := strings.Split(strings.TrimPrefix(p, rootPath+"/blobs/"), "/")
	if len(parts) != 4 || parts[3] != "data" || !strings.HasPrefix(parts[2], parts[1]) {
		return "", false
	}
	d, err := imgref.ParseDigest(parts[0] + ":" + parts[2])
	return d, err == nil
}

// manifestRefs parses the stored manifest d (once per collection, whatever
// the number of repositories holding it). A manifest that cannot be read
// references nothing.
func (c *collection) manifestRefs(ctx context.Context, repo string, d digest.Digest) (*manifestRefs, error) {
	c.mu.Lock()
	mr, ok := c.refs[d]
	c.mu.Unlock()
	if ok {
		return mr, nil
	}
	mr = &manifestRefs{}
	size, ok := c.data[d]
	if !ok || size > c.r.maxManifestSize {
		return mr, nil
	}
	body, err := c.r.driver.GetContent(ctx, blobDataPath(d))
	if isNotFound(err) {
		return mr, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", d, err)
	}
	mt, err := c.r.manifestMediaType(ctx, repo, d, size)
	if err != nil {
		return nil, err
	}
	if info, err := parseManifest(mt, body); err == nil {
		for _, b := range info.Blobs {
			mr.blobs = append(mr.blobs, b.Digest)
		}
		for _, m := range info.Manifests {
			mr.children = append(mr.children, m.Digest)
		}
		if b, err := imgref.ParseDigest(info.Annotations[ocispec.AnnotationBaseImageDigest]); err == nil {
			mr.base = b
		}
	}
	c.mu.Lock()
	c.refs[d] = mr
	c.mu.Unlock()
	return mr, nil
}

// mark decides what each repository keeps: the manifests reachable from
// its tags, from Keep, and recent untagged ones, closed over index
// children, referrers of kept subjects and the originals kept patches
// derive from (in the repository and its counterpart in the other gate
// namespace); then the blob links those manifests list, and recent links.
func (c *collection) mark(ctx context.Context) error {
	c.progress(PhaseMark, 0, len(c.names))
	roots := map[string][]digest.Digest{}
	for _, name := range c.names {
		rs := c.repos[name]
		rs.orphans = map[string]imgref.TagScheme{}
		for t, d := range rs.tags {
			if ts, ok := imgref.ParseTagScheme(t); ok && !c.recent(ctx, tagLinkPath(name, t)) {
				// A signature, attestation or SBOM follows its
				// subject (a recent one is kept like a recent
				// manifest: a copy may push it before its subject).
				rs.orphans[t] = ts
				continue
			}
			roots[name] = append(roots[name], d)
		}
		for d := range rs.revisions {
			if c.o.Keep != nil && c.o.Keep(name, d) != "" {
				roots[name] = append(roots[name], d)
			}
		}
	}
	young, err := c.youngRevisions(ctx)
	if err != nil {
		return err
	}
	for name, ds := range young {
		roots[name] = append(roots[name], ds...)
	}
	for len(roots) > 0 {
		if err := c.closeAll(ctx, roots); err != nil {
			return err
		}
		// Tag-scheme tags whose subject is now kept keep what they
		// point at, which may keep the subject of others.
		roots = map[string][]digest.Digest{}
		for _, name := range c.names {
			rs := c.repos[name]
			for _, t := range slices.Sorted(maps.Keys(rs.orphans)) {
				if c.keptAnywhere(rs.orphans[t].Subject) {
					roots[name] = append(roots[name], rs.tags[t])
					delete(rs.orphans, t)
				}
			}
		}
	}
	for i, name := range c.names {
		rs := c.repos[name]
		c.rep.Manifests += len(rs.revisions)
		for d := range rs.kept {
			if err := c.pace.step(ctx); err != nil {
				return err
			}
			mr, err := c.manifestRefs(ctx, name, d)
			if err != nil {
				return err
			}
			for _, b := range mr.blobs {
				rs.keptLayers[b] = true
			}
		}
		if c.o.Grace > 0 {
			for d := range rs.layers {
				if rs.keptLayers[d] {
					continue
				}
				if c.recent(ctx, layerLinkPath(name, d)) {
					rs.keptLayers[d] = true
				}
			}
		}
		c.progress(PhaseMark, i+1, len(c.names))
	}
	return nil
}

// closeAll closes over roots (per repository) until no repository gains a
// manifest: lineage crosses repositories.
func (c *collection) closeAll(ctx context.Context, roots map[string][]digest.Digest) error {
	for len(roots) > 0 {
		next := map[string][]digest.Digest{}
		for _, name := range slices.Sorted(maps.Keys(roots)) {
			bases, err := c.close(ctx, c.repos[name], roots[name], nil)
			if err != nil {
				return err
			}
			for _, b := range bases {
				for _, other := range counterparts(name) {
					if rs, ok := c.repos[other]; ok && rs.revisions[b] && !rs.kept[b] {
						next[other] = append(next[other], b)
					}
				}
			}
		}
		roots = next
	}
	return nil
}

// keptAnywhere reports whether manifest d is kept in any repository: a
// tag-scheme tag follows its subject wherever it is kept (cosign can store
// signatures in another repository than the image's). Only its own
// repository's subject is claimed with it, though: a subject pushed into
// another repository during the cycle does not keep it.
func (c *collection) keptAnywhere(d digest.Digest) bool {
	for _, rs := range c.repos {
		if rs.kept[d] {
			return true
		}
	}
	return false
}

// close adds to rs.kept the manifests in from and everything they keep in
// the repository; it returns the originals (bases) of kept patches, which
// the counterpart repositories keep too. claimed, when set, is called for
// each manifest newly kept (the sweep's closure over protected objects).
func (c *collection) close(ctx context.Context, rs *repoState, from []digest.Digest, added func(digest.Digest)) ([]digest.Digest, error) {
	var bases []digest.Digest
	queue := slices.Clone(from)
	for len(queue) > 0 {
		d := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if rs.kept[d] || !rs.revisions[d] {
			continue
		}
		rs.kept[d] = true
		if added != nil {
			added(d)
		} else if err := c.pace.step(ctx); err != nil {
			// Marking rests; the sweep's closure (added set) runs while
			// keys are claimed, and does not.
			return nil, err
		}
		mr, err := c.manifestRefs(ctx, rs.name, d)
		if err != nil {
			return nil, err
		}
		queue = append(queue, mr.children...)
		queue = append(queue, rs.entries[d]...)
		if mr.base != "" {
			queue = append(queue, mr.base)
			bases = append(bases, mr.base)
		}
	}
	return bases, nil
}

// counterparts are the repositories holding the same image in the gate's
// other namespace.
func counterparts(repo string) []string {
	switch imgref.Namespace(repo) {
	case imgref.Quarantine:
		return []string{imgref.Rebase(repo, imgref.Live)}
	case imgref.Live:
		return []string{imgref.Rebase(repo, imgref.Quarantine)}
	}
	return nil
}

// youngRevisions returns, per repository, the manifests no tag reaches
// that are younger than the grace period.
func (c *collection) youngRevisions(ctx context.Context) (map[string][]digest.Digest, error) {
	out := map[string][]digest.Digest{}
	if c.o.Grace <= 0 {
		return out, nil
	}
	for _, name := range c.names {
		rs := c.repos[name]
		tagged := map[digest.Digest]bool{}
		for _, d := range rs.tags {
			tagged[d] = true
		}
		for _, d := range slices.Sorted(maps.Keys(rs.revisions)) {
			if tagged[d] {
				continue
			}
			if c.recent(ctx, revisionLinkPath(name, d)) || c.recent(ctx, revisionMediaTypePath(name, d)) {
				out[name] = append(out[name], d)
			}
		}
	}
	return out, ctx.Err()
}

// recent reports whether the file at p was written within the grace
// period; a file that cannot be stat'ed is not recent.
func (c *collection) recent(ctx context.Context, p string) bool {
	if c.pace.step(ctx) != nil {
		return false
	}
	fi, err := c.r.driver.Stat(ctx, p)
	if err != nil {
		return false
	}
	return fi.ModTime().After(c.now.Add(-c.o.Grace))
}
