package imgref

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const subjHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseTagScheme(t *testing.T) {
	sha512Hex := strings.Repeat("ab", 64)
	tests := []struct {
		tag    string
		ok     bool
		suffix string
	}{
		{"sha256-" + subjHex + ".sig", true, SuffixSignature},
		{"sha256-" + subjHex + ".att", true, SuffixAttestation},
		{"sha256-" + subjHex + ".sbom", true, SuffixSBOM},
		{"sha512-" + sha512Hex + ".sig", true, SuffixSignature},
		// Near misses are ordinary tags.
		{"sha256-" + subjHex, false, ""},                           // the referrers fallback tag, not cosign's
		{"sha256-" + subjHex[:63] + ".sig", false, ""},             // short
		{"sha256-" + subjHex + "0.sig", false, ""},                 // long
		{"sha256-" + strings.ToUpper(subjHex) + ".sig", false, ""}, // upper-case hex
		{"sha256-" + subjHex + ".sig2", false, ""},
		{"sha256-" + subjHex + ".SIG", false, ""},
		{"sha256-" + subjHex + ".sig.", false, ""},
		{"xsha256-" + subjHex + ".sig", false, ""},
		{"sha384-" + subjHex + ".sig", false, ""},
		{"sha512-" + subjHex + ".sig", false, ""}, // sha256 length under sha512
		{"sha256_" + subjHex + ".sig", false, ""},
		{"sha256-" + subjHex[:62] + "zz.sig", false, ""},
		{"latest", false, ""},
		{"", false, ""},
	}
	for _, tt := range tests {
		got, ok := ParseTagScheme(tt.tag)
		if ok != tt.ok {
			t.Errorf("ParseTagScheme(%q) ok = %v, want %v", tt.tag, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if got.Suffix != tt.suffix || got.Tag() != tt.tag || got.Subject.Validate() != nil {
			t.Errorf("ParseTagScheme(%q) = %+v (tag %q)", tt.tag, got, got.Tag())
		}
	}
	if got := TagSchemeTag(digest.Digest("sha256:"+subjHex), SuffixAttestation); got != "sha256-"+subjHex+".att" {
		t.Errorf("TagSchemeTag = %q", got)
	}
}

// tagManifest is an image manifest with a config of cfgType, the given
// layers and extra fields.
func tagManifest(mediaType, cfgType string, layers []string, extra string) string {
	var ls []string
	for _, l := range layers {
		ls = append(ls, desc(l))
	}
	return `{"schemaVersion":2,"mediaType":"` + mediaType + `","config":` + desc(cfgType) +
		`,"layers":[` + strings.Join(ls, ",") + `]` + extra + `}`
}

// TestTagSchemeArtifact is the adversarial table of the tag-scheme rule:
// only cosign's own shapes pass; anything a runtime could unpack, or that
// is not what its tag says, is judged as what it is.
func TestTagSchemeArtifact(t *testing.T) {
	const (
		oci     = ocispec.MediaTypeImageManifest
		cfg     = ocispec.MediaTypeImageConfig
		sig     = MediaTypeCosignSimpleSigning
		dsse    = MediaTypeDSSEEnvelope
		gz      = ocispec.MediaTypeImageLayerGzip
		sigTag  = "sha256-" + subjHex + ".sig"
		attTag  = "sha256-" + subjHex + ".att"
		sbomTag = "sha256-" + subjHex + ".sbom"
	)
	otherSubject := `,"subject":{"mediaType":"` + oci + `","digest":"sha256:` + strings.Repeat("f", 64) + `","size":3}`
	sameSubject := `,"subject":{"mediaType":"` + oci + `","digest":"sha256:` + subjHex + `","size":3}`
	tests := []struct {
		name, tag, mediaType, body string
		want                       bool
	}{
		{"cosign signature", sigTag, "", tagManifest(oci, cfg, []string{sig}, ""), true},
		{"cosign signature, two signers", sigTag, "", tagManifest(oci, cfg, []string{sig, sig}, ""), true},
		{"cosign signature, Docker media types", sigTag, "", tagManifest(MediaTypeDockerManifest, MediaTypeDockerConfig, []string{sig}, ""), true},
		{"cosign attestation", attTag, "", tagManifest(oci, cfg, []string{dsse, dsse}, ""), true},
		{"cosign SBOM (SPDX)", sbomTag, "", tagManifest(oci, cfg, []string{MediaTypeSPDXJSON}, ""), true},
		{"cosign SBOM (CycloneDX)", sbomTag, "", tagManifest(oci, cfg, []string{MediaTypeCycloneDXJSON}, ""), true},
		{"layer type with parameters", sigTag, "", tagManifest(oci, cfg, []string{sig + "; charset=utf-8"}, ""), true},
		{"subject equal to the tag's", sigTag, "", tagManifest(oci, cfg, []string{sig}, sameSubject), true},

		{"a real image under a .sig tag", sigTag, "", tagManifest(oci, cfg, []string{gz}, ""), false},
		{"a signature plus an image layer", sigTag, "", tagManifest(oci, cfg, []string{sig, gz}, ""), false},
		{"an image layer plus a signature", sigTag, "", tagManifest(oci, cfg, []string{gz, sig}, ""), false},
		{"a layer without a media type", sigTag, "", tagManifest(oci, cfg, []string{sig, ""}, ""), false},
		{"a Docker rootfs layer", sigTag, "", tagManifest(MediaTypeDockerManifest, MediaTypeDockerConfig, []string{"application/vnd.docker.image.rootfs.diff.tar.gzip"}, ""), false},
		{"no layers", sigTag, "", tagManifest(oci, cfg, nil, ""), false},
		{"attestation layers under .sig", sigTag, "", tagManifest(oci, cfg, []string{dsse}, ""), false},
		{"signature layers under .att", attTag, "", tagManifest(oci, cfg, []string{sig}, ""), false},
		{"an SBOM under .sig", sigTag, "", tagManifest(oci, cfg, []string{MediaTypeSPDXJSON}, ""), false},
		{"a wasm module under .sbom", sbomTag, "", tagManifest(oci, "application/vnd.wasm.config.v1+json", []string{"application/vnd.wasm.content.layer.v1+wasm"}, ""), false},
		{"artifactType is an image config", sigTag, "", tagManifest(oci, cfg, []string{sig}, `,"artifactType":"`+cfg+`"`), false},
		{"subject of another digest", sigTag, "", tagManifest(oci, cfg, []string{sig}, otherSubject), false},
		{"an index under a .sig tag", sigTag, "", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + desc(oci) + `]}`, false},
		{"an unknown manifest type", sigTag, "application/vnd.example+json", `{"schemaVersion":2,"mediaType":"application/vnd.example+json","layers":[` + desc(sig) + `]}`, false},
		{"image manifest with a manifests list", sigTag, "", tagManifest(oci, cfg, []string{sig}, `,"manifests":[]`), false},
		{"not JSON", sigTag, oci, `{"schemaVersion":2,`, false},
		{"an ordinary tag", "v1", "", tagManifest(oci, cfg, []string{sig}, ""), false},
		{"the referrers fallback tag", "sha256-" + subjHex, "", tagManifest(oci, cfg, []string{sig}, ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, ok := TagSchemeArtifact(tt.tag, tt.mediaType, []byte(tt.body))
			if ok != tt.want {
				t.Fatalf("TagSchemeArtifact = %v, want %v", ok, tt.want)
			}
			if ok && ts.Subject.String() != "sha256:"+subjHex {
				t.Errorf("subject = %s", ts.Subject)
			}
			// Whatever the tag says, the manifest alone is never a
			// non-runnable artifact when it carries an image layer.
			if m, err := ParseManifest(tt.mediaType, []byte(tt.body)); err == nil && ok {
				for _, l := range m.Layers {
					if IsImageLayer(l.MediaType) {
						t.Errorf("accepted a manifest with image layer %q", l.MediaType)
					}
				}
			}
		})
	}
}

func TestClass(t *testing.T) {
	const (
		empty = ocispec.MediaTypeEmptyJSON
		cfg   = ocispec.MediaTypeImageConfig
	)
	tests := []struct {
		name, body, want string
	}{
		{"cosign referrer signature", manifest(ArtifactTypeCosignSignature, MediaTypeCosignSimpleSigning, ""), ClassSignature},
		{"notary signature", manifest(ArtifactTypeNotarySignature, "application/jose+json", `,"artifactType":"`+ArtifactTypeNotarySignature+`"`), ClassSignature},
		{"DSSE attestation", manifest(empty, MediaTypeDSSEEnvelope, `,"artifactType":"application/vnd.dev.cosign.artifact.att.v1+json"`), ClassAttestation},
		{"attestation by layer", manifest(empty, MediaTypeDSSEEnvelope, ""), ClassAttestation},
		{"SPDX SBOM", manifest(empty, "application/spdx+json", `,"artifactType":"application/spdx+json"`), ClassSBOM},
		{"CycloneDX SBOM", manifest(empty, MediaTypeCycloneDXJSON, ""), ClassSBOM},
		{"OpenVEX", manifest(empty, "application/openvex+json", `,"artifactType":"application/openvex+json"`), ClassVEX},
		{"scan report", manifest(empty, "application/vnd.drydock.scan.report.v1+json", ""), ClassScanReport},
		{"something else", manifest(empty, "application/x-example", `,"artifactType":"application/x-example"`), ClassArtifact},
		{"tag-scheme signature", manifest(cfg, MediaTypeCosignSimpleSigning, ""), ClassSignature},
	}
	for _, tt := range tests {
		m, err := ParseManifest("", []byte(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := m.Class(); got != tt.want {
			t.Errorf("%s: Class = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func FuzzTagSchemeArtifact(f *testing.F) {
	f.Add("sha256-"+subjHex+".sig", tagManifest(ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, []string{MediaTypeCosignSimpleSigning}, ""))
	f.Add("sha256-"+subjHex+".att", tagManifest(ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, []string{ocispec.MediaTypeImageLayerGzip}, ""))
	f.Fuzz(func(t *testing.T, tag, body string) {
		ts, ok := TagSchemeArtifact(tag, "", []byte(body))
		if !ok {
			return
		}
		if ts.Tag() != tag {
			t.Fatalf("tag %q parsed to %q", tag, ts.Tag())
		}
		m, err := ParseManifest("", []byte(body))
		if err != nil {
			t.Fatalf("accepted an unparsable manifest: %v", err)
		}
		if m.Kind() == KindIndex || len(m.Layers) == 0 {
			t.Fatalf("accepted kind %s with %d layers", m.Kind(), len(m.Layers))
		}
		for _, l := range m.Layers {
			if IsImageLayer(l.MediaType) {
				t.Fatalf("accepted image layer %q", l.MediaType)
			}
		}
	})
}
