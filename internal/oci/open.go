package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/drydock-project/drydock/internal/imgref"
)

// annotationRefName is the OCI layout annotation that names a manifest.
const annotationRefName = "org.opencontainers.image.ref.name"

// Artifact is an opened image or index. Exactly one of Image and Index is
// set. Close releases what Open acquired (open files, unpacked archives).
type Artifact struct {
	Source Source
	// Descriptor describes the top manifest: media type, digest, size.
	Descriptor v1.Descriptor
	Image      v1.Image
	Index      v1.ImageIndex
	// RefName is the name the source gives the artifact (a layout's
	// ref.name annotation, a docker-archive RepoTags entry); may be empty.
	RefName string

	// stat reports the size of a blob held by a local source, for
	// validation before anything is written; nil for registries.
	stat    func(v1.Hash) (int64, error)
	closers []func() error
}

// IsIndex reports whether the artifact is an image index.
func (a *Artifact) IsIndex() bool { return a.Index != nil }

// Close releases the artifact's resources. It is safe to call twice.
func (a *Artifact) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// SuggestedName returns the repository path and tag an import of this
// artifact lands under by default (without the quarantine/ prefix), or
// repo == "" when none can be derived and the caller must name it.
func (a *Artifact) SuggestedName() (repo, tag string) {
	s := a.Source
	switch s.Kind {
	case KindRegistry:
		return NameFromReference(s.Ref)
	case KindDockerArchive:
		if a.RefName != "" {
			if ref, err := name.ParseReference(a.RefName); err == nil {
				return NameFromReference(ref)
			}
		}
		return nameFromPath(s.Path), "latest"
	default: // layouts
		tag = s.Tag
		if tag == "" && imgref.ValidTag(a.RefName) {
			tag = a.RefName
		}
		if tag == "" && a.RefName != "" {
			if ref, err := name.NewTag(a.RefName); err == nil {
				tag = ref.TagStr()
			}
		}
		if tag == "" {
			tag = "latest"
		}
		return nameFromPath(s.Path), tag
	}
}

// Open parses src (see ParseSource) and opens it.
func Open(ctx context.Context, src string, opts ...Option) (*Artifact, error) {
	s, err := ParseSource(src)
	if err != nil {
		return nil, err
	}
	return s.Open(ctx, opts...)
}

// Open reads the source's top manifest (and, for local sources, validates
// the layout or archive) and returns the artifact. Registry credentials
// come from WithAuth or the keychain (WithKeychain, default
// authn.DefaultKeychain).
func (s Source) Open(ctx context.Context, opts ...Option) (*Artifact, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch s.Kind {
	case KindRegistry:
		return openRegistry(ctx, s, o)
	case KindOCILayout:
		return openLayout(s, s.Path)
	case KindOCIArchive:
		return openOCIArchive(ctx, s, o)
	case KindDockerArchive:
		return openDockerArchive(ctx, s, o)
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", ErrBadSource, s.Kind)
	}
}

func remoteOptions(ctx context.Context, o *options) []remote.Option {
	ro := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(o.transport),
		remote.WithUserAgent(o.userAgent),
		remote.WithJobs(o.jobs),
	}
	if o.auth != nil {
		ro = append(ro, remote.WithAuth(o.auth))
	} else {
		ro = append(ro, remote.WithAuthFromKeychain(o.keychain))
	}
	return ro
}

func openRegistry(ctx context.Context, s Source, o *options) (*Artifact, error) {
	reg := s.Ref.Context().RegistryStr()
	desc, err := remote.Get(s.Ref, remoteOptions(ctx, o)...)
	if err != nil {
		return nil, fmt.Errorf("fetching manifest %s: %w", s.Ref.Name(), classify(reg, err))
	}
	a := &Artifact{Source: s, Descriptor: desc.Descriptor}
	switch {
	case desc.MediaType.IsIndex():
		a.Index, err = desc.ImageIndex()
	case desc.MediaType.IsSchema1():
		return nil, fmt.Errorf("fetching manifest %s: Docker schema 1 manifests (%s) are not supported", s.Ref.Name(), desc.MediaType)
	default:
		a.Image, err = desc.Image()
	}
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", s.Ref.Name(), classify(reg, err))
	}
	o.logger.Debug("opened registry source", "ref", s.Ref.Name(), "digest", desc.Digest.String(), "mediaType", string(desc.MediaType))
	return a, nil
}

// openLayout opens the OCI image layout in dir (the source's own directory
// for oci:, an unpacked copy for oci-archive:).
func openLayout(s Source, dir string) (*Artifact, error) {
	what := fmt.Sprintf("OCI layout %s", s.Path)
	if s.Kind == KindOCIArchive {
		what = fmt.Sprintf("OCI archive %s", s.Path)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", what, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("opening %s: not a directory (use oci-archive: for a tar file)", what)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "oci-layout")); err != nil {
		return nil, fmt.Errorf("opening %s: missing oci-layout file: %w", what, err)
	} else {
		var l struct {
			Version string `json:"imageLayoutVersion"`
		}
		if err := json.Unmarshal(b, &l); err != nil || l.Version == "" {
			return nil, fmt.Errorf("opening %s: invalid oci-layout file", what)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", what, err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("opening %s: parsing index.json: %w", what, err)
	}
	desc, err := selectLayoutManifest(im.Manifests, s.Tag)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", what, err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", what, err)
	}
	a := &Artifact{Source: s, Descriptor: desc, RefName: desc.Annotations[annotationRefName]}
	a.stat = func(h v1.Hash) (int64, error) {
		fi, err := os.Stat(filepath.Join(dir, "blobs", h.Algorithm, h.Hex))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return 0, fmt.Errorf("blob %s is missing from %s: %w", h, what, ErrNotFound)
			}
			return 0, err
		}
		return fi.Size(), nil
	}
	if _, err := a.stat(desc.Digest); err != nil {
		return nil, fmt.Errorf("opening %s: manifest %w", what, err)
	}
	switch {
	case desc.MediaType.IsIndex():
		a.Index, err = idx.ImageIndex(desc.Digest)
	case desc.MediaType.IsSchema1():
		return nil, fmt.Errorf("opening %s: Docker schema 1 manifests are not supported", what)
	default:
		a.Image, err = idx.Image(desc.Digest)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: manifest %s: %w", what, desc.Digest, err)
	}
	return a, nil
}

// selectLayoutManifest picks the manifest named tag from a layout's
// index.json, or the only one when tag is empty.
func selectLayoutManifest(ms []v1.Descriptor, tag string) (v1.Descriptor, error) {
	var names []string
	for _, d := range ms {
		if n := d.Annotations[annotationRefName]; n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if tag == "" {
		switch len(ms) {
		case 0:
			return v1.Descriptor{}, errors.New("index.json lists no manifests")
		case 1:
			return ms[0], nil
		}
		return v1.Descriptor{}, fmt.Errorf("index.json lists %d manifests; name one with :TAG (tags: %s)", len(ms), strings.Join(names, ", "))
	}
	for _, d := range ms {
		if n := d.Annotations[annotationRefName]; n == tag || strings.HasSuffix(n, ":"+tag) && !strings.Contains(tag, ":") {
			if d.MediaType == "" {
				d.MediaType = types.OCIManifestSchema1
			}
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no manifest tagged %q (tags: %s): %w", tag, strings.Join(names, ", "), ErrNotFound)
}

// openOCIArchive unpacks the archive into a temporary directory and opens
// it as a layout; Close removes the directory.
func openOCIArchive(ctx context.Context, s Source, o *options) (*Artifact, error) {
	dir, err := os.MkdirTemp(o.tempDir, "drydock-oci-archive-")
	if err != nil {
		return nil, fmt.Errorf("opening OCI archive %s: %w", s.Path, err)
	}
	cleanup := func() error { return os.RemoveAll(dir) }
	if err := untar(ctx, s.Path, dir); err != nil {
		_ = cleanup()
		return nil, fmt.Errorf("opening OCI archive %s: %w", s.Path, err)
	}
	a, err := openLayout(s, dir)
	if err != nil {
		_ = cleanup()
		return nil, err
	}
	a.closers = append(a.closers, cleanup)
	return a, nil
}

// readLimited reads at most limit bytes from r, failing if there are more.
func readLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", what, limit)
	}
	return b, nil
}

// Digest returns the digest of the top manifest.
func (a *Artifact) Digest() (v1.Hash, error) {
	if a.Index != nil {
		return a.Index.Digest()
	}
	if a.Image != nil {
		return a.Image.Digest()
	}
	return v1.Hash{}, errors.New("empty artifact")
}
