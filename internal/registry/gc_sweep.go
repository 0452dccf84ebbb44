package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/drydock-project/drydock/internal/imgref"
)

// blobClaimBatch is how many blobs one claim reserves: a write that
// protects one of them waits for at most this many deletions.
const blobClaimBatch = 64

// candidate is an object the marking did not keep.
type candidate struct {
	key  string
	path string // what to delete on the driver
	// file, when set, is the one file in the directory path (see
	// deleteLeaf).
	file string
	item Item
	// d is the manifest or blob link's digest (or a tag's target, or a
	// guarded subject's digest), subject an entry's or a tag's subject.
	d, subject digest.Digest
	// tag is a tag candidate's tag. A candidate with no item kind is a
	// guard: claimed with the others, never deleted.
	tag string
}

// sweepRepositories deletes, one repository at a time, the manifests,
// referrers entries and blob links the marking did not keep. A
// repository's candidates are claimed together, so that a manifest a
// write protected meanwhile keeps, with itself, whatever it references
// among them.
func (c *collection) sweepRepositories(ctx context.Context) error {
	c.progress(PhaseSweep, 0, len(c.names))
	for i, name := range c.names {
		if err := c.sweepRepo(ctx, c.repos[name]); err != nil {
			return fmt.Errorf("repository %s: %w", name, err)
		}
		c.progress(PhaseSweep, i+1, len(c.names))
	}
	return nil
}

func (c *collection) repoCandidates(rs *repoState) []candidate {
	var out []candidate
	guarded := map[digest.Digest]bool{}
	for _, t := range slices.Sorted(maps.Keys(rs.orphans)) {
		ts := rs.orphans[t]
		out = append(out, candidate{key: TagKey(rs.name, t), path: tagDir(rs.name, t), d: rs.tags[t], subject: ts.Subject, tag: t,
			item: Item{Kind: KindTag, Repository: rs.name, Name: t, Digest: rs.tags[t].String(), Subject: ts.Subject.String()}})
		if !rs.revisions[ts.Subject] && !guarded[ts.Subject] {
			// Claimed, not deleted: a push of the subject during the
			// cycle protects it, and keeps the tag.
			guarded[ts.Subject] = true
			out = append(out, candidate{key: ManifestKey(rs.name, ts.Subject), d: ts.Subject})
		}
	}
	for _, d := range slices.Sorted(maps.Keys(rs.revisions)) {
		if !rs.kept[d] {
			out = append(out, candidate{key: ManifestKey(rs.name, d), path: revisionDir(rs.name, d), d: d,
				item: Item{Kind: KindManifest, Repository: rs.name, Digest: d.String()}})
		}
	}
	for _, s := range slices.Sorted(maps.Keys(rs.entries)) {
		for _, r := range rs.entries[s] {
			if !rs.kept[r] {
				out = append(out, candidate{key: ReferrerKey(rs.name, s, r), path: referrerPath(rs.name, s, r), d: r, subject: s,
					item: Item{Kind: KindReferrer, Repository: rs.name, Subject: s.String(), Digest: r.String()}})
			}
		}
	}
	for _, d := range slices.Sorted(maps.Keys(rs.layers)) {
		if !rs.keptLayers[d] {
			out = append(out, candidate{key: LayerKey(rs.name, d), path: path.Dir(layerLinkPath(rs.name, d)), file: path.Base(layerLinkPath(rs.name, d)), d: d,
				item: Item{Kind: KindLayer, Repository: rs.name, Digest: d.String()}})
		}
	}
	return out
}

func (c *collection) sweepRepo(ctx context.Context, rs *repoState) (err error) {
	cands := c.repoCandidates(rs)
	if len(cands) == 0 {
		return nil
	}
	if c.o.DryRun {
		for _, cd := range cands {
			if cd.item.Kind != "" {
				c.rep.add(cd.item, c.o.MaxItems)
			}
		}
		return nil
	}
	keys := make([]string, len(cands))
	for i, cd := range cands {
		keys[i] = cd.key
	}
	// Rest before claiming, never while keys are claimed: a write
	// protecting one of them waits until they are released.
	if err := c.pace.step(ctx); err != nil {
		return err
	}
	if err := c.yield.yield(ctx); err != nil {
		return err
	}
	claimed, err := c.o.Coordinator.Claim(ctx, keys)
	if err != nil {
		return fmt.Errorf("claiming: %w", err)
	}
	// Claims end as soon as their fate is done: a write protecting one
	// waits for its object's deletion, not for the repository's.
	held := make(map[string]bool, len(claimed))
	for _, k := range claimed {
		held[k] = true
	}
	release := func(ctx context.Context, keys []string) error {
		var out []string
		for _, k := range keys {
			if held[k] {
				out = append(out, k)
				delete(held, k)
			}
		}
		if len(out) == 0 {
			return nil
		}
		if err := c.o.Coordinator.Release(ctx, out); err != nil {
			return fmt.Errorf("releasing claims: %w", err)
		}
		return nil
	}
	defer func() {
		if rerr := release(context.WithoutCancel(ctx), slices.Sorted(maps.Keys(held))); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	isClaimed := make(map[string]bool, len(claimed))
	for _, k := range claimed {
		isClaimed[k] = true
	}
	// What a write protected since the listing is kept, with what it
	// references: its closure may reach other candidates, claimed or not.
	var protected []digest.Digest
	guardsHeld := map[digest.Digest]bool{} // subjects pushed meanwhile
	for _, cd := range cands {
		if isClaimed[cd.key] {
			continue
		}
		switch cd.item.Kind {
		case KindManifest:
			protected = append(protected, cd.d)
		case KindLayer:
			rs.keptLayers[cd.d] = true
		case "":
			guardsHeld[cd.d] = true
			continue
		}
		c.rep.Protected++
	}
	keepClosure := func(d digest.Digest) {
		if mr, err := c.manifestRefs(ctx, rs.name, d); err == nil {
			for _, b := range mr.blobs {
				rs.keptLayers[b] = true
			}
		}
	}
	if _, err := c.close(ctx, rs, protected, keepClosure); err != nil {
		return err
	}
	// A tag-scheme tag is kept, with what it points at, when a write
	// pointed it during the cycle or its subject is kept now (protected,
	// or kept by what a protected manifest reaches); keeping one may keep
	// the subject of another.
	keptTags := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for _, cd := range cands {
			if cd.item.Kind != KindTag || keptTags[cd.tag] {
				continue
			}
			if isClaimed[cd.key] && !guardsHeld[cd.subject] && !rs.kept[cd.subject] {
				continue
			}
			keptTags[cd.tag] = true
			changed = true
			if _, err := c.close(ctx, rs, []digest.Digest{cd.d}, keepClosure); err != nil {
				return err
			}
		}
	}
	var tags []candidate
	var del [3][]candidate // entries, then manifests, then blob links
	for _, cd := range cands {
		if !isClaimed[cd.key] {
			continue
		}
		switch cd.item.Kind {
		case KindTag:
			if !keptTags[cd.tag] {
				tags = append(tags, cd)
			}
		case KindReferrer:
			if !rs.kept[cd.d] {
				del[0] = append(del[0], cd)
			}
		case KindManifest:
			if !rs.kept[cd.d] {
				del[1] = append(del[1], cd)
			}
		case KindLayer:
			if !rs.keptLayers[cd.d] {
				del[2] = append(del[2], cd)
			}
		}
	}
	// Tags first: nothing is left pointing at a deleted manifest.
	for _, cd := range tags {
		err := c.r.DeleteTag(ctx, rs.name, cd.tag, cd.d)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrTagMoved) {
			continue // untagged or moved by a write that did not guard it
		}
		if err != nil {
			return err
		}
		delete(rs.tags, cd.tag)
		c.rep.add(cd.item, c.o.MaxItems)
	}
	// The tags are done, and with them the guards of their subjects;
	// what is kept after all is decided: their claims end now, the
	// others' once their chunk is deleted.
	deleting := map[string]bool{}
	for _, group := range del {
		for _, cd := range group {
			deleting[cd.key] = true
		}
	}
	var done []string
	for _, k := range claimed {
		if !deleting[k] {
			done = append(done, k)
		}
	}
	if err := release(ctx, done); err != nil {
		return err
	}
	for _, group := range del {
		err := c.deleteAll(ctx, group, func(chunk []candidate) error {
			keys := make([]string, len(chunk))
			for i, cd := range chunk {
				keys[i] = cd.key
			}
			return release(ctx, keys)
		})
		if err != nil {
			return err
		}
	}
	// What was deleted is no longer in the repository.
	for _, cd := range del[1] {
		delete(rs.revisions, cd.d)
	}
	for _, cd := range del[2] {
		delete(rs.layers, cd.d)
	}
	return nil
}

// deleteAll deletes the candidates' paths, several at once, and reports
// each deleted one. Between chunks of sweepChunk it yields to the
// registry's writes; after each chunk it calls chunkDone, when set, which
// ends the chunk's claims, so that a write protecting one of them waits
// for the deletions of its chunk, not for the yields that follow.
func (c *collection) deleteAll(ctx context.Context, cands []candidate, chunkDone func([]candidate) error) error {
	for start := 0; start < len(cands); start += sweepChunk {
		if start > 0 {
			if err := c.yield.yield(ctx); err != nil {
				return err
			}
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(listConcurrency)
		for _, cd := range cands[start:min(start+sweepChunk, len(cands))] {
			g.Go(func() error {
				if err := c.r.deleteLeaf(gctx, cd.path, cd.file); err != nil {
					return err
				}
				c.mu.Lock()
				c.rep.add(cd.item, c.o.MaxItems)
				c.mu.Unlock()
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		if chunkDone != nil {
			if err := chunkDone(cands[start:min(start+sweepChunk, len(cands))]); err != nil {
				return err
			}
		}
	}
	return nil
}

// keptBlobs is the content some kept manifest or blob link references.
func (c *collection) keptBlobs() map[digest.Digest]bool {
	keep := map[digest.Digest]bool{}
	for _, rs := range c.repos {
		for d := range rs.kept {
			keep[d] = true
		}
		for d := range rs.keptLayers {
			keep[d] = true
		}
	}
	return keep
}

// sweepBlobs deletes the content no kept manifest or link references, in
// batches claimed one at a time.
func (c *collection) sweepBlobs(ctx context.Context) error {
	keep := c.keptBlobs()
	var cands []candidate
	for _, d := range slices.Sorted(maps.Keys(c.data)) {
		if !keep[d] {
			cands = append(cands, candidate{key: BlobKey(d), path: path.Dir(blobDataPath(d)), file: path.Base(blobDataPath(d)), d: d,
				item: Item{Kind: KindBlob, Digest: d.String(), Size: c.data[d]}})
		}
	}
	c.progress(PhaseBlobs, 0, len(cands))
	if c.o.DryRun {
		for _, cd := range cands {
			c.rep.add(cd.item, c.o.MaxItems)
			delete(c.data, cd.d)
		}
		c.progress(PhaseBlobs, len(cands), len(cands))
		return nil
	}
	for start := 0; start < len(cands); start += blobClaimBatch {
		batch := cands[start:min(start+blobClaimBatch, len(cands))]
		if err := c.sweepBlobBatch(ctx, batch); err != nil {
			return err
		}
		c.progress(PhaseBlobs, start+len(batch), len(cands))
	}
	return nil
}

func (c *collection) sweepBlobBatch(ctx context.Context, batch []candidate) (err error) {
	keys := make([]string, len(batch))
	for i, cd := range batch {
		keys[i] = cd.key
	}
	if err := c.pace.step(ctx); err != nil {
		return err
	}
	if err := c.yield.yield(ctx); err != nil {
		return err
	}
	claimed, err := c.o.Coordinator.Claim(ctx, keys)
	if err != nil {
		return fmt.Errorf("claiming blobs: %w", err)
	}
	defer func() {
		if rerr := c.o.Coordinator.Release(context.WithoutCancel(ctx), claimed); rerr != nil {
			err = errors.Join(err, fmt.Errorf("releasing claims: %w", rerr))
		}
	}()
	isClaimed := map[string]bool{}
	for _, k := range claimed {
		isClaimed[k] = true
	}
	var del []candidate
	for _, cd := range batch {
		if isClaimed[cd.key] {
			del = append(del, cd)
		} else {
			c.rep.Protected++
		}
	}
	if err := c.deleteAll(ctx, del, nil); err != nil {
		return err
	}
	for _, cd := range del {
		delete(c.data, cd.d)
	}
	return nil
}

// uploadBytes is what an upload has received, by repository (for usage).
type uploadBytes map[string]int64

// sweepUploads deletes upload sessions idle for longer than the upload
// time-out and staging files older than it. Upload sessions are
// referenced by nothing: deleting one makes its client start again.
func (c *collection) sweepUploads(ctx context.Context) error {
	c.pending = uploadBytes{}
	for _, name := range c.names {
		rs := c.repos[name]
		for _, id := range rs.uploads {
			if err := c.pace.step(ctx); err != nil {
				return err
			}
			last, size := c.r.uploadActivity(ctx, name, id)
			if c.o.UploadTimeout <= 0 || last.After(c.now.Add(-c.o.UploadTimeout)) {
				c.pending[name] += size
				continue
			}
			it := Item{Kind: KindUpload, Repository: name, Name: id, Size: size}
			if !c.o.DryRun {
				if err := c.r.deletePath(ctx, uploadDir(name, id)); err != nil {
					return err
				}
			}
			c.rep.add(it, c.o.MaxItems)
		}
	}
	if c.o.UploadTimeout <= 0 {
		return nil
	}
	stale, err := c.r.staleTemps(ctx, c.now.Add(-c.o.UploadTimeout))
	if err != nil {
		return err
	}
	for _, it := range stale {
		if !c.o.DryRun {
			if err := c.r.deletePath(ctx, path.Join(tmpRoot(), it.Name)); err != nil {
				return err
			}
		}
		c.rep.add(it, c.o.MaxItems)
	}
	return nil
}

// usage computes every repository's and namespace's usage after the
// collection: distinct content of kept manifests and links, plus open
// uploads.
func (c *collection) usage() {
	ns := map[string]map[digest.Digest]bool{}
	nsPending := map[string]int64{}
	for _, name := range c.names {
		rs := c.repos[name]
		n := imgref.Namespace(name)
		if ns[n] == nil {
			ns[n] = map[digest.Digest]bool{}
		}
		seen := map[digest.Digest]bool{}
		var bytes int64
		for _, set := range []map[digest.Digest]bool{rs.kept, rs.keptLayers} {
			for d := range set {
				size, ok := c.data[d]
				if !ok || seen[d] {
					continue
				}
				seen[d] = true
				ns[n][d] = true
				bytes += size
			}
		}
		bytes += c.pending[name]
		nsPending[n] += c.pending[name]
		if bytes > 0 {
			c.rep.Usage = append(c.rep.Usage, Usage{Scope: "repository", Name: name, Bytes: bytes})
		}
	}
	for n, set := range ns {
		bytes := nsPending[n]
		for d := range set {
			bytes += c.data[d]
		}
		if bytes > 0 {
			c.rep.Usage = append(c.rep.Usage, Usage{Scope: "namespace", Name: n, Bytes: bytes})
		}
	}
}
