// Package testimage builds real, vulnerable Debian container images for tests.
//
// No container registry is reachable from the test machines, so tests build
// their images from the machine's Debian mirror: debootstrap (minbase) of a
// release's main suite only, so the image really has pending security
// updates; a distroless-style image assembled from .debs; and foreign
// architecture images made with mmdebstrap's chrootless mode (no emulation).
//
// Every product lands in one cache, ${DRYDOCK_CACHE:-$HOME/.cache/drydock}/testimages,
// as an OCI image layout per image, keyed by the spec and rebuilt only when
// missing. Builds are atomic and serialised across processes with a file lock,
// so parallel `go test` packages never build the same image twice.
//
// The package is test-only: it shells out to debootstrap, mmdebstrap,
// dpkg-deb and skopeo, and needs root for debootstrap.
package testimage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/drydock-project/drydock/internal/config"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BuilderVersion joins every cache key: bump it when a change to the builder
// changes what it produces, and every cached image is rebuilt.
const BuilderVersion = "3"

// Kind is how an image's root filesystem is made.
type Kind string

const (
	// Debootstrap runs `debootstrap --variant=minbase` of the main suite.
	Debootstrap Kind = "debootstrap"
	// Distroless extracts a fixed set of .debs (no maintainer scripts) and
	// records them in /var/lib/dpkg/status.d/ as Google's distroless does.
	Distroless Kind = "distroless"
	// Chrootless runs `mmdebstrap --mode=chrootless --variant=essential`,
	// which builds any architecture without executing its binaries.
	Chrootless Kind = "chrootless"
)

// Spec describes one test image. Its fields (with BuilderVersion and the
// mirror) form the cache key.
type Spec struct {
	Name  string // cache directory and OCI ref name, e.g. "bookworm-nginx"
	Suite string // Debian codename: bullseye, bookworm, trixie
	Arch  string // Debian architecture: amd64, arm64
	Kind  Kind
	// Include lists extra packages (Debootstrap, Chrootless) or, for
	// Distroless, the complete package set.
	Include []string `json:",omitempty"`
	// Cmd is the image config's Cmd; nil for none.
	Cmd []string `json:",omitempty"`
}

// The catalog. Every image comes from the main suite only.
var (
	Bookworm = Spec{Name: "bookworm", Suite: "bookworm", Arch: "amd64", Kind: Debootstrap,
		Cmd: []string{"bash"}}
	BookwormNginx = Spec{Name: "bookworm-nginx", Suite: "bookworm", Arch: "amd64", Kind: Debootstrap,
		Include: []string{"nginx-light", "ca-certificates"}, Cmd: []string{"nginx", "-g", "daemon off;"}}
	BullseyeNginxCurl = Spec{Name: "bullseye-nginx-curl", Suite: "bullseye", Arch: "amd64", Kind: Debootstrap,
		Include: []string{"nginx-light", "ca-certificates", "curl"}, Cmd: []string{"nginx", "-g", "daemon off;"}}
	Trixie = Spec{Name: "trixie", Suite: "trixie", Arch: "amd64", Kind: Debootstrap,
		Include: []string{"ca-certificates", "openssl", "nginx-light", "curl"}, Cmd: []string{"nginx", "-g", "daemon off;"}}
	// DistrolessBookworm is shaped like gcr.io/distroless/base-debian12.
	DistrolessBookworm = Spec{Name: "distroless-bookworm", Suite: "bookworm", Arch: "amd64", Kind: Distroless,
		Include: []string{"base-files", "ca-certificates", "libc6", "libssl3", "media-types", "netbase", "tzdata"}}
	// TrixieAmd64 and TrixieArm64 are the two platforms of MultiArchTrixie:
	// same release, same package set, both built chrootless. Chrootless
	// images include only DPKG_ROOT-aware packages: ca-certificates' postinst
	// is not (it would edit the host's CA configuration).
	TrixieAmd64 = Spec{Name: "trixie-chrootless-amd64", Suite: "trixie", Arch: "amd64", Kind: Chrootless,
		Include: []string{"apt"}, Cmd: []string{"bash"}}
	TrixieArm64 = Spec{Name: "trixie-chrootless-arm64", Suite: "trixie", Arch: "arm64", Kind: Chrootless,
		Include: []string{"apt"}, Cmd: []string{"bash"}}
)

// MultiArchTrixie is the name of the two-platform index of TrixieAmd64 and
// TrixieArm64; build it with BuildIndex(ctx, MultiArchTrixie, MultiArchSpecs...).
const MultiArchTrixie = "trixie-multiarch"

// MultiArchSpecs are the platforms of MultiArchTrixie.
var MultiArchSpecs = []Spec{TrixieAmd64, TrixieArm64}

// DistrolessBookwormArm64 is DistrolessBookworm for arm64: built without
// running anything, like its amd64 twin, so any host can build it.
var DistrolessBookwormArm64 = Spec{Name: "distroless-bookworm-arm64", Suite: "bookworm", Arch: "arm64", Kind: Distroless,
	Include: DistrolessBookworm.Include}

// MultiArchDistroless is the name of the two-platform index of
// DistrolessBookworm and DistrolessBookwormArm64. Unlike trixie's main
// suite, bookworm's has pending security updates, so patching this index
// changes both platforms.
const MultiArchDistroless = "distroless-bookworm-multiarch"

// MultiArchDistrolessSpecs are the platforms of MultiArchDistroless.
var MultiArchDistrolessSpecs = []Spec{DistrolessBookworm, DistrolessBookwormArm64}

// Indexes lists every multi-platform index by name, with its platforms.
func Indexes() map[string][]Spec {
	return map[string][]Spec{MultiArchTrixie: MultiArchSpecs, MultiArchDistroless: MultiArchDistrolessSpecs}
}

// Catalog lists every single-platform image, smallest first.
func Catalog() []Spec {
	return []Spec{DistrolessBookworm, DistrolessBookwormArm64, TrixieArm64, TrixieAmd64, Bookworm, Trixie, BookwormNginx, BullseyeNginxCurl}
}

// Lookup finds a catalog image by name.
func Lookup(name string) (Spec, bool) {
	for _, s := range Catalog() {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// Validate reports a spec the builder cannot build.
func (s Spec) Validate() error {
	switch {
	case !validName(s.Name):
		return fmt.Errorf("testimage: invalid spec name %q", s.Name)
	case s.Suite == "":
		return fmt.Errorf("testimage: spec %q: no suite", s.Name)
	case s.Kind != Debootstrap && s.Kind != Distroless && s.Kind != Chrootless:
		return fmt.Errorf("testimage: spec %q: unknown kind %q", s.Name, s.Kind)
	case s.Kind == Distroless && len(s.Include) == 0:
		return fmt.Errorf("testimage: spec %q: a distroless image needs its package set in Include", s.Name)
	}
	if _, err := platformOf(s.Arch); err != nil {
		return fmt.Errorf("testimage: spec %q: %w", s.Name, err)
	}
	return nil
}

// validName accepts names usable as a cache directory and OCI ref name.
func validName(name string) bool {
	if name == "" || name == "apt" || filepath.Base(name) != name || name[0] == '.' || len(name) > 128 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Platform is the OCI platform of the spec's architecture.
func (s Spec) Platform() v1.Platform {
	p, _ := platformOf(s.Arch)
	return p
}

// key is the cache key: the spec, the builder version and the mirror.
func (s Spec) key(m MirrorInfo) string {
	return keyOf(struct {
		Spec    Spec
		Builder string
		Mirror  MirrorInfo
	}{s, BuilderVersion, m})
}

func keyOf(v any) string {
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func platformOf(debArch string) (v1.Platform, error) {
	switch debArch {
	case "amd64":
		return v1.Platform{OS: "linux", Architecture: "amd64"}, nil
	case "arm64":
		return v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, nil
	case "armhf":
		return v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, nil
	case "armel":
		return v1.Platform{OS: "linux", Architecture: "arm", Variant: "v5"}, nil
	case "i386":
		return v1.Platform{OS: "linux", Architecture: "386"}, nil
	case "ppc64el":
		return v1.Platform{OS: "linux", Architecture: "ppc64le"}, nil
	case "s390x", "riscv64":
		return v1.Platform{OS: "linux", Architecture: debArch}, nil
	}
	return v1.Platform{}, fmt.Errorf("unsupported Debian architecture %q", debArch)
}

// Image is a built test image: an OCI image layout holding one image whose
// org.opencontainers.image.ref.name annotation is Ref.
type Image struct {
	Spec      Spec
	LayoutDir string  // OCI image layout directory
	Ref       string  // ref name in the layout (= Spec.Name)
	Digest    v1.Hash // manifest digest
	Platform  v1.Platform
	Size      int64      // bytes of the compressed layer
	Mirror    MirrorInfo // the mirror it was built from
	// Reused is true when the image came from the cache; BuildTime is how
	// long building took (when it was built, or the original build time).
	Reused    bool
	BuildTime time.Duration
}

// OCIReference is the image's transport reference for skopeo and podman:
// "oci:DIR:REF".
func (i *Image) OCIReference() string { return "oci:" + i.LayoutDir + ":" + i.Ref }

// Index is a built multi-platform image: an OCI layout holding one image
// index whose ref name is Ref.
type Index struct {
	Name      string
	LayoutDir string
	Ref       string
	Digest    v1.Hash
	Images    []*Image // the platforms, in the order given to BuildIndex
	Reused    bool
	BuildTime time.Duration
}

// OCIReference is "oci:DIR:REF".
func (x *Index) OCIReference() string { return "oci:" + x.LayoutDir + ":" + x.Ref }

// Option tunes Build and BuildIndex.
type Option func(*options) error

type options struct {
	cacheDir string
	mirror   *MirrorInfo
	epoch    time.Time
	log      io.Writer
	rebuild  bool
}

// DefaultEpoch is the fixed creation time of every image and the clamp for
// file modification times (a SOURCE_DATE_EPOCH).
var DefaultEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// WithCacheDir builds into dir (its "testimages" subdirectory) instead of the
// default cache.
func WithCacheDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return fmt.Errorf("testimage: empty cache dir")
		}
		o.cacheDir = dir
		return nil
	}
}

// WithMirror uses m instead of the machine's apt sources.
func WithMirror(m MirrorInfo) Option {
	return func(o *options) error {
		if m.URI == "" {
			return fmt.Errorf("testimage: mirror without URI")
		}
		o.mirror = &m
		return nil
	}
}

// WithEpoch sets the image creation time and the mtime clamp.
func WithEpoch(t time.Time) Option {
	return func(o *options) error {
		if t.IsZero() || t.Unix() < 0 {
			return fmt.Errorf("testimage: invalid epoch %v", t)
		}
		o.epoch = t.UTC().Truncate(time.Second)
		return nil
	}
}

// WithLog sends the output of the build tools to w (default: discarded,
// except in errors).
func WithLog(w io.Writer) Option {
	return func(o *options) error { o.log = w; return nil }
}

// WithRebuild rebuilds even when the cache holds the image.
func WithRebuild() Option {
	return func(o *options) error { o.rebuild = true; return nil }
}

// DefaultCacheDir is drydock's cache directory (config.DefaultCacheDir).
func DefaultCacheDir() (string, error) { return config.DefaultCacheDir() }

func newOptions(opts []Option) (*options, error) {
	o := &options{epoch: DefaultEpoch, log: io.Discard}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		o.cacheDir = d
	}
	if o.mirror == nil {
		m, err := Mirror()
		if err != nil {
			return nil, err
		}
		o.mirror = &m
	}
	return o, nil
}

// root is the testimages directory of the cache.
func (o *options) root() string { return filepath.Join(o.cacheDir, "testimages") }
