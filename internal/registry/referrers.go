package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/imgref"
)

// Referrers are recorded when a manifest with a subject is pushed: one small
// file per (subject, referrer) under <repo>/_referrers/<alg>/<hex>/, holding
// the referrer's descriptor. Listing reads that one directory; no manifest
// is parsed and no repository is scanned.

func (r *Registry) addReferrer(ctx context.Context, name string, subject digest.Digest, desc ocispec.Descriptor) error {
	b, err := json.Marshal(desc)
	if err != nil {
		return fmt.Errorf("encoding referrer %s: %w", desc.Digest, err)
	}
	if err := r.putAtomic(ctx, referrerPath(name, subject, desc.Digest), b); err != nil {
		return fmt.Errorf("recording referrer %s of %s: %w", desc.Digest, subject, err)
	}
	return nil
}

// referrers lists the descriptors of manifests in name whose subject is
// subject, sorted by digest, keeping only the given artifactType if set.
// Entries whose manifest is gone (deleted, or an interrupted push) are
// skipped.
func (r *Registry) referrers(ctx context.Context, name string, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	entries, err := r.list(ctx, referrersDir(name, subject))
	if err != nil {
		return nil, err
	}
	out := []ocispec.Descriptor{}
	for _, e := range entries {
		alg, enc, ok := strings.Cut(e, "-")
		if !ok {
			continue
		}
		rd, err := imgref.ParseDigest(alg + ":" + enc)
		if err != nil {
			continue
		}
		b, err := r.driver.GetContent(ctx, path.Join(referrersDir(name, subject), e))
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("reading referrer %s: %w", rd, err)
		}
		var desc ocispec.Descriptor
		if json.Unmarshal(b, &desc) != nil || desc.Digest != rd {
			continue
		}
		if artifactType != "" && desc.ArtifactType != artifactType {
			continue
		}
		if got, err := r.readLink(ctx, revisionLinkPath(name, rd)); err != nil || got != rd {
			if err != nil && !errors.Is(err, ErrNotFound) {
				return nil, err
			}
			continue
		}
		out = append(out, desc)
	}
	slices.SortFunc(out, func(a, b ocispec.Descriptor) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	return out, nil
}

// Referrers lists the descriptors of the manifests in repo whose subject is
// subject, sorted by digest; artifactType, if not empty, filters them.
func (r *Registry) Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	if !imgref.ValidRepository(repo) {
		return nil, fmt.Errorf("listing referrers in %q: invalid repository name: %w", repo, ErrNotFound)
	}
	if _, err := imgref.ParseDigest(subject.String()); err != nil {
		return nil, fmt.Errorf("listing referrers in %s: %w", repo, err)
	}
	descs, err := r.referrers(ctx, repo, subject, artifactType)
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s in %s: %w", subject, repo, err)
	}
	return descs, nil
}

func (r *Registry) serveReferrers(w http.ResponseWriter, req *http.Request, name, ref string) error {
	d, err := digestParam(ref)
	if err != nil {
		return err
	}
	at := req.URL.Query().Get("artifactType")
	descs, err := r.referrers(req.Context(), name, d, at)
	if err != nil {
		return err
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: descs}
	idx.SchemaVersion = 2
	b, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("encoding referrers of %s: %w", d, err)
	}
	h := w.Header()
	h.Set("Content-Type", ocispec.MediaTypeImageIndex)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if at != "" {
		h.Set("OCI-Filters-Applied", "artifactType")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}
