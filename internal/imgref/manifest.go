package imgref

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types drydock reads besides the OCI ones.
const (
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
)

// Kind is what a manifest is to the gate.
type Kind int

const (
	// KindUnknown is a manifest of a media type drydock does not know: it
	// is neither judged as an image nor followed as an artifact.
	KindUnknown Kind = iota
	// KindIndex is an image index (or Docker manifest list); its verdict
	// covers every manifest reachable from it.
	KindIndex
	// KindImage is a runnable image: it enters live/ only with a passing
	// verdict of its own scan.
	KindImage
	// KindArtifact is a non-runnable artifact (a signature, an SBOM, a
	// scan report): see NonRunnable.
	KindArtifact
)

func (k Kind) String() string {
	switch k {
	case KindIndex:
		return "index"
	case KindImage:
		return "image"
	case KindArtifact:
		return "artifact"
	}
	return "unknown"
}

// Manifest is what decides a manifest's Kind, read from its JSON.
type Manifest struct {
	// MediaType is the manifest's media type: its mediaType field, else
	// the one it was stored with.
	MediaType    string
	ArtifactType string
	Config       *ocispec.Descriptor
	Layers       []ocispec.Descriptor
	// Manifests are an index's children.
	Manifests []ocispec.Descriptor
	Subject   *ocispec.Descriptor
}

// ManifestError is a manifest that cannot be read. It is a property of
// the content, so it is permanent: reading it again fails the same way.
type ManifestError struct {
	Digest string // may be empty
	Err    error
}

func (e *ManifestError) Error() string {
	if e.Digest == "" {
		return "invalid manifest: " + e.Err.Error()
	}
	return fmt.Sprintf("invalid manifest %s: %v", e.Digest, e.Err)
}

func (e *ManifestError) Unwrap() error { return e.Err }

// Permanent reports that retrying cannot help.
func (e *ManifestError) Permanent() bool { return true }

// ParseManifest reads a manifest stored (or listed) with mediaType. It
// checks only what deciding its Kind and walking it need; the registry
// validates pushed manifests in full.
func ParseManifest(mediaType string, body []byte) (*Manifest, error) {
	var raw struct {
		MediaType    string               `json:"mediaType"`
		ArtifactType string               `json:"artifactType"`
		Config       *ocispec.Descriptor  `json:"config"`
		Layers       []ocispec.Descriptor `json:"layers"`
		Manifests    []ocispec.Descriptor `json:"manifests"`
		Subject      *ocispec.Descriptor  `json:"subject"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return nil, &ManifestError{Err: fmt.Errorf("decoding JSON: %w", err)}
	}
	if dec.More() {
		return nil, &ManifestError{Err: fmt.Errorf("trailing data after the JSON object")}
	}
	mt := raw.MediaType
	if mt == "" {
		mt = mediaType
		if base, _, err := mime.ParseMediaType(mediaType); err == nil {
			mt = base
		}
	}
	m := &Manifest{MediaType: mt, ArtifactType: raw.ArtifactType, Config: raw.Config, Layers: raw.Layers,
		Manifests: raw.Manifests, Subject: raw.Subject}
	if m.Kind() == KindIndex && raw.Config != nil {
		return nil, &ManifestError{Err: fmt.Errorf("index of media type %s with a config", mt)}
	}
	if (mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest) && (raw.Config == nil || raw.Manifests != nil) {
		return nil, &ManifestError{Err: fmt.Errorf("image manifest of media type %s without a config, or with a manifests list", mt)}
	}
	return m, nil
}

// Kind returns what m is: an index, a runnable image, a non-runnable
// artifact, or unknown.
func (m *Manifest) Kind() Kind {
	switch m.MediaType {
	case ocispec.MediaTypeImageIndex, MediaTypeDockerList:
		return KindIndex
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
		if m.NonRunnable() {
			return KindArtifact
		}
		return KindImage
	}
	return KindUnknown
}

// NonRunnable is the one rule for what may follow an image into live/
// without a verdict of its own (as a referrer: signatures, SBOMs,
// attestations, scan reports; or as an index child: build attestations
// under platform unknown/unknown). An image manifest is a non-runnable
// artifact when all of these hold:
//
//   - its artifactType is not an image config media type;
//   - its config's media type is not an image config media type;
//   - none of its layers is an image layer (see IsImageLayer).
//
// An index is never a non-runnable artifact: what it holds is judged
// child by child. Anything that is not a non-runnable artifact enters
// live/ only with a passing verdict of its own.
func (m *Manifest) NonRunnable() bool {
	if m.MediaType != ocispec.MediaTypeImageManifest && m.MediaType != MediaTypeDockerManifest {
		return false
	}
	if IsImageConfig(m.ArtifactType) || m.Config == nil || IsImageConfig(m.Config.MediaType) {
		return false
	}
	for _, l := range m.Layers {
		if IsImageLayer(l.MediaType) {
			return false
		}
	}
	return true
}

// NonRunnableArtifact parses a manifest stored with mediaType and applies
// Manifest.NonRunnable to it; a manifest that cannot be read is not one.
func NonRunnableArtifact(mediaType string, body []byte) bool {
	m, err := ParseManifest(mediaType, body)
	return err == nil && m.NonRunnable()
}

// IsImageConfig reports whether mt is the media type of an image's
// runtime configuration (OCI or Docker).
func IsImageConfig(mt string) bool {
	base := baseType(mt)
	return base == ocispec.MediaTypeImageConfig || base == MediaTypeDockerConfig
}

// IsImageLayer reports whether a layer of media type mt is an image
// layer, one a container runtime unpacks into a root filesystem: an OCI
// layer type (any compression, distributable or not, encrypted) or a
// Docker rootfs type. A layer without a media type counts as one too:
// erring towards "layer" keeps the gate closed.
func IsImageLayer(mt string) bool {
	base := baseType(mt)
	return base == "" || strings.HasPrefix(base, "application/vnd.oci.image.layer.") ||
		strings.HasPrefix(base, "application/vnd.docker.image.rootfs.")
}

// baseType is mt lowercased without parameters.
func baseType(mt string) string {
	base, _, _ := strings.Cut(mt, ";")
	return strings.ToLower(strings.TrimSpace(base))
}
