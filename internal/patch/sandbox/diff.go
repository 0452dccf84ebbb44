package sandbox

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"
)

// Tar records of the diff stream beyond plain entries: a path the
// commands removed that only the changeset had.
const paxRemove = "DRYDOCK.remove"

// diff writes, as a tar stream on the data descriptor, what the commands
// changed in the writable tree (overlayfs's upper directory, or the copy)
// since cfg.Snapshot: new and changed files, directories and symbolic
// links with their owners as the image has them (this process sees the
// namespace's ids), ".wh." whiteouts for removed image paths, opaque
// markers for directories replaced whole, and removals of paths only the
// changeset had. Then it removes cfg.Dirs.
func (c *child) diff(cfg config) int {
	bw := bufio.NewWriterSize(c.data, pipeBuffer)
	tw := tar.NewWriter(bw)
	d := &differ{cfg: cfg, tw: tw, seen: map[string]bool{}, max: cfg.MaxBytes}
	if d.max <= 0 {
		d.max = defaultMaxTree
	}
	if !cfg.Overlay {
		m, err := readManifest(cfg.Manifest)
		if err != nil {
			return c.fail(err)
		}
		d.lowerManifest = m
	}
	base := cfg.Upper
	if !cfg.Overlay {
		base = cfg.Root
	}
	err := walkTree(base, ignored, d.visit)
	if err == nil {
		err = d.vanished()
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	c.data.Close()
	if err != nil {
		return c.fail(fmt.Errorf("diff: %w", err))
	}
	for _, dir := range cfg.Dirs {
		if err := removeTree(dir); err != nil {
			return c.fail(err)
		}
	}
	return sendOr(c, reply{})
}

type differ struct {
	cfg           config
	tw            *tar.Writer
	seen          map[string]bool
	lowerManifest map[string]snapEntry // copy mode: what the image had
	read, max     int64
}

func (d *differ) header(name string, typ byte, e snapEntry) *tar.Header {
	h := &tar.Header{Name: name, Typeflag: typ, Uid: e.UID, Gid: e.GID, Mode: tarMode(e.Mode), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if typ == tar.TypeDir {
		h.Name += "/"
	}
	return h
}

func tarMode(m fs.FileMode) int64 {
	v := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

func (d *differ) marker(name string) error {
	return d.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX})
}

func sameOwner(a, b snapEntry) bool { return a.UID == b.UID && a.GID == b.GID }

// lower describes the image's own version of name (before the changes),
// if any.
func (d *differ) lower(name string) (snapEntry, string, bool) {
	if d.lowerManifest != nil {
		e, ok := d.lowerManifest[name]
		return e, filepath.Join(d.cfg.Lower, name), ok
	}
	p := filepath.Join(d.cfg.Lower, name)
	fi, err := os.Lstat(p)
	if err != nil {
		return snapEntry{}, p, false
	}
	e, err := statEntry(p, fi)
	return e, p, err == nil
}

func (d *differ) visit(name, p string, fi fs.FileInfo) error {
	d.seen[name] = true
	e, err := statEntry(p, fi)
	if err != nil {
		return err
	}
	old, had := d.cfg.Snapshot[name]
	if e.Whiteout {
		if had && old.Whiteout {
			return nil
		}
		dir, base := path.Split(name)
		return d.marker(dir + ".wh." + base)
	}
	if cmp := old; had {
		cmp.SHA256 = ""
		if cmp == e {
			return nil
		}
	}
	low, lowPath, inLower := d.lower(name)
	// The copy mode's snapshot holds every path of the tree, so an image
	// path it lacks, under a parent it has, is one the changeset removed.
	// Put back by the commands, it is written however like the image's
	// it is, or the changeset's whiteout would stay; a directory put back
	// hides what the image has below it, as an opaque one of overlayfs.
	putBack := false
	if d.lowerManifest != nil && !had && inLower {
		_, parentHad := d.cfg.Snapshot[path.Dir(name)]
		putBack = parentHad || path.Dir(name) == "."
	}
	// Otherwise a path new to the writable tree that the image has is
	// compared with the image's: overlayfs copied it up, or it lies below
	// a directory put back.
	fromLower := !had && inLower && !putBack
	switch {
	case fi.IsDir():
		if !had && (name == "proc" || name == "dev") {
			return nil // mount points the sandbox made
		}
		// A directory's own entry is written when its mode or owner
		// changed, never for being replaced whole: the copy mode cannot
		// see that, and the layer must not depend on the host.
		copyUp := fromLower && low.Mode == e.Mode && sameOwner(low, e)
		if !copyUp && !(had && old.Mode == e.Mode && sameOwner(old, e)) {
			if err := d.tw.WriteHeader(d.header(name, tar.TypeDir, e)); err != nil {
				return err
			}
		}
		if (putBack || (e.Opaque && !(had && old.Opaque))) && inLower && low.Mode.IsDir() {
			// The commands replaced the directory whole, and overlayfs
			// hides all of the image's version below it: each path the
			// image has there and the new directory lacks gets its own
			// whiteout, as the copy mode writes them. What the new
			// directory holds is compared with the image's like any
			// other path, so a file put back unchanged is left out
			// rather than whited out.
			return d.hiddenBelow(name, lowPath, p)
		}
		return nil
	case fi.Mode()&fs.ModeSymlink != 0:
		if (fromLower && low.Target == e.Target && low.Mode.Type() == e.Mode.Type() && sameOwner(low, e)) ||
			(had && old.Target == e.Target && old.Mode.Type() == e.Mode.Type() && sameOwner(old, e)) {
			return nil
		}
		h := d.header(name, tar.TypeSymlink, e)
		h.Linkname = e.Target
		return d.tw.WriteHeader(h)
	case fi.Mode().IsRegular():
		if d.read += e.Size; d.read > d.max {
			return fmt.Errorf("the commands wrote more than %d bytes", d.max)
		}
		sum, err := hashFile(p)
		if err != nil {
			return err
		}
		if had && old.SHA256 == sum && old.Mode == e.Mode && sameOwner(old, e) {
			return nil
		}
		if fromLower && low.Mode == e.Mode && sameOwner(low, e) && low.Size == e.Size {
			ls := low.SHA256
			if ls == "" {
				if ls, err = hashFile(lowPath); err != nil {
					return err
				}
			}
			if ls == sum {
				return nil // rewritten with the same content
			}
		}
		f, err := os.OpenFile(p, os.O_RDONLY|os.O_EXCL, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		h := d.header(name, tar.TypeReg, e)
		h.Size = e.Size
		if err := d.tw.WriteHeader(h); err != nil {
			return err
		}
		n, err := io.Copy(d.tw, io.LimitReader(f, e.Size))
		if err == nil && n != e.Size {
			err = fmt.Errorf("%s changed size while read", name)
		}
		return err
	}
	return nil // sockets, FIFOs: not kept
}

// hiddenBelow writes a whiteout for each path of the image's directory
// lowDir (named name) that the opaque directory upDir hides and does not
// hold itself, descending into the directories both have, except those
// opaque in turn (their own visit covers them).
func (d *differ) hiddenBelow(name, lowDir, upDir string) error {
	children, err := os.ReadDir(lowDir)
	if err != nil {
		return err
	}
	for _, ch := range children { // sorted by name: a deterministic stream
		child := name + "/" + ch.Name()
		if ignored(child) {
			continue
		}
		up := filepath.Join(upDir, ch.Name())
		fi, err := os.Lstat(up)
		if errors.Is(err, fs.ErrNotExist) {
			if err := d.marker(name + "/.wh." + ch.Name()); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if !ch.IsDir() || !fi.IsDir() {
			continue // replaced by the new entry, which its visit writes
		}
		e, err := statEntry(up, fi)
		if err != nil {
			return err
		}
		if e.Whiteout || e.Opaque {
			continue
		}
		if err := d.hiddenBelow(child, filepath.Join(lowDir, ch.Name()), up); err != nil {
			return err
		}
	}
	return nil
}

// vanished reports what the snapshot had and the tree no longer has.
func (d *differ) vanished() error {
	var gone []string
	for _, name := range sortedKeys(d.cfg.Snapshot) {
		if !d.seen[name] && !ignored(name) {
			gone = append(gone, name)
		}
	}
	for _, name := range gone {
		if dir := path.Dir(name); dir != "." && slices.Contains(gone, dir) {
			continue // its parent's removal covers it
		}
		if d.lowerManifest != nil {
			if _, ok := d.lowerManifest[name]; ok {
				dir, base := path.Split(name)
				if err := d.marker(dir + ".wh." + base); err != nil {
					return err
				}
				continue
			}
		}
		// overlayfs leaves a whiteout for what the image has: this path
		// only the changeset had.
		h := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX,
			PAXRecords: map[string]string{paxRemove: "1"}}
		if err := d.tw.WriteHeader(h); err != nil {
			return err
		}
	}
	return nil
}
