package oci

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestListImages(t *testing.T) {
	ctx := context.Background()
	reg := newTestRegistry(t, nil)
	img := ociImage(t, 21, amd64)
	img2 := ociImage(t, 22, arm64)
	idx := ociIndex(t)
	pushTo(t, reg.tag(t, "quarantine/nginx", "1.27.1"), img)
	pushTo(t, reg.tag(t, "quarantine/nginx", "1.26"), img2)
	pushTo(t, reg.tag(t, "live/nginx", "1.27.1"), img)
	pushTo(t, reg.tag(t, "quarantine/org/multi", "v1"), idx)
	pushTo(t, reg.tag(t, "scratch", "x"), img2)

	repos, err := ListImages(ctx, reg.server(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range repos {
		names = append(names, r.Namespace+" "+r.Name)
	}
	want := []string{"live live/nginx", "quarantine quarantine/nginx", "quarantine quarantine/org/multi", "other scratch"}
	if len(names) != len(want) {
		t.Fatalf("repositories %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("repository %d = %q, want %q", i, names[i], want[i])
		}
	}
	q := repos[1]
	if len(q.Tags) != 2 || q.Tags[0].Tag != "1.26" || q.Tags[1].Tag != "1.27.1" {
		t.Fatalf("tags of %s: %+v", q.Name, q.Tags)
	}
	m, _ := img.Manifest()
	wantSize := m.Config.Size
	for _, l := range m.Layers {
		wantSize += l.Size
	}
	tg := q.Tags[1]
	if tg.Kind != "image" || tg.Digest != mustDigest(t, img).String() || tg.Size != wantSize || tg.Error != "" {
		t.Errorf("tag %+v, want image %s of %d bytes", tg, mustDigest(t, img), wantSize)
	}
	mt := repos[2].Tags[0]
	if mt.Kind != "index" || mt.Digest != mustDigest(t, idx).String() || len(mt.Platforms) != 2 {
		t.Fatalf("index tag %+v", mt)
	}
	if mt.Platforms[0].Platform != "linux/amd64" || mt.Platforms[1].Platform != "linux/arm64/v8" {
		t.Errorf("platforms %+v", mt.Platforms)
	}
	if mt.Platforms[0].Size <= 0 || mt.Size != mt.Platforms[0].Size+mt.Platforms[1].Size {
		t.Errorf("sizes %+v", mt)
	}
}

func TestListImagesAuth(t *testing.T) {
	ctx := context.Background()
	reg := newTestRegistry(t, basicAuth("u", "p"))
	pushTo(t, reg.tag(t, "quarantine/a", "v1"), ociImage(t, 1, amd64), remote.WithAuth(&basicAuthn{"u", "p"}))
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	if _, err := ListImages(ctx, reg.server(t)); !errors.As(err, new(*AuthError)) {
		t.Fatalf("error %v, want an AuthError", err)
	}
	srv, _ := ParseServer("http://u:p@" + reg.host)
	repos, err := ListImages(ctx, srv)
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != 1 || repos[0].Name != "quarantine/a" {
		t.Errorf("repos %+v", repos)
	}
}

func TestListImagesEmptyAndUnreachable(t *testing.T) {
	ctx := context.Background()
	reg := newTestRegistry(t, nil)
	repos, err := ListImages(ctx, reg.server(t))
	if err != nil || len(repos) != 0 {
		t.Fatalf("ListImages on an empty registry = %v, %v", repos, err)
	}
	srv, _ := ParseServer("http://127.0.0.1:1")
	if _, err := ListImages(ctx, srv); !errors.As(err, new(*UnreachableError)) {
		t.Fatalf("error %v, want an UnreachableError", err)
	}
}
