// Package oci reads container images from registries, OCI image layouts,
// OCI archives and docker-archive tarballs, and copies them into a
// registry (drydock's own server) without changing their digests.
//
// The library never prints: progress goes to a callback (WithProgress),
// diagnostics to a *slog.Logger (WithLogger).
package oci

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/drydock-project/drydock/internal/imgref"
)

// Kind says where a Source lives.
type Kind string

// The kinds of Source.
const (
	KindRegistry      Kind = "registry"       // a registry reference, e.g. nginx:1.27.1
	KindOCILayout     Kind = "oci"            // oci:DIR[:TAG]
	KindOCIArchive    Kind = "oci-archive"    // oci-archive:FILE[:TAG]
	KindDockerArchive Kind = "docker-archive" // docker-archive:FILE[:NAME:TAG|:@INDEX]
)

// ErrBadSource is wrapped by every error ParseSource returns.
var ErrBadSource = errors.New("invalid source")

// Source names an image or index before it is opened. Build one with
// ParseSource; the zero value is not valid.
type Source struct {
	Kind Kind
	// Ref is the registry reference (KindRegistry only), normalized as
	// docker does: "nginx" is index.docker.io/library/nginx:latest.
	Ref name.Reference
	// Path is the directory or file of a local source.
	Path string
	// Tag selects an image inside a layout or archive: the
	// org.opencontainers.image.ref.name annotation for oci: and
	// oci-archive:, a NAME:TAG from RepoTags for docker-archive:. Empty
	// means "the only one".
	Tag string
	// Index selects the n-th image of a docker-archive (":@N"); -1 if unset.
	Index int
}

// ParseSource parses a SRC argument: a registry reference (optionally
// prefixed with docker://), oci:DIR[:TAG], oci-archive:FILE[:TAG] or
// docker-archive:FILE[:NAME:TAG|:@INDEX]. As in containers/image, the
// first colon after the transport separates the path from the tag, so
// paths containing colons are not supported in those forms.
func ParseSource(s string) (Source, error) {
	if s == "" {
		return Source{}, fmt.Errorf("%w: empty source", ErrBadSource)
	}
	if strings.ContainsAny(s, "\x00\n\r") {
		return Source{}, fmt.Errorf("%w %q: control characters", ErrBadSource, s)
	}
	transport, rest, hasTransport := strings.Cut(s, ":")
	if hasTransport {
		switch transport {
		case "oci", "oci-archive":
			path, tag, _ := strings.Cut(rest, ":")
			if path == "" {
				return Source{}, fmt.Errorf("%w %q: missing path after %q", ErrBadSource, s, transport+":")
			}
			if tag != "" && !imgref.ValidTag(tag) {
				return Source{}, fmt.Errorf("%w %q: bad tag %q (want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})", ErrBadSource, s, tag)
			}
			return Source{Kind: Kind(transport), Path: path, Tag: tag, Index: -1}, nil
		case "docker-archive":
			path, sel, _ := strings.Cut(rest, ":")
			if path == "" {
				return Source{}, fmt.Errorf("%w %q: missing path after %q", ErrBadSource, s, "docker-archive:")
			}
			src := Source{Kind: KindDockerArchive, Path: path, Index: -1}
			switch {
			case sel == "":
			case strings.HasPrefix(sel, "@"):
				var n int
				if _, err := fmt.Sscanf(sel, "@%d", &n); err != nil || n < 0 || fmt.Sprintf("@%d", n) != sel {
					return Source{}, fmt.Errorf("%w %q: bad image index %q (want @N, N >= 0)", ErrBadSource, s, sel)
				}
				src.Index = n
			default:
				if _, err := name.NewTag(sel); err != nil {
					return Source{}, fmt.Errorf("%w %q: bad image name %q: %w", ErrBadSource, s, sel, err)
				}
				src.Tag = sel
			}
			return src, nil
		case "docker":
			// skopeo's docker://REF; "docker:5000/app" is a host and port.
			if after, ok := strings.CutPrefix(rest, "//"); ok {
				s = after
			}
		case "http", "https":
			return Source{}, fmt.Errorf("%w %q: a registry reference has no scheme (write HOST/REPO:TAG)", ErrBadSource, s)
		}
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return Source{}, fmt.Errorf("%w %q: %w", ErrBadSource, s, err)
	}
	if reg := ref.Context().RegistryStr(); !registryRE.MatchString(reg) {
		return Source{}, fmt.Errorf("%w %q: bad registry host %q (want HOST[:PORT])", ErrBadSource, s, reg)
	}
	return Source{Kind: KindRegistry, Ref: ref, Index: -1}, nil
}

// String returns the source in the form ParseSource accepts.
func (s Source) String() string {
	switch s.Kind {
	case KindRegistry:
		if s.Ref == nil {
			return ""
		}
		return s.Ref.Name()
	case KindDockerArchive:
		switch {
		case s.Index >= 0:
			return fmt.Sprintf("%s:%s:@%d", s.Kind, s.Path, s.Index)
		case s.Tag != "":
			return fmt.Sprintf("%s:%s:%s", s.Kind, s.Path, s.Tag)
		}
		return fmt.Sprintf("%s:%s", s.Kind, s.Path)
	default:
		if s.Tag != "" {
			return fmt.Sprintf("%s:%s:%s", s.Kind, s.Path, s.Tag)
		}
		return fmt.Sprintf("%s:%s", s.Kind, s.Path)
	}
}

// registryRE matches HOST[:PORT]: DNS labels or a bracketed IPv6 address.
var registryRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// NameFromReference derives a repository path and tag from a registry
// reference, the way "drydock import" names what it imports: Docker Hub's
// library/ prefix is dropped (docker.io/library/nginx:1.27.1 -> nginx,
// 1.27.1), other registries keep the whole repository path
// (ghcr.io/org/app:v1 -> org/app, v1). A digest reference gets the tag
// "sha256-<hex>".
func NameFromReference(ref name.Reference) (repo, tag string) {
	repo = ref.Context().RepositoryStr()
	if ref.Context().RegistryStr() == name.DefaultRegistry {
		repo = strings.TrimPrefix(repo, "library/")
	}
	switch r := ref.(type) {
	case name.Tag:
		tag = r.TagStr()
	case name.Digest:
		tag = strings.Replace(r.DigestStr(), ":", "-", 1)
	}
	return repo, tag
}

// nameFromPath derives a repository name from a file or directory name:
// lowercased, archive extensions dropped, other characters replaced by "-".
// A generic directory name (oci, oci-layout) defers to its parent's name.
func nameFromPath(p string) string {
	p = filepath.Clean(p)
	base := strings.ToLower(filepath.Base(p))
	switch base {
	case "oci", "oci-layout":
		if parent := filepath.Base(filepath.Dir(p)); parent != "." && parent != string(filepath.Separator) {
			base = strings.ToLower(parent)
		}
	}
	for _, ext := range []string{".tar.gz", ".tgz", ".tar", ".oci"} {
		base = strings.TrimSuffix(base, ext)
	}
	var b strings.Builder
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	out := strings.Trim(b.String(), "._-")
	if out == "" || out == "." {
		return ""
	}
	if _, err := name.NewRepository(out); err != nil {
		return ""
	}
	return out
}
