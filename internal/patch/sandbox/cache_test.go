package sandbox

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// logCounter counts log messages containing a text.
type logCounter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCounter) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

// TestTreeCache: the image's tree is extracted once and reused; another
// image (another key) gets its own; a corrupt tree is detected at the
// next use and extracted again.
func TestTreeCache(t *testing.T) {
	if inChild() {
		t.Skip("root only")
	}
	logs := &logCounter{}
	s := newSandbox(t, WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	img := bookworm(t)
	run := func(want string) {
		t.Helper()
		tree, err := s.Open(context.Background(), img, newChangeset(t))
		if err != nil {
			t.Fatal(err)
		}
		defer tree.Close()
		out, err := tree.Run(t.Context(), nil, "cat", "/etc/debian_version")
		if err != nil || !strings.HasPrefix(string(out), want) {
			t.Fatalf("cat /etc/debian_version: %q, %v", out, err)
		}
	}
	run("12.")
	run("12.")
	if n := logs.count("extracted the image's tree"); n != 1 {
		t.Errorf("two opens of one image extracted its tree %d times, want 1", n)
	}

	// Another image: its own entry.
	extra, err := random.Layer(64, "application/vnd.oci.image.layer.v1.tar+gzip")
	if err != nil {
		t.Fatal(err)
	}
	other, err := mutate.AppendLayers(img, extra)
	if err != nil {
		t.Fatal(err)
	}
	k1, _ := s.treeKey(img)
	k2, _ := s.treeKey(other)
	if k1 == k2 {
		t.Fatal("two images share a tree key")
	}
	img, other = other, img
	run("12.")
	if n := logs.count("extracted the image's tree"); n != 2 {
		t.Errorf("a second image was extracted %d times in all, want 2", n)
	}
	img = other

	// Corrupt the first image's tree: detected, extracted again.
	e, err := s.trees.Get(k1)
	if err != nil || e == nil {
		t.Fatalf("cached tree: %v, %v", e, err)
	}
	f := filepath.Join(e.Path, "root", "etc", "debian_version")
	e.Release()
	if err := os.WriteFile(f, []byte("99.0 tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("12.")
	if n := logs.count("tree is corrupt"); n != 1 {
		t.Errorf("corruption logged %d times, want 1:\n%s", n, logs.buf.String())
	}
	if n := logs.count("extracted the image's tree"); n != 3 {
		t.Errorf("the corrupt tree was not extracted again (%d extractions)", n)
	}
}

// TestTreeKeyIDMap: trees extracted under one id map are never used
// under another.
func TestTreeKeyIDMap(t *testing.T) {
	a := &idMap{UIDs: []idRange{{0, 0, 1<<32 - 1}}, GIDs: []idRange{{0, 0, 1<<32 - 1}}}
	b := &idMap{Rootless: true, UIDs: []idRange{{0, 1000, 1}, {1, 100000, 65536}}, GIDs: []idRange{{0, 1000, 1}, {1, 100000, 65536}}}
	c := &idMap{Rootless: true, UIDs: []idRange{{0, 1000, 1}, {1, 200000, 65536}}, GIDs: []idRange{{0, 1000, 1}, {1, 100000, 65536}}}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, m := range []*idMap{a, b, c} {
		k, err := (&Sandbox{idmap: m}).treeKey(img)
		if err != nil {
			t.Fatal(err)
		}
		keys[k] = true
	}
	if len(keys) != 3 {
		t.Errorf("three id maps gave %d tree keys", len(keys))
	}
}

func TestParseSubordinate(t *testing.T) {
	const file = `# comment
alice:100000:65536
1001:200000:1000
bob:300000:0
carol:x:10
dave:4294967290:100
alice:500000:10
`
	for _, tt := range []struct {
		name         string
		id           int
		start, count uint32
	}{
		{"alice", 1000, 100000, 65536}, // the first range of the user
		{"", 1001, 200000, 1000},       // by numeric id
		{"erin", 1001, 200000, 1000},
		{"bob", 1002, 0, 0},   // a zero count is no range
		{"carol", 1003, 0, 0}, // malformed
		{"dave", 1004, 0, 0},  // past the id space
		{"zed", 9999, 0, 0},
	} {
		s, c, err := parseSubordinate(strings.NewReader(file), tt.name, tt.id)
		if err != nil || s != tt.start || c != tt.count {
			t.Errorf("%s/%d: %d, %d, %v; want %d, %d", tt.name, tt.id, s, c, err, tt.start, tt.count)
		}
	}
}
