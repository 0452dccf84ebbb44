package dpkg

import (
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/rootfs"
)

// finish settles conffiles, drops unchanged files, whites out what the
// old version had and the new one lacks, and writes the package's dpkg
// database entries.
func (st *unpackState) finish() error {
	if st.fields == nil {
		return errors.New("no control file")
	}
	records, err := st.settleConffiles()
	if err != nil {
		return err
	}
	if err := st.dropUnchanged(); err != nil {
		return err
	}
	if err := st.removeOld(); err != nil {
		return err
	}
	for _, p := range st.files {
		if st.u.cs.Get(p) != nil {
			st.res.Changed++
		}
	}
	return st.writeDB(records)
}

// imageMD5 returns the md5 of the image's regular file at resolved path r,
// "" when there is none.
func (u *Unpacker) imageMD5(r string) (string, error) {
	fi, err := u.fsys.Lstat(r)
	if err != nil || !fi.Mode().IsRegular() {
		return "", nil
	}
	f, err := u.fsys.Open(r)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", r, err)
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", r, err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// imageEntry returns the image's metadata of the resolved path r, or nil.
func (u *Unpacker) imageEntry(r string) *rootfs.Entry {
	e, err := u.fsys.Entry(r)
	if err != nil {
		return nil
	}
	return &e
}

// settleConffiles applies dpkg's conffile rules (with --force-confold for
// the admin's changes: a modified conffile is kept, the package's version
// goes next to it as NAME.dpkg-dist) and returns the Conffiles records.
func (st *unpackState) settleConffiles() ([]Conffile, error) {
	u := st.u
	var out []Conffile
	for _, c := range st.confOrder {
		rel := strings.TrimPrefix(c, "/")
		newMD5, ok := st.md5s[rel]
		if !ok {
			continue // declared but not shipped as a file: dpkg ignores it
		}
		r, err := u.resolve(rel)
		if err != nil {
			return nil, err
		}
		out = append(out, Conffile{Path: c, MD5: newMD5})
		cur, err := u.imageMD5(r)
		if err != nil {
			return nil, err
		}
		var oldMD5 string
		had := false
		if st.old != nil {
			var oc Conffile
			oc, had = st.old.conffiles[c]
			oldMD5 = oc.MD5
		}
		action := ""
		switch {
		case cur == newMD5:
			action = "unchanged"
			if e, ie := u.cs.Get(r), u.imageEntry(r); e != nil && ie != nil && ie.Mode == e.Mode && ie.UID == e.UID && ie.GID == e.GID {
				u.cs.Remove(r)
			}
		case had && cur == "":
			// The admin deleted it: it stays deleted, and a version
			// the package changed goes beside it as .dpkg-dist, as
			// dpkg --force-confold leaves it.
			action = "kept-deleted"
			if newMD5 == oldMD5 {
				u.cs.Remove(r)
			} else if err := u.cs.Rename(r, r+".dpkg-dist"); err != nil {
				return nil, err
			}
		case had && cur == oldMD5:
			action = "replaced"
		case !had && cur == "":
			action = "new"
		case had && newMD5 == oldMD5:
			action = "kept-modified" // the package did not change it
			u.cs.Remove(r)
		default:
			action = "kept-modified"
			if err := u.cs.Rename(r, r+".dpkg-dist"); err != nil {
				return nil, err
			}
		}
		st.res.Conffiles[c] = action
	}
	if st.old != nil {
		for _, c := range slices.Sorted(maps.Keys(st.old.conffiles)) {
			if st.conffiles[c] {
				continue
			}
			oc := st.old.conffiles[c]
			oc.Obsolete = true
			out = append(out, oc)
			st.res.Conffiles[c] = "obsolete"
		}
	}
	return out, nil
}

// dropUnchanged leaves out of the layer the files, hard links and
// symlinks the image already has exactly: same content (by the installed
// version's md5sums), size, mode and owner. A hard link stays (with its
// target) when either of them changed, since a layer's hard link must
// point into the same layer.
func (st *unpackState) dropUnchanged() error {
	u := st.u
	unchanged := map[string]bool{}
	links := map[string][]string{} // target -> hard links to it
	for p := range st.newPaths {
		e := u.cs.Get(p)
		if e == nil {
			continue
		}
		if e.Kind == layer.Hardlink {
			links[e.Linkname] = append(links[e.Linkname], p)
		}
		ie, err := u.fsys.Entry(p)
		if err != nil || ie.UID != e.UID || ie.GID != e.GID {
			continue
		}
		switch e.Kind {
		case layer.File, layer.Hardlink:
			if st.old == nil || !ie.Mode.IsRegular() || ie.Mode != e.Mode {
				continue
			}
			if t := u.cs.Get(e.Linkname); e.Kind == layer.Hardlink && (t == nil || ie.Size != t.Size) {
				continue
			} else if e.Kind == layer.File && ie.Size != e.Size {
				continue
			}
			if sum := st.old.md5sums[p]; sum != "" && sum == st.rmd5[p] {
				unchanged[p] = true
			}
		case layer.Symlink:
			if ie.Mode&fs.ModeSymlink != 0 && ie.Linkname == e.Linkname {
				unchanged[p] = true
			}
		}
	}
	for p := range unchanged {
		e := u.cs.Get(p)
		switch e.Kind {
		case layer.Hardlink:
			if !unchanged[e.Linkname] {
				continue
			}
		case layer.File:
			if slices.ContainsFunc(links[p], func(l string) bool { return !unchanged[l] }) {
				continue
			}
		}
		u.cs.Remove(p)
	}
	return nil
}

// removeOld whites out the old version's files that the new one does not
// ship, unless another package owns them. Directories stay (dpkg removes
// only empty, unowned ones), as do obsolete conffiles.
func (st *unpackState) removeOld() error {
	if st.old == nil {
		return nil
	}
	u := st.u
	for _, p := range st.old.list {
		r, err := u.resolve(p)
		if err != nil || st.newPaths[r] || st.newDirs[r] || st.old.conffiles["/"+p].Path != "" {
			continue
		}
		if u.cs.Get(r) != nil {
			continue // another package of this patch wrote it
		}
		if k, _ := u.view.Lookup(r); k == layer.Absent || k == layer.Dir {
			continue
		}
		owners, err := u.ownersOf(r)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(owners, func(o string) bool { return o != st.old.infoName && o != st.in.Name }) {
			continue
		}
		if err := u.cs.AddWhiteout(r, u.mtime); err != nil {
			return err
		}
		st.res.Removed++
	}
	return nil
}

// ownersOf returns the packages (info names) whose file lists hold the
// resolved path r.
func (u *Unpacker) ownersOf(r string) ([]string, error) {
	if u.owners == nil {
		u.owners = map[string][]string{}
		dir, suffix := DpkgInfo, ".list"
		if u.distroless {
			dir, suffix = DpkgStatusD, ".md5sums"
		}
		entries, err := fs.ReadDir(u.fsys, dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read %s: %w", dir, err)
		}
		for _, de := range entries {
			name, ok := strings.CutSuffix(de.Name(), suffix)
			if !ok {
				continue
			}
			data, err := ReadOptional(u.fsys, path.Join(dir, de.Name()))
			if err != nil {
				return nil, err
			}
			var paths []string
			if u.distroless {
				for p := range parseMD5sums(data) {
					paths = append(paths, p)
				}
			} else {
				paths = parseList(data)
			}
			for _, p := range paths {
				if rp, err := u.resolve(layer.Confine(p)); err == nil {
					u.owners[rp] = append(u.owners[rp], name)
				}
			}
		}
	}
	return u.owners[r], nil
}

// addGenerated adds a file the patch generates (database files), unless
// the image already has it with that content.
func (u *Unpacker) addGenerated(p string, mode fs.FileMode, data []byte) error {
	if cur, err := ReadOptional(u.fsys, p); err == nil && cur != nil && string(cur) == string(data) {
		if ie, err := u.fsys.Entry(p); err == nil && ie.Mode.Perm() == mode.Perm() && ie.UID == 0 && ie.GID == 0 {
			u.cs.Remove(p)
			return nil
		}
	}
	_, err := u.cs.AddBytes(p, mode, 0, 0, u.mtime, data)
	return err
}

// writeDB writes the package's info files and status entry.
func (st *unpackState) writeDB(conffiles []Conffile) error {
	u := st.u
	md5sums := st.ctrl.Files["md5sums"]
	if md5sums == nil {
		var b strings.Builder
		for _, l := range st.list[1:] {
			if sum, ok := st.md5s[l[1:]]; ok {
				fmt.Fprintf(&b, "%s  %s\n", sum, l[1:])
			}
		}
		md5sums = []byte(b.String())
	}
	stanza := statusStanza(st.fields, conffiles, u.distroless)
	if u.distroless {
		if err := u.addGenerated(path.Join(DpkgStatusD, st.in.Name), 0o644, []byte(stanza)); err != nil {
			return err
		}
		return u.addGenerated(path.Join(DpkgStatusD, st.in.Name+".md5sums"), 0o644, md5sums)
	}
	name := InfoName(st.in.Name, st.res.Arch, st.res.MultiArch)
	written := map[string]bool{}
	add := func(suffix string, mode fs.FileMode, data []byte) error {
		written[name+"."+suffix] = true
		return u.addGenerated(path.Join(DpkgInfo, name+"."+suffix), mode, data)
	}
	// dpkg keeps obsolete conffiles owned: they follow the shipped paths.
	list := st.list
	for _, c := range conffiles {
		if c.Obsolete {
			list = append(list, c.Path)
		}
	}
	if err := add("list", 0o644, []byte(strings.Join(list, "\n")+"\n")); err != nil {
		return err
	}
	if err := add("md5sums", 0o644, md5sums); err != nil {
		return err
	}
	for _, m := range infoMembers {
		data, ok := st.ctrl.Files[m]
		if !ok || m == "md5sums" {
			continue
		}
		mode := fs.FileMode(0o644)
		if slices.Contains(ScriptNames, m) {
			mode = 0o755
		}
		if err := add(m, mode, data); err != nil {
			return err
		}
	}
	if st.old != nil {
		if u.infoDir == nil {
			entries, err := fs.ReadDir(u.fsys, DpkgInfo)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("read %s: %w", DpkgInfo, err)
			}
			u.infoDir = []string{}
			for _, de := range entries {
				u.infoDir = append(u.infoDir, de.Name())
			}
		}
		for _, f := range u.infoDir {
			suffix, ok := strings.CutPrefix(f, st.old.infoName+".")
			if !ok || written[f] || (suffix != "list" && !slices.Contains(infoMembers, suffix)) {
				continue
			}
			if err := u.cs.AddWhiteout(path.Join(DpkgInfo, f), u.mtime); err != nil {
				return err
			}
		}
	}
	u.status.set(st.in.Name, st.res.Arch, stanza)
	return nil
}

// Finish writes the dpkg status file after the last Install, 0644 as
// dpkg writes it whatever mode the image gave it.
func (u *Unpacker) Finish() error {
	if u.distroless {
		return nil
	}
	return u.addGenerated(DpkgStatus, 0o644, u.status.bytes(u.sorted))
}
