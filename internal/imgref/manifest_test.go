package imgref

import (
	"errors"
	"fmt"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func desc(mt string) string {
	return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":2}`, mt, d256)
}

// manifest is an OCI image manifest with a config of cfgType and one
// layer of layerType, plus extra fields.
func manifest(cfgType, layerType, extra string) string {
	return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + desc(cfgType) +
		`,"layers":[` + desc(layerType) + `]` + extra + `}`
}

func TestKind(t *testing.T) {
	const (
		gz      = ocispec.MediaTypeImageLayerGzip
		cfg     = ocispec.MediaTypeImageConfig
		empty   = ocispec.MediaTypeEmptyJSON
		subject = `,"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + "sha256:0000000000000000000000000000000000000000000000000000000000000000" + `","size":9}`
	)
	tests := []struct {
		name      string
		mediaType string // as stored; "" = the body's
		body      string
		want      Kind
	}{
		{"OCI image", "", manifest(cfg, gz, ""), KindImage},
		{"Docker image", "", `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":` +
			desc(MediaTypeDockerConfig) + `,"layers":[` + desc("application/vnd.docker.image.rootfs.diff.tar.gzip") + `]}`, KindImage},
		{"image without mediaType field, stored as OCI", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"config":` + desc(cfg) + `,"layers":[]}`, KindImage},
		{"OCI index", "", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + desc(ocispec.MediaTypeImageManifest) + `]}`, KindIndex},
		{"Docker manifest list", "", `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`, KindIndex},
		{"index with subject and artifactType", "", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","artifactType":"application/x","manifests":[]` + subject + `}`, KindIndex},

		// Hole 3: an image does not become an artifact by naming a subject
		// or an artifact type.
		{"image with subject", "", manifest(cfg, gz, subject), KindImage},
		{"image config with artifactType", "", manifest(cfg, gz, `,"artifactType":"application/spdx+json"`), KindImage},
		{"artifactType is an image config", "", manifest(empty, "application/json", `,"artifactType":"application/vnd.oci.image.config.v1+json"`), KindImage},
		{"image config with parameters", "", manifest(cfg+"; charset=utf-8", "application/json", ""), KindImage},
		{"empty config with an image layer", "", manifest(empty, gz, `,"artifactType":"application/x"`+subject), KindImage},
		{"empty config with a zstd layer", "", manifest(empty, ocispec.MediaTypeImageLayerZstd, ""), KindImage},
		{"empty config with a nondistributable layer", "", manifest(empty, "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", ""), KindImage},
		{"empty config with a Docker foreign layer", "", manifest(empty, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", ""), KindImage},
		{"empty config with an x-tar layer", "", manifest(empty, "application/x-tar", ""), KindArtifact},
		{"empty config with a layer without type", "", manifest(empty, "", ""), KindImage},
		{"upper-case layer type", "", manifest(empty, "Application/VND.OCI.Image.Layer.v1.TAR", ""), KindImage},

		{"scan report", "", manifest(empty, "application/vnd.drydock.scan.report.v1+json", `,"artifactType":"application/vnd.drydock.scan.report.v1+json"`+subject), KindArtifact},
		{"SBOM", "", manifest(empty, "application/spdx+json", `,"artifactType":"application/spdx+json"`+subject), KindArtifact},
		{"cosign signature", "", manifest("application/vnd.oci.image.config.v1+json; x=y", "application/vnd.dev.cosign.simplesigning.v1+json", ""), KindImage},
		{"cosign signature, empty config", "", manifest(empty, "application/vnd.dev.cosign.simplesigning.v1+json", subject), KindArtifact},
		{"in-toto attestation (buildx unknown/unknown)", "", manifest("application/vnd.in-toto+json", "application/vnd.in-toto+json", ""), KindArtifact},
		{"Helm chart", "", manifest("application/vnd.cncf.helm.config.v1+json", "application/vnd.cncf.helm.chart.content.v1.tar+gzip", ""), KindArtifact},
		{"ORAS file with the default OCI layer type", "", manifest(empty, ocispec.MediaTypeImageLayer, `,"artifactType":"application/x"`), KindImage},
		{"no layers", "", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + desc(empty) + `,"layers":[]}`, KindArtifact},

		{"unknown media type", "", `{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json"}`, KindUnknown},
		{"schema 1", "application/vnd.docker.distribution.manifest.v1+prettyjws", `{"schemaVersion":1,"fsLayers":[]}`, KindUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseManifest(tt.mediaType, []byte(tt.body))
			if err != nil {
				t.Fatalf("ParseManifest: %v", err)
			}
			if got := m.Kind(); got != tt.want {
				t.Errorf("Kind() = %s, want %s", got, tt.want)
			}
			if got := NonRunnableArtifact(tt.mediaType, []byte(tt.body)); got != (tt.want == KindArtifact) {
				t.Errorf("NonRunnableArtifact = %v, want %v", got, tt.want == KindArtifact)
			}
		})
	}
}

func TestParseManifestErrors(t *testing.T) {
	for _, body := range []string{
		`{`,
		`{} {}`,
		`[]`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + desc(ocispec.MediaTypeImageConfig) + `,"manifests":[]}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","config":` + desc(ocispec.MediaTypeImageConfig) + `,"manifests":[]}`,
	} {
		m, err := ParseManifest("", []byte(body))
		var me *ManifestError
		if !errors.As(err, &me) || !me.Permanent() || m != nil {
			t.Errorf("ParseManifest(%s) = %+v, %v; want a permanent *ManifestError", body, m, err)
		}
		if NonRunnableArtifact("", []byte(body)) {
			t.Errorf("NonRunnableArtifact(%s) = true for an unreadable manifest", body)
		}
	}
}

func TestIsImageLayer(t *testing.T) {
	for _, mt := range []string{"", ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		"application/vnd.oci.image.layer.v1.tar+encrypted", "application/vnd.docker.image.rootfs.diff.tar.gzip",
		"Application/Vnd.Docker.Image.Rootfs.Diff.Tar.Gzip; x=y"} {
		if !IsImageLayer(mt) {
			t.Errorf("IsImageLayer(%q) = false", mt)
		}
	}
	for _, mt := range []string{"application/json", ocispec.MediaTypeEmptyJSON, "application/vnd.in-toto+json", "application/spdx+json",
		"application/x-tar", "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "text/plain", "application/vnd.cyclonedx+json"} {
		if IsImageLayer(mt) {
			t.Errorf("IsImageLayer(%q) = true", mt)
		}
	}
}

// FuzzParseManifest: parsing never panics, and the kind is consistent
// with the one rule.
func FuzzParseManifest(f *testing.F) {
	f.Add("", manifest(ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip, ""))
	f.Add("", manifest(ocispec.MediaTypeEmptyJSON, "application/json", `,"artifactType":"a/b"`))
	f.Add(ocispec.MediaTypeImageIndex, `{"schemaVersion":2,"manifests":[]}`)
	f.Fuzz(func(t *testing.T, mt, body string) {
		m, err := ParseManifest(mt, []byte(body))
		if err != nil {
			return
		}
		if (m.Kind() == KindArtifact) != m.NonRunnable() {
			t.Fatalf("Kind %s but NonRunnable %v for %s", m.Kind(), m.NonRunnable(), body)
		}
		if m.NonRunnable() && (m.Config == nil || IsImageConfig(m.Config.MediaType) || IsImageConfig(m.ArtifactType)) {
			t.Fatalf("NonRunnable with an image config: %s", body)
		}
	})
}
