package registry

import (
	"context"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

func TestNewOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		wantErr bool
	}{
		{"defaults", nil, false},
		{"manifest size", []Option{WithMaxManifestSize(1 << 10)}, false},
		{"zero manifest size", []Option{WithMaxManifestSize(0)}, true},
		{"nil logger", []Option{WithLogger(nil)}, true},
		{"nil observer", []Option{WithUploadObserver(nil)}, true},
		{"nil listener", []Option{WithManifestListener(nil)}, true},
		{"nil clock", []Option{WithClock(nil)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), inmemory.New(), tt.opts...)
			if (err != nil) != tt.wantErr {
				t.Errorf("New() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
	if _, err := New(context.Background(), nil); err == nil {
		t.Error("New with a nil driver succeeded")
	}
}

func TestParseRoute(t *testing.T) {
	tests := []struct {
		path string
		want route
		ok   bool
	}{
		{"/v2/", route{kind: "ping"}, true},
		{"/v2", route{kind: "ping"}, true},
		{"/v2/_catalog", route{kind: "catalog"}, true},
		{"/v2/a/b/manifests/latest", route{kind: "manifest", name: "a/b", ref: "latest"}, true},
		{"/v2/a/blobs/sha256:x", route{kind: "blob", name: "a", ref: "sha256:x"}, true},
		{"/v2/a/blobs/uploads/", route{kind: "upload", name: "a"}, true},
		{"/v2/a/blobs/uploads", route{kind: "upload", name: "a"}, true},
		{"/v2/a/blobs/uploads/id", route{kind: "upload", name: "a", ref: "id"}, true},
		{"/v2/a/blobs/blobs/uploads/", route{kind: "upload", name: "a/blobs"}, true},
		{"/v2/a/tags/list", route{kind: "tags", name: "a"}, true},
		{"/v2/a/referrers/sha256:x", route{kind: "referrers", name: "a", ref: "sha256:x"}, true},
		{"/v2/a/unknown", route{}, false},
		{"/v3/a/tags/list", route{}, false},
	}
	for _, tt := range tests {
		got, ok := parseRoute(tt.path)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseRoute(%q) = %+v, %v; want %+v, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "a/b": true, "a-b.c__d/e_f": true, "conformance/repo1": true,
		"": false, "A": false, "a//b": false, "/a": false, "a/": false, "..": false,
		"a/../b": false, "a/_manifests": false, "-a": false, "a--": false,
	} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v, want %v", name, got, want)
		}
	}
}
