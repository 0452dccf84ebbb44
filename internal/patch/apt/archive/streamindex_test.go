package archive

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/patch/xzdec"
	"github.com/drydock-project/drydock/internal/testenv"
)

// An index is decompressed and parsed while it downloads, and kept only
// when both the compressed and the decompressed bytes match the Release;
// a mismatch or a broken index leaves nothing.
func TestStreamIndex(t *testing.T) {
	broken := "Package: libssl3\nVersion: 1\nFilename: ../../etc/passwd\n"
	files := map[string][]byte{
		"/good.xz":     xzData(t, []byte(packagesText)),
		"/good.gz":     gzData(t, []byte(packagesText)),
		"/trailing.xz": append(xzData(t, []byte(packagesText)), "junk"...),
		"/broken.xz":   xzData(t, []byte(broken)),
		"/notxz.xz":    []byte("plain text, not xz"),
		"/cut.xz":      xzData(t, []byte(packagesText))[:40],
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		data, ok := files[req.URL.Path]
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Write(data)
	}))
	defer srv.Close()
	for _, xzd := range []xzdec.Decoder{xzdec.Native(), xzdec.Program(testenv.RequireTool(t, "xz", "xz-utils"))} {
		t.Run(xzd.String(), func(t *testing.T) {
			testStreamIndex(t, &Repo{o: &options{client: srv.Client(), xz: xzd}}, srv.URL, files, broken)
		})
	}
}

func testStreamIndex(t *testing.T, r *Repo, base string, files map[string][]byte, broken string) {
	plainOf := func(text string) FileHash {
		return FileHash{Path: "main/binary-amd64/Packages", Size: int64(len(text)), SHA256: sha([]byte(text))}
	}
	packedOf := func(name string) FileHash {
		return FileHash{Path: "main/binary-amd64/Packages" + filepath.Ext(name), Size: int64(len(files[name])), SHA256: sha(files[name])}
	}
	for _, tc := range []struct {
		name          string
		urls          []string
		packed, plain FileHash
		want          string // "" succeeds with 2 packages, else in the error
		mismatch      bool
	}{
		{name: "xz", urls: []string{"/good.xz"}, packed: packedOf("/good.xz"), plain: plainOf(packagesText)},
		{name: "gz", urls: []string{"/good.gz"}, packed: packedOf("/good.gz"), plain: plainOf(packagesText)},
		{name: "by-hash missing", urls: []string{"/by-hash", "/good.xz"}, packed: packedOf("/good.xz"), plain: plainOf(packagesText)},
		{name: "compressed hash", urls: []string{"/good.xz"}, packed: FileHash{Path: "P.xz", Size: packedOf("/good.xz").Size, SHA256: sha([]byte("x"))},
			plain: plainOf(packagesText), want: "/good.xz", mismatch: true},
		{name: "compressed size", urls: []string{"/good.xz"}, packed: FileHash{Path: "P.xz", Size: packedOf("/good.xz").Size - 1, SHA256: packedOf("/good.xz").SHA256},
			plain: plainOf(packagesText), want: "/good.xz", mismatch: true},
		{name: "decompressed hash", urls: []string{"/good.xz"}, packed: packedOf("/good.xz"), plain: plainOf("other"),
			want: "idx (decompressed)", mismatch: true},
		{name: "bytes after the stream", urls: []string{"/trailing.xz"}, packed: FileHash{Path: "P.xz", Size: packedOf("/good.xz").Size, SHA256: packedOf("/good.xz").SHA256},
			plain: plainOf(packagesText), want: "/trailing.xz", mismatch: true},
		// A broken index that matches its signed hashes: the parser's
		// error, after the whole file was read and checked.
		{name: "broken", urls: []string{"/broken.xz"}, packed: packedOf("/broken.xz"), plain: plainOf(broken), want: "idx"},
		{name: "not xz", urls: []string{"/notxz.xz"}, packed: packedOf("/notxz.xz"), plain: plainOf(packagesText), want: "idx"},
		{name: "truncated xz", urls: []string{"/cut.xz"}, packed: packedOf("/cut.xz"), plain: plainOf(packagesText), want: "idx"},
		{name: "missing", urls: []string{"/none.xz"}, packed: packedOf("/good.xz"), plain: plainOf(packagesText), want: "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dst := filepath.Join(dir, "Packages")
			var urls []string
			for _, u := range tc.urls {
				urls = append(urls, base+u)
			}
			b, err := r.streamIndex(t.Context(), urls, dst, tc.packed, tc.plain, "idx")
			left, _ := os.ReadDir(dir)
			if tc.want == "" {
				if err != nil || b.count != 2 {
					t.Fatalf("%v, %v", b, err)
				}
				if data, err := os.ReadFile(dst); err != nil || string(data) != packagesText {
					t.Fatalf("stored %d bytes, %v", len(data), err)
				}
				if len(left) != 1 {
					t.Errorf("left behind: %v", left)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
			if tc.mismatch != errors.Is(err, ErrHashMismatch) {
				t.Errorf("hash mismatch %v, want %v: %v", !tc.mismatch, tc.mismatch, err)
			}
			if b != nil || len(left) != 0 {
				t.Errorf("kept %v and %v", b, left)
			}
		})
	}
}
