package patch

import (
	"errors"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/oci"
)

func TestDestination(t *testing.T) {
	srv, err := oci.ParseServer("http://127.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		image, tag, output, want string
	}{
		{"quarantine/nginx:1.27", "1.27-1", "", "127.0.0.1:5000/quarantine/nginx:1.27-1"},
		{"live/nginx:1.27", "1.27-1", "", "127.0.0.1:5000/quarantine/nginx:1.27-1"},
		{"live/team/app:2", "", "", "127.0.0.1:5000/quarantine/team/app:2-patched"},
		{"registry.example.com/app:v1", "", "", "registry.example.com/app:v1-patched"},
		{"registry.example.com/app:v1", "", "quarantine/app", "127.0.0.1:5000/quarantine/app:v1-patched"},
		{"registry.example.com/app:v1", "x", "quarantine/app:y", "127.0.0.1:5000/quarantine/app:y"},
		{"registry.example.com/app:v1", "x", "other.example.com/app", "other.example.com/app:x"},
		{"oci:/tmp/layout:v1", "", "", "oci:/tmp/layout:v1-patched"},
		{"oci:/tmp/layout:v1", "x", "oci:/tmp/out", "oci:/tmp/out:x"},
		{"registry.example.com/app:v1", "x", "docker-archive:/tmp/a.tar", "docker-archive:/tmp/a.tar"},
	} {
		o, err := makeOptions([]Option{WithServer(srv)})
		if err != nil {
			t.Fatal(err)
		}
		src, _, err := o.source(c.image)
		if err != nil {
			t.Fatalf("%s: %v", c.image, err)
		}
		req := Request{Image: c.image, Tag: c.tag, Output: c.output}
		got, _, err := o.destination(&req, src)
		if err != nil || got != c.want {
			t.Errorf("%s -t %q -o %q: %q, %v; want %q", c.image, c.tag, c.output, got, err, c.want)
		}
	}
	o, err := makeOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		image, output, want string
	}{
		{"docker-archive:/x.tar", "", "say where"},
		{"quarantine/app:1", "", "no server is configured"},
		{"oci:/tmp/l:1", "live/app:2", "never live/"},
		{"oci:/tmp/l:1", "quarantine/app:2", "no server is configured"},
	} {
		_, _, err := o.source(c.image)
		if err == nil {
			src, _ := oci.ParseSource(c.image)
			_, _, err = o.destination(&Request{Image: c.image, Output: c.output}, src)
		}
		if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s -o %q: %v; want an invalid request mentioning %q", c.image, c.output, err, c.want)
		}
	}
}

func TestRequestNormalize(t *testing.T) {
	ok := []Request{
		{Image: "x", Mode: UpdateAll},
		{Image: "x", Mode: VulnerableOnly, Sandbox: SandboxNever},
		{Image: "x", Mode: FromReport, Packages: map[string]string{"libssl3": "3.0.1-1", "zlib1g": ""}},
		{Image: "x", Mode: FromReport},
		{Image: "x", Mode: UpdateAll, Tag: "1.2-patched", Sandbox: SandboxAlways},
	}
	for _, r := range ok {
		if err := r.normalize(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
		if r.Sandbox == "" {
			t.Errorf("%+v: sandbox mode not defaulted", r)
		}
	}
	bad := []struct {
		r    Request
		want string
	}{
		{Request{Mode: UpdateAll}, "no image"},
		{Request{Image: "x"}, "no mode"},
		{Request{Image: "x", Mode: "all"}, `mode "all"`},
		{Request{Image: "x", Mode: UpdateAll, Packages: map[string]string{"a": ""}}, "takes no packages"},
		{Request{Image: "x", Mode: FromReport, Packages: map[string]string{"-a": ""}}, "package name"},
		{Request{Image: "x", Mode: FromReport, Packages: map[string]string{"a": "1 2"}}, "version"},
		{Request{Image: "x", Mode: UpdateAll, Sandbox: "maybe"}, "sandbox mode"},
		{Request{Image: "x", Mode: UpdateAll, Tag: "-bad"}, "not a valid tag"},
	}
	for _, c := range bad {
		err := c.r.normalize()
		if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want an invalid request mentioning %q", c.r, err, c.want)
		}
	}
}
