package sandbox

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/patch/layer"
)

// applyDiff adds a diff stream (see child.diff) of at most limit entries
// to cs, every entry dated mtime.
func applyDiff(tr *tar.Reader, cs *layer.Changeset, mtime time.Time, limit int) error {
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if n >= limit {
			return fmt.Errorf("more than %d changes", limit)
		}
		name := strings.TrimSuffix(h.Name, "/")
		dir, base := path.Split(name)
		check := name
		if base == ".wh..wh..opq" {
			check = strings.TrimSuffix(dir, "/")
		} else if strings.HasPrefix(base, ".wh.") {
			check = dir + strings.TrimPrefix(base, ".wh.")
		}
		if err := layer.CheckPath(check); err != nil {
			return err
		}
		switch {
		case h.PAXRecords[paxRemove] == "1":
			removeUnder(cs, name, true)
		case base == ".wh..wh..opq":
			removeUnder(cs, strings.TrimSuffix(dir, "/"), false)
		case strings.HasPrefix(base, ".wh."):
			target := dir + strings.TrimPrefix(base, ".wh.")
			removeUnder(cs, target, true)
			if err := cs.AddWhiteout(target, mtime); err != nil {
				return err
			}
		default:
			mode := fs.FileMode(h.Mode&0o777) | specialBits(h.Mode)
			switch h.Typeflag {
			case tar.TypeDir:
				err = cs.AddDir(name, mode, h.Uid, h.Gid, mtime)
			case tar.TypeSymlink:
				removeUnder(cs, name, false)
				err = cs.AddSymlink(name, h.Linkname, h.Uid, h.Gid, mtime)
			case tar.TypeReg:
				removeUnder(cs, name, false)
				_, err = cs.AddFile(name, mode, h.Uid, h.Gid, mtime, tr, h.Size)
			default:
				err = fmt.Errorf("%s: unexpected entry type %q", name, h.Typeflag)
			}
			if err != nil {
				return err
			}
		}
	}
}

// removeUnder drops from cs the entries below p, and p itself when self.
func removeUnder(cs *layer.Changeset, p string, self bool) {
	if self {
		cs.Remove(p)
	}
	prefix := p + "/"
	for _, e := range cs.Entries() {
		if strings.HasPrefix(e.Path, prefix) {
			cs.Remove(e.Path)
		}
	}
}
