package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// tarOf builds a tar from name/content pairs.
func tarOf(files ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[i+1]))
	}
	tw.Close()
	return buf.Bytes()
}

// FuzzOpenArchive feeds arbitrary bytes to the docker-archive and
// oci-archive readers: they must fail cleanly, never panic or escape their
// temporary directory.
func FuzzOpenArchive(f *testing.F) {
	f.Add(tarOf("manifest.json", `[{"Config":"c.json","RepoTags":["a:b"],"Layers":["l.tar"]}]`,
		"c.json", `{"rootfs":{"type":"layers","diff_ids":["sha256:`+hex64+`"]}}`, "l.tar", "x"))
	f.Add(tarOf("manifest.json", `[{"Config":"../c.json","Layers":[]}]`))
	f.Add(tarOf("oci-layout", `{"imageLayoutVersion":"1.0.0"}`, "index.json", `{"schemaVersion":2,"manifests":[]}`))
	f.Add(tarOf("oci-layout", `{"imageLayoutVersion":"1.0.0"}`, "index.json",
		`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":2,"digest":"sha256:`+hex64+`"}]}`,
		"blobs/sha256/"+hex64, "{}"))
	f.Add([]byte("not a tar"))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		file := filepath.Join(dir, "in.tar")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "tmp")
		if err := os.Mkdir(tmp, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []Kind{KindDockerArchive, KindOCIArchive} {
			a, err := Source{Kind: kind, Path: file, Index: -1}.Open(context.Background(), WithTempDir(tmp))
			if err == nil {
				if a.Image == nil && a.Index == nil {
					t.Fatalf("%s: artifact without image or index", kind)
				}
				if err := a.Close(); err != nil {
					t.Fatalf("%s: Close: %v", kind, err)
				}
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Fatalf("%s: left %d entries in the temporary directory", kind, len(left))
			}
		}
	})
}
