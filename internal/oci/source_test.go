package oci

import (
	"errors"
	"testing"
)

func TestParseSource(t *testing.T) {
	tests := []struct {
		in       string
		kind     Kind
		path     string
		tag      string
		index    int
		ref      string // registry: fully qualified name
		wantRepo string // NameFromReference, registry only
		wantErr  bool
	}{
		{in: "nginx:1.27.1", kind: KindRegistry, ref: "index.docker.io/library/nginx:1.27.1", wantRepo: "nginx:1.27.1"},
		{in: "nginx", kind: KindRegistry, ref: "index.docker.io/library/nginx:latest", wantRepo: "nginx:latest"},
		{in: "docker.io/library/nginx:1.27.1", kind: KindRegistry, ref: "index.docker.io/library/nginx:1.27.1", wantRepo: "nginx:1.27.1"},
		{in: "docker.io/bitnami/redis:7", kind: KindRegistry, ref: "index.docker.io/bitnami/redis:7", wantRepo: "bitnami/redis:7"},
		{in: "registry.example.test/org/app:v1", kind: KindRegistry, ref: "registry.example.test/org/app:v1", wantRepo: "org/app:v1"},
		{in: "docker://registry.example.test:5000/a/b/c:v1", kind: KindRegistry, ref: "registry.example.test:5000/a/b/c:v1", wantRepo: "a/b/c:v1"},
		{in: "127.0.0.1:5000/app@sha256:" + hex64, kind: KindRegistry, ref: "127.0.0.1:5000/app@sha256:" + hex64, wantRepo: "app:sha256-" + hex64},
		{in: "docker:5000/app:v1", kind: KindRegistry, ref: "docker:5000/app:v1", wantRepo: "app:v1"},
		{in: "docker:docker:/0", wantErr: true},
		{in: "a:b:/c", wantErr: true},
		{in: "[::1]:5000/app:v1", kind: KindRegistry, ref: "[::1]:5000/app:v1", wantRepo: "app:v1"},
		{in: "oci:/tmp/layout", kind: KindOCILayout, path: "/tmp/layout", index: -1},
		{in: "oci:./layout:v1.2", kind: KindOCILayout, path: "./layout", tag: "v1.2", index: -1},
		{in: "oci-archive:app.tar", kind: KindOCIArchive, path: "app.tar", index: -1},
		{in: "oci-archive:app.tar:latest", kind: KindOCIArchive, path: "app.tar", tag: "latest", index: -1},
		{in: "docker-archive:save.tar", kind: KindDockerArchive, path: "save.tar", index: -1},
		{in: "docker-archive:save.tar:nginx:1.27", kind: KindDockerArchive, path: "save.tar", tag: "nginx:1.27", index: -1},
		{in: "docker-archive:save.tar:@2", kind: KindDockerArchive, path: "save.tar", index: 2},
		{in: "", wantErr: true},
		{in: "oci:", wantErr: true},
		{in: "oci::v1", wantErr: true},
		{in: "oci:dir:bad tag", wantErr: true},
		{in: "oci-archive:", wantErr: true},
		{in: "docker-archive:", wantErr: true},
		{in: "docker-archive:f.tar:@x", wantErr: true},
		{in: "docker-archive:f.tar:@-1", wantErr: true},
		{in: "docker-archive:f.tar:@01", wantErr: true},
		{in: "docker-archive:f.tar:UPPER", wantErr: true},
		{in: "https://example.test/app:v1", wantErr: true},
		{in: "Upper/Case", wantErr: true},
		{in: "app:bad tag", wantErr: true},
		{in: "app@sha256:short", wantErr: true},
		{in: "app\n:v1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseSource(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseSource(%q) = %+v, want an error", tt.in, s)
				}
				if !errors.Is(err, ErrBadSource) {
					t.Errorf("error %v does not wrap ErrBadSource", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Kind != tt.kind || s.Path != tt.path || s.Tag != tt.tag || (tt.kind != KindRegistry && s.Index != tt.index) {
				t.Errorf("ParseSource(%q) = %+v", tt.in, s)
			}
			if tt.kind == KindRegistry {
				if s.Ref.Name() != tt.ref {
					t.Errorf("ref = %s, want %s", s.Ref.Name(), tt.ref)
				}
				repo, tag := NameFromReference(s.Ref)
				if got := repo + ":" + tag; got != tt.wantRepo {
					t.Errorf("NameFromReference = %s, want %s", got, tt.wantRepo)
				}
			}
			again, err := ParseSource(s.String())
			if err != nil {
				t.Fatalf("String() %q does not parse: %v", s.String(), err)
			}
			if again.String() != s.String() {
				t.Errorf("round trip: %q -> %q", s.String(), again.String())
			}
		})
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestNameFromPath(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/My App.tar":    "my-app",
		"build/layout/":      "layout",
		"nginx-1.27.oci.tar": "nginx-1.27",
		"image.tar.gz":       "image",
		"/":                  "",
		"___":                "",
		"Ünïcode":            "n-code",
		"a.b_c-d":            "a.b_c-d",
	} {
		if got := nameFromPath(in); got != want {
			t.Errorf("nameFromPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePlatform(t *testing.T) {
	for in, ok := range map[string]bool{"linux/amd64": true, "linux/arm64/v8": true, "linux": false, "linux/": false, "a/b/c/d": false, "": false} {
		_, err := ParsePlatform(in)
		if (err == nil) != ok {
			t.Errorf("ParsePlatform(%q) error = %v, want ok=%v", in, err, ok)
		}
	}
}

func TestParseServer(t *testing.T) {
	tests := []struct {
		in, str  string
		auth     bool
		insecure bool
		wantErr  bool
	}{
		{in: "http://127.0.0.1:5000", str: "http://127.0.0.1:5000", insecure: true},
		{in: "http://u:p@127.0.0.1:5000/", str: "http://127.0.0.1:5000", insecure: true, auth: true},
		{in: "registry.example.test", str: "https://registry.example.test"},
		{in: "https://registry.example.test:8443", str: "https://registry.example.test:8443"},
		{in: "", wantErr: true},
		{in: "ftp://x", wantErr: true},
		{in: "http://127.0.0.1:5000/v2/", wantErr: true},
		{in: "http://", wantErr: true},
	}
	for _, tt := range tests {
		s, err := ParseServer(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseServer(%q) error = %v", tt.in, err)
			continue
		}
		if err != nil {
			continue
		}
		if s.String() != tt.str || (s.Auth != nil) != tt.auth || s.Insecure != tt.insecure {
			t.Errorf("ParseServer(%q) = %s auth=%v insecure=%v", tt.in, s, s.Auth != nil, s.Insecure)
		}
	}
}

func FuzzParseSource(f *testing.F) {
	for _, s := range []string{
		"nginx:1.27.1", "docker://a/b:c", "oci:dir:tag", "oci-archive:f.tar", "docker-archive:f.tar:a/b:c",
		"docker-archive:f.tar:@0", "127.0.0.1:5000/x@sha256:" + hex64, "oci::", ":", "docker-archive::@",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSource(in)
		if err != nil {
			if !errors.Is(err, ErrBadSource) {
				t.Fatalf("ParseSource(%q): error %v does not wrap ErrBadSource", in, err)
			}
			return
		}
		switch s.Kind {
		case KindRegistry:
			if s.Ref == nil {
				t.Fatalf("ParseSource(%q): registry source without Ref", in)
			}
			repo, _ := NameFromReference(s.Ref)
			if repo == "" {
				t.Fatalf("ParseSource(%q): empty repository", in)
			}
		case KindOCILayout, KindOCIArchive, KindDockerArchive:
			if s.Path == "" {
				t.Fatalf("ParseSource(%q): empty path", in)
			}
		default:
			t.Fatalf("ParseSource(%q): kind %q", in, s.Kind)
		}
		again, err := ParseSource(s.String())
		if err != nil {
			t.Fatalf("ParseSource(%q).String() = %q does not parse: %v", in, s.String(), err)
		}
		if again.String() != s.String() {
			t.Fatalf("round trip %q: %q -> %q", in, s.String(), again.String())
		}
	})
}
