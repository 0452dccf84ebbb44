package patch

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/drydock-project/drydock/internal/oci"
	"github.com/drydock-project/drydock/internal/patch/backend"
	"github.com/drydock-project/drydock/internal/patch/cache"
	"github.com/drydock-project/drydock/internal/patch/sandbox"
)

// write writes the patched image or index to dest: a registry reference,
// oci:DIR:TAG or docker-archive:FILE.
func write(ctx context.Context, art *oci.Artifact, dest string, regOpts []oci.Option) error {
	switch {
	case strings.HasPrefix(dest, "oci:"):
		dir, tag, _ := strings.Cut(strings.TrimPrefix(dest, "oci:"), ":")
		return writeLayout(dir, tag, art)
	case strings.HasPrefix(dest, "docker-archive:"):
		if art.Image == nil {
			return fmt.Errorf("%s: a docker archive holds single-platform images; write a multi-platform result to a registry or oci:DIR", dest)
		}
		file := strings.TrimPrefix(dest, "docker-archive:")
		ref, err := name.NewTag("drydock.local/patched:latest")
		if err != nil {
			return err
		}
		tmp := file + ".tmp"
		if err := tarball.WriteToFile(tmp, ref, art.Image); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("write %s: %w", file, err)
		}
		return os.Rename(tmp, file)
	}
	ref, err := name.ParseReference(dest)
	if err != nil {
		return fmt.Errorf("output %q: %w", dest, err)
	}
	d, err := art.Digest()
	if err != nil {
		return err
	}
	art.Descriptor.Digest = d
	_, err = oci.Copy(ctx, art, ref, regOpts...)
	return err
}

func writeLayout(dir, tag string, art *oci.Artifact) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("create OCI layout %s: %w", dir, err)
		}
	}
	ann := layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})
	matcher := match.Annotation("org.opencontainers.image.ref.name", tag)
	if art.Image != nil {
		err = p.ReplaceImage(art.Image, matcher, ann)
	} else {
		err = p.ReplaceIndex(art.Index, matcher, ann)
	}
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	return nil
}

// defaultSandbox makes the sandbox of a run: image trees cached under
// the cache directory.
func defaultSandbox(o *options) func(SandboxMode) (backend.Sandbox, error) {
	return func(m SandboxMode) (backend.Sandbox, error) {
		return sandbox.New(m, sandbox.WithCacheDir(filepath.Join(o.cacheDir, "trees"), o.limits.Trees), sandbox.WithLogger(o.log))
	}
}

// imageCache opens the cache of layer indexes and image files.
func (o *options) imageCache() (*cache.Dir, error) {
	return cache.Open(filepath.Join(o.cacheDir, "images"), cmp.Or(o.limits.Images, DefaultImageCacheSize))
}
