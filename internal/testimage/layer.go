package testimage

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultPath is the PATH of Debian's official images.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// writeLayer writes rootfs as a deterministic, gzipped layer tar: entries in
// lexical order, owners from the filesystem by number only, modification
// times clamped to epoch, hard links kept as links, and device nodes,
// sockets and FIFOs left out (as official images leave /dev empty).
// Compressing once here (gzip's default level, no name or time in the gzip
// header) spares ggcr from compressing the layer for its digest and again
// for the layout.
func writeLayer(rootfs, out string, epoch time.Time) error {
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("creating layer %q: %w", out, err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
	if err != nil {
		f.Close()
		return err
	}
	if err := tarTree(rootfs, zw, epoch); err != nil {
		f.Close()
		return fmt.Errorf("archiving %q: %w", rootfs, err)
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type inode struct{ dev, ino uint64 }

func tarTree(rootfs string, w io.Writer, epoch time.Time) error {
	tw := tar.NewWriter(w)
	links := map[inode]string{}
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(rootfs, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode()
		if mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeSocket|fs.ModeNamedPipe|fs.ModeIrregular) != 0 {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat", rel)
		}
		hdr := &tar.Header{
			Name:    rel,
			Mode:    int64(mode.Perm()),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: clamp(fi.ModTime(), epoch),
			Format:  tar.FormatPAX,
		}
		if mode&fs.ModeSetuid != 0 {
			hdr.Mode |= 0o4000
		}
		if mode&fs.ModeSetgid != 0 {
			hdr.Mode |= 0o2000
		}
		if mode&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		switch {
		case mode.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		case mode.IsRegular():
			if st.Nlink > 1 {
				id := inode{uint64(st.Dev), st.Ino}
				if first, ok := links[id]; ok {
					hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
					return tw.WriteHeader(hdr)
				}
				links[id] = rel
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
			if capa, err := getxattr(p, "security.capability"); err == nil && len(capa) > 0 {
				hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(capa)}
			}
		default:
			return nil
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		if _, err := io.Copy(tw, src); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// clamp is min(t, epoch), to the second (SOURCE_DATE_EPOCH semantics).
func clamp(t, epoch time.Time) time.Time {
	if t.After(epoch) {
		return epoch.UTC()
	}
	return t.Truncate(time.Second).UTC()
}

func getxattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := syscall.Getxattr(path, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// assemble makes the single-layer image of s from a gzipped layer tar: OCI media
// types, gzip, a fixed creation time and a realistic config and history.
func assemble(s Spec, tarPath, createdBy string, epoch time.Time) (v1.Image, int64, error) {
	layer, err := tarball.LayerFromFile(tarPath, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, 0, fmt.Errorf("reading layer %q: %w", tarPath, err)
	}
	size, err := layer.Size()
	if err != nil {
		return nil, 0, fmt.Errorf("compressing layer %q: %w", tarPath, err)
	}
	created := v1.Time{Time: epoch}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   created,
			CreatedBy: "# drydock testimage " + BuilderVersion + ": " + createdBy,
			Comment:   fmt.Sprintf("debian %s %s, main suite only", s.Suite, s.Arch),
		},
	})
	if err != nil {
		return nil, 0, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, 0, err
	}
	cf = cf.DeepCopy()
	p := s.Platform()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = created
	cf.Config.Env = []string{DefaultPath}
	cf.Config.Cmd = s.Cmd
	if len(s.Cmd) > 0 {
		cmd, _ := json.Marshal(s.Cmd)
		cf.History = append(cf.History, v1.History{
			Created:    created,
			CreatedBy:  "CMD " + string(cmd),
			EmptyLayer: true,
		})
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, 0, err
	}
	return img, size, nil
}
