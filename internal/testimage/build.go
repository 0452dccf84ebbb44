package testimage

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// refNameAnnotation tags a manifest in an OCI layout (what skopeo's
// oci:DIR:TAG looks up).
const refNameAnnotation = "org.opencontainers.image.ref.name"

// meta is what the cache records next to a layout.
type meta struct {
	Key       string        `json:"key"`
	Spec      *Spec         `json:"spec,omitempty"`
	Specs     []Spec        `json:"specs,omitempty"`
	Digest    string        `json:"digest"`
	Size      int64         `json:"size,omitempty"`
	BuildTime time.Duration `json:"buildTime"`
	Mirror    MirrorInfo    `json:"mirror"`
}

// Build returns the image of s, building it into the cache unless the cache
// already holds it.
func Build(ctx context.Context, s Spec, opts ...Option) (*Image, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	key := s.key(*o.mirror)
	var m meta
	dir, reused, err := cached(ctx, o, s.Name, key, &m, func(tmp string) (meta, error) {
		return buildImage(ctx, o, s, key, tmp)
	})
	if err != nil {
		return nil, fmt.Errorf("building test image %q: %w", s.Name, err)
	}
	d, err := v1.NewHash(m.Digest)
	if err != nil {
		return nil, fmt.Errorf("test image %q: cached digest: %w", s.Name, err)
	}
	return &Image{Spec: s, LayoutDir: filepath.Join(dir, "oci"), Ref: s.Name, Digest: d,
		Platform: s.Platform(), Size: m.Size, Mirror: m.Mirror, Reused: reused, BuildTime: m.BuildTime}, nil
}

// BuildIndex builds (or reuses) every spec and a two-or-more-platform OCI
// index named name over them.
func BuildIndex(ctx context.Context, name string, specs []Spec, opts ...Option) (*Index, error) {
	if len(specs) < 2 {
		return nil, fmt.Errorf("testimage: index %q needs at least two platforms", name)
	}
	if !validName(name) {
		return nil, fmt.Errorf("testimage: invalid index name %q", name)
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var imgs []*Image
	for _, s := range specs {
		p := s.Platform()
		if seen[p.String()] {
			return nil, fmt.Errorf("testimage: index %q: platform %s twice", name, p.String())
		}
		seen[p.String()] = true
		img, err := Build(ctx, s, opts...)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	key := keyOf(struct {
		Index   string
		Images  []string
		Builder string
	}{name, digestsOf(imgs), BuilderVersion})
	var m meta
	dir, reused, err := cached(ctx, o, name, key, &m, func(tmp string) (meta, error) {
		start := time.Now()
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		for _, img := range imgs {
			vi, err := img.Open()
			if err != nil {
				return meta{}, err
			}
			p := img.Platform
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: vi, Descriptor: v1.Descriptor{Platform: &p}})
		}
		if err := writeLayout(filepath.Join(tmp, "oci"), idx, name); err != nil {
			return meta{}, err
		}
		d, err := idx.Digest()
		if err != nil {
			return meta{}, err
		}
		return meta{Key: key, Specs: specs, Digest: d.String(), BuildTime: time.Since(start), Mirror: *o.mirror}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("building test index %q: %w", name, err)
	}
	d, err := v1.NewHash(m.Digest)
	if err != nil {
		return nil, fmt.Errorf("test index %q: cached digest: %w", name, err)
	}
	return &Index{Name: name, LayoutDir: filepath.Join(dir, "oci"), Ref: name, Digest: d, Images: imgs,
		Reused: reused, BuildTime: m.BuildTime}, nil
}

func digestsOf(imgs []*Image) []string {
	var out []string
	for _, i := range imgs {
		out = append(out, i.Digest.String())
	}
	return out
}

// Open reads the image from its layout.
func (i *Image) Open() (v1.Image, error) {
	p, err := layout.FromPath(i.LayoutDir)
	if err != nil {
		return nil, fmt.Errorf("opening layout %q: %w", i.LayoutDir, err)
	}
	img, err := p.Image(i.Digest)
	if err != nil {
		return nil, fmt.Errorf("reading image %s from %q: %w", i.Digest, i.LayoutDir, err)
	}
	return img, nil
}

// Open reads the index from its layout.
func (x *Index) Open() (v1.ImageIndex, error) {
	p, err := layout.FromPath(x.LayoutDir)
	if err != nil {
		return nil, fmt.Errorf("opening layout %q: %w", x.LayoutDir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	child, err := idx.ImageIndex(x.Digest)
	if err != nil {
		return nil, fmt.Errorf("reading index %s from %q: %w", x.Digest, x.LayoutDir, err)
	}
	return child, nil
}

// writeLayout writes an image or index as the only, ref-named entry of a new
// OCI layout.
func writeLayout(dir string, item any, ref string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("creating layout %q: %w", dir, err)
	}
	ann := layout.WithAnnotations(map[string]string{refNameAnnotation: ref})
	switch v := item.(type) {
	case v1.Image:
		err = p.AppendImage(v, ann)
	case v1.ImageIndex:
		err = p.AppendIndex(v, ann)
	default:
		err = fmt.Errorf("unexpected %T", item)
	}
	if err != nil {
		return fmt.Errorf("writing layout %q: %w", dir, err)
	}
	return nil
}

// cached returns <root>/<name> holding a build with the given key, building
// it when missing. build writes into tmp (which it may fill freely) and
// returns the meta to record. The build runs under an exclusive file lock and
// lands with a rename, so concurrent processes build once and readers never
// see half a build.
func cached(ctx context.Context, o *options, name, key string, m *meta, build func(tmp string) (meta, error)) (dir string, reused bool, err error) {
	root := o.root()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", false, err
	}
	dir = filepath.Join(root, name)
	unlock, err := lockFile(ctx, filepath.Join(root, name+".lock"))
	if err != nil {
		return "", false, err
	}
	defer unlock()
	if !o.rebuild && readMeta(dir, key, m) {
		return dir, true, nil
	}
	// Holding the lock, any earlier build directory of this name is a
	// leftover of a killed process.
	stale, _ := filepath.Glob(filepath.Join(root, ".build-"+name+"-*"))
	for _, d := range stale {
		removeTree(d)
	}
	tmp, err := os.MkdirTemp(root, ".build-"+name+"-")
	if err != nil {
		return "", false, err
	}
	defer removeTree(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", false, err
	}
	res, err := build(tmp)
	if err != nil {
		return "", false, err
	}
	*m = res
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", false, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), append(b, '\n'), 0o644); err != nil {
		return "", false, err
	}
	old := ""
	if _, err := os.Lstat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return "", false, err
		}
		defer removeTree(old)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", false, err
	}
	return dir, false, nil
}

func readMeta(dir, key string, m *meta) bool {
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil || json.Unmarshal(b, m) != nil || m.Key != key {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, "oci", "index.json"))
	return err == nil
}

// lockFile takes an exclusive flock on path, waiting (and honouring ctx)
// while another process holds it.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock %q: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %q: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// removeTree removes a build directory, first detaching anything a failed
// debootstrap left mounted inside it (proc, sys), so that RemoveAll never
// walks into a live kernel filesystem.
func removeTree(dir string) {
	unmountUnder(dir)
	os.RemoveAll(dir)
}

func unmountUnder(dir string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == abs || strings.HasPrefix(fields[4], abs+"/")) {
			mounts = append(mounts, fields[4])
		}
	}
	f.Close()
	for i := len(mounts) - 1; i >= 0; i-- { // innermost first
		syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
}
