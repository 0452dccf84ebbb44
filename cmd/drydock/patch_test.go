package main

import (
	"testing"

	"github.com/drydock-project/drydock/internal/oci"
)

func TestPatchDestination(t *testing.T) {
	for _, c := range []struct {
		image, tag, output, server, want string
	}{
		{"quarantine/nginx:1.27", "1.27-1", "", "http://127.0.0.1:5000", "127.0.0.1:5000/quarantine/nginx:1.27-1"},
		{"live/nginx:1.27", "1.27-1", "", "http://127.0.0.1:5000", "127.0.0.1:5000/quarantine/nginx:1.27-1"},
		{"live/team/app:2", "", "", "http://127.0.0.1:5000", "127.0.0.1:5000/quarantine/team/app:2-patched"},
		{"registry.example.com/app:v1", "", "", "", "registry.example.com/app:v1-patched"},
		{"oci:/tmp/layout:v1", "", "", "", "oci:/tmp/layout:v1-patched"},
		{"oci:/tmp/layout:v1", "x", "oci:/tmp/out", "", "oci:/tmp/out:x"},
		{"registry.example.com/app:v1", "x", "docker-archive:/tmp/a.tar", "", "docker-archive:/tmp/a.tar"},
	} {
		src, _, err := scanSource(c.image, c.server)
		if err != nil {
			t.Fatalf("%s: %v", c.image, err)
		}
		got, err := patchDestination(&patchFlags{image: c.image, tag: c.tag, output: c.output}, src)
		if err != nil || got != c.want {
			t.Errorf("%s -t %q -o %q: %q, %v; want %q", c.image, c.tag, c.output, got, err, c.want)
		}
	}
	if _, err := patchDestination(&patchFlags{image: "docker-archive:/x.tar"}, oci.Source{Kind: oci.KindDockerArchive}); err == nil {
		t.Error("docker-archive input without --output accepted")
	}
}
