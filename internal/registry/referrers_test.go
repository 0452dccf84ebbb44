package registry

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestReferrers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		c := newTestClient(t, drv)
		subject := newTestImage(t, "subject", nil)
		c.expect(c.pushImage("ref", "v1", subject), http.StatusCreated, "")
		subjDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject.digest, Size: int64(len(subject.manifest))}

		// An image whose artifact type comes from its config media type.
		sbom := newTestImage(t, "sbom", func(m *ocispec.Manifest) {
			m.Config.MediaType = "application/vnd.example.sbom.v1+json"
			m.Subject = &subjDesc
			m.Annotations = map[string]string{"org.example": "yes"}
		})
		c.pushBlob("ref", sbom.config, digest.SHA256)
		c.pushBlob("ref", sbom.layer, digest.SHA256)
		r := c.pushManifest("ref", sbom.digest.String(), ocispec.MediaTypeImageManifest, sbom.manifest)
		c.expect(r, http.StatusCreated, "")
		if r.header.Get("OCI-Subject") != subject.digest.String() {
			t.Errorf("OCI-Subject %q", r.header.Get("OCI-Subject"))
		}
		// An artifact with an explicit artifactType.
		sig := newTestImage(t, "sig", func(m *ocispec.Manifest) {
			m.ArtifactType = "application/vnd.example.signature"
			m.Subject = &subjDesc
		})
		c.pushBlob("ref", sig.config, digest.SHA256)
		c.pushBlob("ref", sig.layer, digest.SHA256)
		c.expect(c.pushManifest("ref", sig.digest.String(), ocispec.MediaTypeImageManifest, sig.manifest), http.StatusCreated, "")

		list := func(query string) (ocispec.Index, http.Header) {
			t.Helper()
			r := c.do("GET", "/v2/ref/referrers/"+subject.digest.String()+query, nil)
			c.expect(r, http.StatusOK, "")
			if r.header.Get("Content-Type") != ocispec.MediaTypeImageIndex {
				t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
			}
			var idx ocispec.Index
			if err := json.Unmarshal(r.body, &idx); err != nil {
				t.Fatal(err)
			}
			return idx, r.header
		}
		idx, _ := list("")
		if len(idx.Manifests) != 2 || idx.SchemaVersion != 2 || idx.MediaType != ocispec.MediaTypeImageIndex {
			t.Fatalf("referrers %+v", idx)
		}
		for _, d := range idx.Manifests {
			switch d.Digest {
			case sbom.digest:
				if d.ArtifactType != "application/vnd.example.sbom.v1+json" || d.Annotations["org.example"] != "yes" || d.Size != int64(len(sbom.manifest)) {
					t.Errorf("sbom descriptor %+v", d)
				}
			case sig.digest:
				if d.ArtifactType != "application/vnd.example.signature" || d.MediaType != ocispec.MediaTypeImageManifest {
					t.Errorf("sig descriptor %+v", d)
				}
			default:
				t.Errorf("unexpected referrer %+v", d)
			}
		}
		idx, h := list("?artifactType=application/vnd.example.signature")
		if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != sig.digest || h.Get("OCI-Filters-Applied") != "artifactType" {
			t.Errorf("filtered referrers %+v %v", idx, h)
		}
		// Deleting a referrer removes its entry.
		c.expect(c.do("DELETE", "/v2/ref/manifests/"+sig.digest.String(), nil), http.StatusAccepted, "")
		idx, _ = list("")
		if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != sbom.digest {
			t.Errorf("after delete %+v", idx)
		}
		descs, err := c.reg.Referrers(context.Background(), "ref", subject.digest, "")
		if err != nil || len(descs) != 1 || descs[0].Digest != sbom.digest {
			t.Errorf("Referrers = %+v, %v", descs, err)
		}
		// No referrers, unknown repository: an empty index.
		r = c.do("GET", "/v2/unknown/referrers/"+digest.FromString("x").String(), nil)
		c.expect(r, http.StatusOK, "")
		if string(r.body) != `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}` {
			t.Errorf("empty referrers %s", r.body)
		}
		c.expect(c.do("GET", "/v2/ref/referrers/sha256:bad", nil), http.StatusBadRequest, codeDigestInvalid)
	})
}
