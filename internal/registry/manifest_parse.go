package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/imgref"
)

// Manifest media types this registry accepts.
const (
	mediaTypeOCIManifest    = ocispec.MediaTypeImageManifest
	mediaTypeOCIIndex       = ocispec.MediaTypeImageIndex
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerForeign  = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	nondistributablePrefix  = "application/vnd.oci.image.layer.nondistributable."
)

// maxManifestReferences bounds the layers or children of one manifest, each
// of which costs a lookup on the driver.
const maxManifestReferences = 10000

// manifestInfo is what the registry needs to know about a parsed manifest.
type manifestInfo struct {
	MediaType    string
	ArtifactType string // for the referrers API
	Annotations  map[string]string
	Subject      *ocispec.Descriptor
	Blobs        []ocispec.Descriptor // blobs that must exist in the repository
	Manifests    []ocispec.Descriptor // manifests that must exist in the repository
}

// rawManifest is the union of the fields of the accepted manifest types.
type rawManifest struct {
	SchemaVersion *int                 `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
}

// errManifestParse marks a manifest that fails validation.
var errManifestParse = errors.New("invalid manifest")

func manifestErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errManifestParse, fmt.Sprintf(format, args...))
}

// parseManifest validates a manifest pushed with the given Content-Type and
// extracts the references the registry must check and record. It accepts OCI
// image manifests and indexes and Docker schema2 manifests and manifest lists.
func parseManifest(contentType string, body []byte) (*manifestInfo, error) {
	ct := ""
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, manifestErrorf("invalid Content-Type %q", contentType)
		}
		ct = mt
	}
	var raw rawManifest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return nil, manifestErrorf("decoding JSON: %v", err)
	}
	if dec.More() {
		return nil, manifestErrorf("trailing data after JSON object")
	}
	if raw.SchemaVersion == nil || *raw.SchemaVersion != 2 {
		return nil, manifestErrorf("schemaVersion must be 2")
	}
	mt := ct
	switch {
	case raw.MediaType != "" && (ct == "" || ct == "application/json" || ct == "application/octet-stream"):
		mt = raw.MediaType
	case raw.MediaType != "" && raw.MediaType != ct:
		return nil, manifestErrorf("mediaType %q does not match Content-Type %q", raw.MediaType, ct)
	}
	if n := len(raw.Layers) + len(raw.Manifests); n > maxManifestReferences {
		return nil, manifestErrorf("%d references, at most %d allowed", n, maxManifestReferences)
	}
	info := &manifestInfo{MediaType: mt, ArtifactType: raw.ArtifactType, Annotations: raw.Annotations}
	switch mt {
	case mediaTypeOCIManifest, mediaTypeDockerManifest:
		if raw.Config == nil {
			return nil, manifestErrorf("image manifest without config")
		}
		if raw.Manifests != nil {
			return nil, manifestErrorf("image manifest with a manifests list")
		}
		if err := checkDescriptor("config", *raw.Config); err != nil {
			return nil, err
		}
		info.Blobs = append(info.Blobs, *raw.Config)
		for i, l := range raw.Layers {
			if err := checkDescriptor(fmt.Sprintf("layers[%d]", i), l); err != nil {
				return nil, err
			}
			if strings.HasPrefix(l.MediaType, nondistributablePrefix) || l.MediaType == mediaTypeDockerForeign {
				continue // never pushed to registries
			}
			info.Blobs = append(info.Blobs, l)
		}
		if info.ArtifactType == "" && mt == mediaTypeOCIManifest {
			info.ArtifactType = raw.Config.MediaType
		}
	case mediaTypeOCIIndex, mediaTypeDockerList:
		if raw.Manifests == nil {
			return nil, manifestErrorf("index without manifests")
		}
		if raw.Config != nil || raw.Layers != nil {
			return nil, manifestErrorf("index with config or layers")
		}
		for i, m := range raw.Manifests {
			if err := checkDescriptor(fmt.Sprintf("manifests[%d]", i), m); err != nil {
				return nil, err
			}
			info.Manifests = append(info.Manifests, m)
		}
	default:
		return nil, manifestErrorf("unsupported manifest media type %q", mt)
	}
	if raw.Subject != nil {
		if mt == mediaTypeDockerManifest || mt == mediaTypeDockerList {
			return nil, manifestErrorf("subject is not supported in %s", mt)
		}
		if err := checkDescriptor("subject", *raw.Subject); err != nil {
			return nil, err
		}
		s := *raw.Subject
		info.Subject = &s
	}
	return info, nil
}

// checkDescriptor validates a descriptor's digest, size and embedded data.
func checkDescriptor(field string, d ocispec.Descriptor) error {
	if d.MediaType == "" {
		return manifestErrorf("%s: missing mediaType", field)
	}
	if _, err := imgref.ParseDigest(d.Digest.String()); err != nil {
		return manifestErrorf("%s: %v", field, err)
	}
	if d.Size < 0 {
		return manifestErrorf("%s: negative size %d", field, d.Size)
	}
	if d.Data != nil {
		if int64(len(d.Data)) != d.Size {
			return manifestErrorf("%s: data is %d bytes, size says %d", field, len(d.Data), d.Size)
		}
		if d.Digest.Algorithm().FromBytes(d.Data) != d.Digest {
			return manifestErrorf("%s: data does not match digest %s", field, d.Digest)
		}
	}
	return nil
}

// manifestSubject returns the subject digest of a stored manifest, if any;
// used when deleting it. Unparseable content has no subject.
func manifestSubject(body []byte) (digest.Digest, bool) {
	var raw struct {
		Subject *ocispec.Descriptor `json:"subject"`
	}
	if json.Unmarshal(body, &raw) != nil || raw.Subject == nil {
		return "", false
	}
	d, err := imgref.ParseDigest(raw.Subject.Digest.String())
	if err != nil {
		return "", false
	}
	return d, true
}
