package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/imgref"
)

func isDigestRef(ref string) bool { return strings.Contains(ref, ":") }

func errTagInvalid(tag string) error {
	return newAPIError(http.StatusBadRequest, codeTagInvalid, "invalid tag", map[string]string{"tag": tag})
}

// resolveManifest resolves a tag or digest in a repository to a stored
// manifest: its revision link must exist and its content must be stored.
// Anything missing along the way is ErrNotFound.
func (r *Registry) resolveManifest(ctx context.Context, name, ref string) (ocispec.Descriptor, error) {
	var d digest.Digest
	if isDigestRef(ref) {
		var err error
		if d, err = digestParam(ref); err != nil {
			return ocispec.Descriptor{}, err
		}
	} else {
		if !imgref.ValidTag(ref) {
			return ocispec.Descriptor{}, errTagInvalid(ref)
		}
		var err error
		if d, err = r.readLink(ctx, tagLinkPath(name, ref)); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	got, err := r.readLink(ctx, revisionLinkPath(name, d))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if got != d {
		return ocispec.Descriptor{}, ErrNotFound
	}
	size, err := r.blobSize(ctx, d)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	mt, err := r.manifestMediaType(ctx, name, d, size)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: size}, nil
}

// manifestMediaType returns the media type the manifest was pushed with,
// falling back to its mediaType field for manifests stored without one.
func (r *Registry) manifestMediaType(ctx context.Context, name string, d digest.Digest, size int64) (string, error) {
	b, err := r.driver.GetContent(ctx, revisionMediaTypePath(name, d))
	if err == nil && len(b) > 0 && len(b) < 256 {
		return string(b), nil
	}
	if err != nil && !isNotFound(err) {
		return "", fmt.Errorf("reading media type of %s: %w", d, err)
	}
	mt := mediaTypeOCIManifest
	if size <= r.maxManifestSize {
		if body, err := r.driver.GetContent(ctx, blobDataPath(d)); err == nil {
			var v struct {
				MediaType string `json:"mediaType"`
			}
			if json.Unmarshal(body, &v) == nil && v.MediaType != "" {
				mt = v.MediaType
			}
		}
	}
	return mt, nil
}

func (r *Registry) getManifest(w http.ResponseWriter, req *http.Request, name, ref string) error {
	ctx := req.Context()
	desc, err := r.resolveManifest(ctx, name, ref)
	if errors.Is(err, ErrNotFound) {
		return errManifestUnknown(ref)
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", desc.MediaType)
	h.Set("Docker-Content-Digest", desc.Digest.String())
	h.Set("ETag", `"`+desc.Digest.String()+`"`)
	h.Set("Content-Length", strconv.FormatInt(desc.Size, 10))
	if req.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	rc, err := r.driver.Reader(ctx, blobDataPath(desc.Digest), 0)
	if err != nil {
		if isNotFound(err) {
			h.Del("Content-Length")
			return errManifestUnknown(ref)
		}
		return fmt.Errorf("opening manifest %s: %w", desc.Digest, err)
	}
	defer rc.Close()
	w.WriteHeader(http.StatusOK)
	if _, err := io.CopyN(w, rc, desc.Size); err != nil {
		r.log.WarnContext(ctx, "streaming manifest failed", "repo", name, "digest", desc.Digest, "err", err)
		return nil
	}
	if r.pulls != nil {
		r.pulls(context.WithoutCancel(ctx), name, desc.Digest)
	}
	return nil
}

// putManifest stores a manifest. Order matters for crash safety: the content
// blob first, then its media type and revision link (the manifest now
// exists), then the referrers entry, and the tags last, so a tag never
// points at a manifest that is not fully stored.
func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, name, ref string) error {
	ctx := req.Context()
	var want digest.Digest
	var tags []string
	if isDigestRef(ref) {
		d, err := digestParam(ref)
		if err != nil {
			return err
		}
		want = d
		for _, t := range req.URL.Query()["tag"] {
			if !imgref.ValidTag(t) {
				return errTagInvalid(t)
			}
			tags = append(tags, t)
		}
	} else {
		if !imgref.ValidTag(ref) {
			return errTagInvalid(ref)
		}
		tags = []string{ref}
	}
	tooLarge := newAPIError(http.StatusRequestEntityTooLarge, codeSizeInvalid, "manifest too large",
		map[string]int64{"limit": r.maxManifestSize})
	if req.ContentLength > r.maxManifestSize {
		return tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, r.maxManifestSize+1))
	if err != nil {
		return newAPIError(http.StatusBadRequest, codeManifestInvalid, "reading manifest failed", err.Error())
	}
	if int64(len(body)) > r.maxManifestSize {
		return tooLarge
	}
	if r.quota != nil {
		alg := digest.SHA256
		if want != "" {
			alg = want.Algorithm()
		}
		if r.linkIsNew(ctx, revisionLinkPath(name, alg.FromBytes(body))) {
			if err := r.checkQuota(ctx, name, int64(len(body))); err != nil {
				return err
			}
		}
	}
	desc, info, err := r.storeManifest(ctx, name, req.Header.Get("Content-Type"), body, want, tags)
	if err != nil {
		return err
	}
	d := desc.Digest

	h := w.Header()
	h.Set("Location", "/v2/"+name+"/manifests/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	if info.Subject != nil {
		h.Set("OCI-Subject", info.Subject.Digest.String())
	}
	if isDigestRef(ref) && len(tags) > 0 {
		h.Set("OCI-Tag", strings.Join(tags, ","))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// storeManifest validates and stores a manifest body in name with the given
// tags (want, if set, is the digest the client asked for) and notifies the
// listeners. It is the one write path for manifests: the HTTP API and
// in-process writers (PutManifest, Copy) all use it.
func (r *Registry) storeManifest(ctx context.Context, name, contentType string, body []byte, want digest.Digest, tags []string) (ocispec.Descriptor, *manifestInfo, error) {
	alg := digest.SHA256
	if want != "" {
		alg = want.Algorithm()
	}
	d := alg.FromBytes(body)
	if want != "" && d != want {
		return ocispec.Descriptor{}, nil, errDigestInvalid(map[string]string{"expected": want.String(), "computed": d.String()})
	}
	info, err := parseManifest(contentType, body)
	if err != nil {
		return ocispec.Descriptor{}, nil, errManifestInvalid(err.Error())
	}
	g, err := r.guard(ctx)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	defer g.Done()
	keys := manifestKeys(name, d, info)
	for _, t := range tags {
		keys = append(keys, TagKey(name, t))
	}
	if err := protect(ctx, g, keys...); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	if err := r.checkReferences(ctx, name, info); err != nil {
		return ocispec.Descriptor{}, nil, err
	}

	if size, err := r.blobSizeDirect(ctx, d); err != nil || size != int64(len(body)) {
		if err := r.putAtomic(ctx, blobDataPath(d), body); err != nil {
			return ocispec.Descriptor{}, nil, fmt.Errorf("storing manifest %s: %w", d, err)
		}
	}
	if err := r.putAtomic(ctx, revisionMediaTypePath(name, d), []byte(info.MediaType)); err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("storing manifest %s media type: %w", d, err)
	}
	isNew := r.linkIsNew(ctx, revisionLinkPath(name, d))
	if err := r.writeLink(ctx, revisionLinkPath(name, d), d); err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("linking manifest %s into %s: %w", d, name, err)
	}
	if isNew {
		r.addUsage(ctx, name, int64(len(body)))
	}
	desc := ocispec.Descriptor{MediaType: info.MediaType, Digest: d, Size: int64(len(body))}
	if info.Subject != nil {
		ref := desc
		ref.ArtifactType = info.ArtifactType
		ref.Annotations = info.Annotations
		if err := r.addReferrer(ctx, name, info.Subject.Digest, ref); err != nil {
			return ocispec.Descriptor{}, nil, err
		}
	}
	for _, t := range tags {
		if err := r.writeLink(ctx, tagLinkPath(name, t), d); err != nil {
			return ocispec.Descriptor{}, nil, fmt.Errorf("tagging %s:%s: %w", name, t, err)
		}
	}

	// The manifest is stored whatever happens to the client now; a
	// recorder that failed fails the push, so the client pushes again.
	if err := r.notify(context.WithoutCancel(ctx), name, tags, desc); err != nil {
		return ocispec.Descriptor{}, nil, newAPIError(http.StatusServiceUnavailable, codeUnavailable,
			ErrArrivalNotRecorded.Error()+"; push it again", nil)
	}
	return desc, info, nil
}

// manifestKeys are the objects a manifest put relies on or creates: its
// content and revision, its blobs and their links, its children, and its
// referrers entry.
func manifestKeys(name string, d digest.Digest, info *manifestInfo) []string {
	keys := []string{BlobKey(d), ManifestKey(name, d)}
	for _, b := range info.Blobs {
		keys = append(keys, BlobKey(b.Digest), LayerKey(name, b.Digest))
	}
	for _, m := range info.Manifests {
		keys = append(keys, BlobKey(m.Digest), ManifestKey(name, m.Digest))
	}
	if info.Subject != nil {
		keys = append(keys, ReferrerKey(name, info.Subject.Digest, d))
	}
	return keys
}

// checkReferences requires the manifest's blobs and child manifests to be
// present in the repository, reading through the direct driver (the
// caller has protected them). The subject may be missing.
func (r *Registry) checkReferences(ctx context.Context, name string, info *manifestInfo) error {
	for _, b := range info.Blobs {
		if _, err := r.linkedBlobDirect(ctx, name, b.Digest); err != nil {
			if errors.Is(err, ErrNotFound) {
				return newAPIError(http.StatusBadRequest, codeManifestBlobUnkown, "blob unknown to registry",
					map[string]string{"digest": b.Digest.String()})
			}
			return err
		}
	}
	for _, m := range info.Manifests {
		if err := r.manifestStoredDirect(ctx, name, m.Digest); err != nil {
			if errors.Is(err, ErrNotFound) {
				return newAPIError(http.StatusBadRequest, codeManifestBlobUnkown, "manifest unknown to registry",
					map[string]string{"digest": m.Digest.String()})
			}
			return err
		}
	}
	return nil
}

// manifestStoredDirect checks that manifest d is stored in name: its
// revision link, and its content read through the direct driver.
func (r *Registry) manifestStoredDirect(ctx context.Context, name string, d digest.Digest) error {
	got, err := r.readLink(ctx, revisionLinkPath(name, d))
	if err != nil {
		return err
	}
	if got != d {
		return ErrNotFound
	}
	_, err = r.blobSizeDirect(ctx, d)
	return err
}

// notify tells the recorders, then the listeners, about a stored
// manifest. Every error is logged; the recorders' are returned.
func (r *Registry) notify(ctx context.Context, name string, tags []string, desc ocispec.Descriptor) error {
	if len(tags) == 0 {
		tags = []string{""}
	}
	var errs []error
	for _, l := range r.recorders {
		for _, t := range tags {
			if err := l.ManifestPushed(ctx, name, t, desc); err != nil {
				r.log.ErrorContext(ctx, "manifest recorder failed: the push is refused", "repo", name, "tag", t, "digest", desc.Digest, "err", err)
				errs = append(errs, err)
			}
		}
	}
	for _, l := range r.listeners {
		for _, t := range tags {
			if err := l.ManifestPushed(ctx, name, t, desc); err != nil {
				r.log.ErrorContext(ctx, "manifest listener failed", "repo", name, "tag", t, "digest", desc.Digest, "err", err)
			}
		}
	}
	return errors.Join(errs...)
}

// deleteManifest deletes a tag (untag only) or a manifest by digest, which
// removes its tags and its referrers entry first and the revision last.
func (r *Registry) deleteManifest(w http.ResponseWriter, req *http.Request, name, ref string) error {
	ctx := req.Context()
	if !isDigestRef(ref) {
		if !imgref.ValidTag(ref) {
			return errTagInvalid(ref)
		}
		if _, err := r.readLink(ctx, tagLinkPath(name, ref)); err != nil {
			if errors.Is(err, ErrNotFound) {
				return errManifestUnknown(ref)
			}
			return err
		}
		if err := r.deletePath(ctx, tagDir(name, ref)); err != nil {
			return fmt.Errorf("deleting tag %s:%s: %w", name, ref, err)
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	d, err := digestParam(ref)
	if err != nil {
		return err
	}
	if err := r.removeManifest(ctx, name, d); err != nil {
		if errors.Is(err, ErrNotFound) {
			return errManifestUnknown(ref)
		}
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// DeleteManifest deletes the manifest d from repo, in process (see
// Manifest): its tags, its referrers entry, then the revision. A missing
// manifest is ErrNotFound.
func (r *Registry) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	if !imgref.ValidRepository(repo) {
		return fmt.Errorf("delete manifest from %q: invalid repository name", repo)
	}
	if err := r.removeManifest(ctx, repo, d); err != nil {
		return fmt.Errorf("delete manifest %s@%s: %w", repo, d, err)
	}
	return nil
}

// removeManifest removes the tags of d in name, its referrers entry, and
// its revision last.
func (r *Registry) removeManifest(ctx context.Context, name string, d digest.Digest) error {
	got, err := r.readLink(ctx, revisionLinkPath(name, d))
	if errors.Is(err, ErrNotFound) || (err == nil && got != d) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if err := r.untagAll(ctx, name, d); err != nil {
		return err
	}
	if size, err := r.blobSize(ctx, d); err == nil && size <= r.maxManifestSize {
		if body, err := r.driver.GetContent(ctx, blobDataPath(d)); err == nil {
			if subj, ok := manifestSubject(body); ok {
				if err := r.deletePath(ctx, referrerPath(name, subj, d)); err != nil {
					return err
				}
			}
		}
	}
	if err := r.deletePath(ctx, revisionDir(name, d)); err != nil {
		return fmt.Errorf("deleting manifest %s from %s: %w", d, name, err)
	}
	return nil
}

// untagAll removes every tag of name that points at d.
func (r *Registry) untagAll(ctx context.Context, name string, d digest.Digest) error {
	tags, err := r.list(ctx, tagsPath(name))
	if err != nil {
		return err
	}
	for _, t := range tags {
		if !imgref.ValidTag(t) {
			continue
		}
		got, err := r.readLink(ctx, tagLinkPath(name, t))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if got == d {
			if err := r.deletePath(ctx, tagDir(name, t)); err != nil {
				return fmt.Errorf("untagging %s:%s: %w", name, t, err)
			}
		}
	}
	return nil
}
