package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/drydock-project/drydock/internal/oci"
	"github.com/drydock-project/drydock/internal/patch"
)

// writePatched writes the patched image or index to dest: a registry
// reference, oci:DIR:TAG or docker-archive:FILE.
func writePatched(ctx context.Context, art *oci.Artifact, dest string, regOpts []oci.Option, log *slog.Logger) error {
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
	var nopts []name.Option
	ref, err := name.ParseReference(dest, nopts...)
	if err != nil {
		return fmt.Errorf("output %q: %w", dest, err)
	}
	d, err := art.Digest()
	if err != nil {
		return err
	}
	art.Descriptor.Digest = d
	log.Info("pushing patched image", "destination", ref.String(), "digest", d.String())
	_, err = oci.Copy(ctx, art, ref, append(regOpts, oci.WithLogger(log))...)
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

// patchProgress reports the patch's phases: a line per phase on a
// terminal, log records otherwise.
func patchProgress(g *globals, log *slog.Logger) func(patch.Event) {
	tty := isTerminal(g.stderr)
	var mu sync.Mutex
	last := ""
	return func(e patch.Event) {
		mu.Lock()
		defer mu.Unlock()
		key := e.Platform + " " + e.Phase
		if e.Phase == "download" && e.Total > 0 {
			if tty {
				fmt.Fprintf(g.stderr, "\r%s: downloading %s / %s %-40s", e.Platform, humanBytes(e.Done), humanBytes(e.Total), e.Package)
				if e.Package == "" {
					fmt.Fprintln(g.stderr)
				}
			} else if e.Package != "" {
				log.Info("downloading", "platform", e.Platform, "package", e.Package)
			}
			last = key
			return
		}
		if key == last {
			return
		}
		last = key
		if tty {
			fmt.Fprintf(g.stderr, "%s: %s\n", e.Platform, e.Phase)
		} else {
			log.Info("patch", "platform", e.Platform, "phase", e.Phase)
		}
	}
}
