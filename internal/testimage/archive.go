package testimage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNoSkopeo means skopeo is not installed; callers skip.
var ErrNoSkopeo = errors.New("testimage: skopeo not installed (apt-get install skopeo)")

// OCIArchive writes the image as an oci-archive tar (a tarred OCI layout whose
// only manifest is ref-named ref, as `skopeo copy ... oci-archive:FILE:REF`
// makes) and returns its path. Without skopeo it returns ErrNoSkopeo.
func (i *Image) OCIArchive(ctx context.Context, dir, ref string) (string, error) {
	out := filepath.Join(dir, sanitize(i.Ref)+".oci.tar")
	return out, skopeoCopy(ctx, i.OCIReference(), "oci-archive:"+out+":"+ref)
}

// DockerArchive writes the image as a docker-archive tar (`docker save`
// format) tagged name:tag, via skopeo so that tests compare with exactly what
// skopeo produces. Without skopeo it returns ErrNoSkopeo.
func (i *Image) DockerArchive(ctx context.Context, dir, name, tag string) (string, error) {
	out := filepath.Join(dir, sanitize(i.Ref)+".docker.tar")
	return out, skopeoCopy(ctx, i.OCIReference(), "docker-archive:"+out+":"+name+":"+tag)
}

// OCIArchive writes the multi-platform index as an oci-archive tar.
func (x *Index) OCIArchive(ctx context.Context, dir, ref string) (string, error) {
	out := filepath.Join(dir, sanitize(x.Ref)+".oci.tar")
	return out, skopeoCopy(ctx, x.OCIReference(), "oci-archive:"+out+":"+ref, "--multi-arch=all")
}

// LoadIntoContainersStorage copies the image into containers-storage (what
// podman runs) as localhost/<name>:<tag> and returns that reference.
func (i *Image) LoadIntoContainersStorage(ctx context.Context, name, tag string) (string, error) {
	ref := "localhost/" + name + ":" + tag
	return ref, skopeoCopy(ctx, i.OCIReference(), "containers-storage:"+ref)
}

func skopeoCopy(ctx context.Context, src, dst string, extra ...string) error {
	bin, err := exec.LookPath("skopeo")
	if err != nil {
		return ErrNoSkopeo
	}
	if p, ok := strings.CutPrefix(dst, "oci-archive:"); ok {
		os.Remove(strings.SplitN(p, ":", 2)[0])
	}
	if p, ok := strings.CutPrefix(dst, "docker-archive:"); ok {
		os.Remove(strings.SplitN(p, ":", 2)[0])
	}
	args := append([]string{"--insecure-policy", "copy", "--quiet"}, extra...)
	args = append(args, src, dst)
	if out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("skopeo copy %s %s: %w: %s", src, dst, err, out)
	}
	return nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ':' {
			return '_'
		}
		return r
	}, s)
}
