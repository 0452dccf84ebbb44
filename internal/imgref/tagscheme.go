package imgref

import (
	"regexp"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Cosign's tag scheme: before OCI 1.1 referrers, cosign stored what it
// attaches to a manifest <alg>:<hex> as a manifest tagged <alg>-<hex>.sig
// (signatures), .att (attestations) or .sbom (SBOMs) in the same
// repository. Such a manifest carries an image config media type (cosign
// builds it as an image whose "layers" are the signed payloads), so it is
// not a non-runnable artifact by NonRunnable; it is one only through its
// tag, and only when every layer is of the kind its tag names. This is
// the one place that decides it; TagScheme and TagSchemeArtifact are the
// tag-scheme half of the rule of what may follow a subject into live/
// without a verdict of its own (see NonRunnable for the other half).

// Tag-scheme suffixes.
const (
	SuffixSignature   = "sig"
	SuffixAttestation = "att"
	SuffixSBOM        = "sbom"
)

// Media types of the layers of cosign's tag-scheme manifests, and of the
// referrers cosign, notation and drydock write.
const (
	MediaTypeCosignSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	MediaTypeDSSEEnvelope        = "application/vnd.dsse.envelope.v1+json"
	MediaTypeSPDX                = "text/spdx"
	MediaTypeSPDXJSON            = "text/spdx+json"
	MediaTypeCycloneDXXML        = "application/vnd.cyclonedx+xml"
	MediaTypeCycloneDXJSON       = "application/vnd.cyclonedx+json"
	MediaTypeSyftJSON            = "application/vnd.syft+json"
	// ArtifactTypeCosignSignature is the artifactType (and config media
	// type) of a cosign signature written as an OCI 1.1 referrer.
	ArtifactTypeCosignSignature = "application/vnd.dev.cosign.artifact.sig.v1+json"
	// ArtifactTypeNotarySignature is a Notary Project signature.
	ArtifactTypeNotarySignature = "application/vnd.cncf.notary.signature"
	// ArtifactTypeSigstoreBundle is a sigstore bundle (cosign v3).
	ArtifactTypeSigstoreBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// tagSchemeLayers are the layer media types each suffix may hold.
var tagSchemeLayers = map[string]map[string]bool{
	SuffixSignature:   {MediaTypeCosignSimpleSigning: true},
	SuffixAttestation: {MediaTypeDSSEEnvelope: true},
	SuffixSBOM: {MediaTypeSPDX: true, MediaTypeSPDXJSON: true, MediaTypeCycloneDXXML: true,
		MediaTypeCycloneDXJSON: true, MediaTypeSyftJSON: true},
}

// tagSchemeRE is <alg>-<hex>.<suffix> with the hex length of the
// algorithm; sha256 is what cosign writes, sha512 what a registry with
// sha512 digests would give it.
var tagSchemeRE = regexp.MustCompile(`^(sha256-[0-9a-f]{64}|sha512-[0-9a-f]{128})\.(sig|att|sbom)$`)

// TagScheme is what a tag of cosign's tag scheme names: the subject's
// digest and the kind of content (a Suffix... constant).
type TagScheme struct {
	Subject digest.Digest
	Suffix  string
}

// Tag is the tag-scheme tag for the subject and suffix:
// sha256-<hex>.sig.
func (t TagScheme) Tag() string {
	return string(t.Subject.Algorithm()) + "-" + t.Subject.Encoded() + "." + t.Suffix
}

// TagSchemeTag returns the tag cosign uses for suffix and subject.
func TagSchemeTag(subject digest.Digest, suffix string) string {
	return TagScheme{Subject: subject, Suffix: suffix}.Tag()
}

// ParseTagScheme reads a tag of cosign's tag scheme. It reports false
// for every other tag, including near misses (upper-case hex, a wrong
// length, another suffix or algorithm).
func ParseTagScheme(tag string) (TagScheme, bool) {
	m := tagSchemeRE.FindStringSubmatch(tag)
	if m == nil {
		return TagScheme{}, false
	}
	alg, hex := m[1][:6], m[1][7:]
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	if d.Validate() != nil {
		return TagScheme{}, false
	}
	return TagScheme{Subject: d, Suffix: m[2]}, true
}

// TagSchemeContent reports whether m is content of the kind suffix names
// in cosign's tag scheme, and so may follow its subject (the digest its
// tag names) without a verdict of its own. All of these must hold:
//
//   - m is an image manifest (OCI or Docker), not an index;
//   - it has at least one layer, and every layer is of a media type of
//     the suffix's kind (cosign's simple signing payload for .sig, a
//     DSSE envelope for .att, an SPDX, CycloneDX or Syft document for
//     .sbom): none is an image layer;
//   - its artifactType, if any, is not an image config media type;
//   - its subject, if any, is the tag's subject.
//
// Its config may be an image config: cosign writes one, and with no
// image layer there is nothing for a runtime to run.
func (m *Manifest) TagSchemeContent(t TagScheme) bool {
	if m.MediaType != ocispec.MediaTypeImageManifest && m.MediaType != MediaTypeDockerManifest {
		return false
	}
	allowed := tagSchemeLayers[t.Suffix]
	if allowed == nil || len(m.Layers) == 0 || IsImageConfig(m.ArtifactType) || m.Config == nil {
		return false
	}
	if m.Subject != nil && m.Subject.Digest != t.Subject {
		return false
	}
	for _, l := range m.Layers {
		if !allowed[baseType(l.MediaType)] || IsImageLayer(l.MediaType) {
			return false
		}
	}
	return true
}

// TagSchemeArtifact applies the tag-scheme rule to the manifest stored
// with mediaType under tag: it returns what the tag names and true when
// the tag is of cosign's scheme and the manifest is content of its kind
// (Manifest.TagSchemeContent).
func TagSchemeArtifact(tag, mediaType string, body []byte) (TagScheme, bool) {
	t, ok := ParseTagScheme(tag)
	if !ok {
		return TagScheme{}, false
	}
	m, err := ParseManifest(mediaType, body)
	if err != nil || !m.TagSchemeContent(t) {
		return TagScheme{}, false
	}
	return t, true
}

// Classes of what follows a subject, for display and for the gate
// policy's list of what may follow (see Class).
const (
	ClassSignature   = "signature"
	ClassAttestation = "attestation"
	ClassSBOM        = "sbom"
	ClassVEX         = "vex"
	ClassScanReport  = "scan-report"
	ClassArtifact    = "artifact"
)

// Classes lists every class Class returns.
var Classes = []string{ClassSignature, ClassAttestation, ClassSBOM, ClassVEX, ClassScanReport, ClassArtifact}

// classOfType classes a media or artifact type; "" when it tells nothing.
func classOfType(mt string) string {
	switch base := baseType(mt); {
	case base == "":
		return ""
	case base == ArtifactTypeCosignSignature || base == MediaTypeCosignSimpleSigning ||
		base == ArtifactTypeNotarySignature || base == ArtifactTypeSigstoreBundle:
		return ClassSignature
	case base == MediaTypeDSSEEnvelope || base == "application/vnd.in-toto+json" ||
		base == "application/vnd.dev.cosign.artifact.att.v1+json":
		return ClassAttestation
	case tagSchemeLayers[SuffixSBOM][base] || base == "application/vnd.dev.cosign.artifact.sbom.v1+json" ||
		base == "application/spdx+json":
		return ClassSBOM
	case base == "application/openvex+json" || base == "application/vnd.openvex+json" || base == "application/vnd.openvex.vex+json":
		return ClassVEX
	case base == "application/vnd.drydock.scan.report.v1+json":
		return ClassScanReport
	}
	return ""
}

// ClassOfType classes an artifact by its artifact type alone (what a
// referrers list tells): ClassArtifact when the type tells nothing.
func ClassOfType(artifactType string) string {
	if c := classOfType(artifactType); c != "" {
		return c
	}
	return ClassArtifact
}

// Class says what a non-runnable artifact is: a signature, an
// attestation, an SBOM, a VEX document, a scan report, or (when nothing
// tells) an artifact. It reads the artifactType, then the config's media
// type, then the layers' media types.
func (m *Manifest) Class() string {
	if c := classOfType(m.ArtifactType); c != "" {
		return c
	}
	if m.Config != nil {
		if c := classOfType(m.Config.MediaType); c != "" {
			return c
		}
	}
	for _, l := range m.Layers {
		if c := classOfType(l.MediaType); c != "" {
			return c
		}
	}
	return ClassArtifact
}

// Class is the class of what a tag-scheme tag holds.
func (t TagScheme) Class() string {
	switch t.Suffix {
	case SuffixSignature:
		return ClassSignature
	case SuffixAttestation:
		return ClassAttestation
	case SuffixSBOM:
		return ClassSBOM
	}
	return ClassArtifact
}
