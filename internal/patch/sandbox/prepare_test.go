package sandbox

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// layerCounter counts the reads of an image's layers: one per extraction.
type layerCounter struct {
	v1.Image
	n atomic.Int32
}

func (c *layerCounter) Layers() ([]v1.Layer, error) {
	c.n.Add(1)
	return c.Image.Layers()
}

// TestPrepare: a Prepare running beside an Open of the same image
// extracts the tree once between them, and the Open uses it; a cancelled
// Prepare leaves nothing in the cache, and the next Open extracts.
func TestPrepare(t *testing.T) {
	if inChild() {
		t.Skip("root only")
	}
	img := &layerCounter{Image: bookworm(t)}

	// Cancelled before it could finish: no entry, no temporary directory.
	s := newSandbox(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Prepare(ctx, img); err == nil {
		t.Fatal("a cancelled Prepare succeeded")
	}
	if des, err := os.ReadDir(s.trees.Root()); err != nil || len(des) != 0 {
		t.Fatalf("a cancelled Prepare left %v (%v)", des, err)
	}

	// Beside an Open: one extraction.
	img.n.Store(0)
	done := make(chan error, 1)
	go func() { done <- s.Prepare(t.Context(), img) }()
	tree, err := s.Open(t.Context(), img, newChangeset(t))
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if err := <-done; err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	out, err := tree.Run(t.Context(), nil, "cat", "/etc/debian_version")
	if err != nil || !strings.HasPrefix(string(out), "12.") {
		t.Fatalf("cat /etc/debian_version: %q, %v", out, err)
	}
	if n := img.n.Load(); n != 1 {
		t.Errorf("a Prepare beside an Open extracted the tree %d times, want 1", n)
	}
	// Prepared already: nothing to do.
	if err := s.Prepare(t.Context(), img); err != nil {
		t.Fatal(err)
	}
	if n := img.n.Load(); n != 1 {
		t.Errorf("a Prepare of a cached tree extracted it again (%d in all)", n)
	}
}
