package registry

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/imgref"
)

func FuzzParseManifest(f *testing.F) {
	seeds := []struct{ ct, body string }{
		{ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`},
		{ocispec.MediaTypeImageIndex, `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="}],"subject":{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}}`},
		{mediaTypeDockerManifest, `{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha512:00","size":-1}}`},
		{"", `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":null}`},
		{"text/plain; x=", `[]`},
		{ocispec.MediaTypeImageManifest, `{"schemaVersion":2} {}`},
	}
	for _, s := range seeds {
		f.Add(s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		info, err := parseManifest(ct, body)
		if err != nil {
			if info != nil {
				t.Fatal("info returned with an error")
			}
			return
		}
		switch info.MediaType {
		case mediaTypeOCIManifest, mediaTypeOCIIndex, mediaTypeDockerManifest, mediaTypeDockerList:
		default:
			t.Fatalf("accepted media type %q", info.MediaType)
		}
		for _, d := range append(append([]ocispec.Descriptor{}, info.Blobs...), info.Manifests...) {
			if _, err := imgref.ParseDigest(d.Digest.String()); err != nil || d.Size < 0 {
				t.Fatalf("accepted bad descriptor %+v", d)
			}
		}
		_, _ = manifestSubject(body)
	})
}
