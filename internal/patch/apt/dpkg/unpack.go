package dpkg

import (
	"archive/tar"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/patch/apt/resolve"
	"github.com/drydock-project/drydock/internal/patch/deb"
	"github.com/drydock-project/drydock/internal/patch/layer"
)

// ImageFS is the read-only view of the image an Unpacker installs into:
// a *rootfs.FS.
type ImageFS = layer.ImageFS

// ErrDpkgConflict is wrapped by errors about a package that dpkg would
// refuse to unpack over the image's files (a file over a directory).
var ErrDpkgConflict = errors.New("package conflicts with the image's files")

// Install is one package an Unpacker installs: the verified .deb of a
// resolution step.
type Install struct {
	Name    string // binary package name
	Version string // the version the .deb must hold
	From    string // the installed version; "" for a new package
	Deb     string // path of the .deb, already verified against its index
}

// Installed reports what unpacking one package did.
type Installed struct {
	Name, Arch, MultiArch string
	From, To              string
	// Files is the number of non-directory entries the package ships;
	// Changed of them went into the layer, Removed paths of the old
	// version were whited out.
	Files, Changed, Removed int
	// Conffiles lists what happened to each conffile: "new", "replaced",
	// "unchanged", "kept-modified" (the admin's file stays, the package's
	// version is written next to it as .dpkg-dist), "kept-deleted",
	// "obsolete".
	Conffiles map[string]string
	// Control holds the new version's control members (maintainer scripts,
	// triggers, shlibs...), OldScripts the installed version's scripts
	// read from the image (by script name: "prerm", "postrm", ...).
	Control    map[string][]byte
	OldScripts map[string][]byte
	// Depends names the packages of Depends and Pre-Depends (every
	// alternative), for ordering configuration.
	Depends []string
}

// Unpacker installs .deb packages into a changeset over an image, leaving
// the filesystem as dpkg would: files placed through the image's
// directory symlinks (a package shipping /lib/x on an image where
// /lib -> usr/lib writes usr/lib/x), files the old version had and the new
// one lacks whited out, unmodified conffiles replaced, the dpkg database
// (status or distroless status.d, info/*.list, .md5sums, .conffiles,
// maintainer scripts) rewritten. Maintainer scripts are not run: the
// caller decides what to do with them (see Installed.Control).
//
// Unchanged files (same content, mode and owner as the image's) are left
// out of the changeset, so the layer holds only what changed.
type Unpacker struct {
	fsys       ImageFS
	view       *layer.Overlay // the image with cs applied
	arch       string
	cs         *layer.Changeset
	mtime      time.Time
	lim        deb.Limits
	status     *statusFile // nil for distroless images
	sorted     bool
	distroless bool
	owners     map[string][]string // resolved path -> info names owning it (lazy)
	infoDir    []string            // names under var/lib/dpkg/info (lazy)
}

// NewUnpacker prepares installing into the image fsys of Debian
// architecture arch; generated files (the dpkg database) get mtime.
func NewUnpacker(fsys ImageFS, arch string, cs *layer.Changeset, mtime time.Time) (*Unpacker, error) {
	u := &Unpacker{fsys: fsys, view: layer.NewOverlay(fsys, cs), arch: arch, cs: cs, mtime: mtime, lim: deb.DefaultLimits()}
	data, err := ReadOptional(fsys, DpkgStatus)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", DpkgStatus, err)
	}
	if data == nil {
		if _, err := fs.Stat(fsys, DpkgStatusD); err != nil {
			return nil, fmt.Errorf("image has neither %s nor %s: not a dpkg-based image", DpkgStatus, DpkgStatusD)
		}
		u.distroless = true
		return u, nil
	}
	if u.status, err = parseStatusFile(data); err != nil {
		return nil, err
	}
	u.sorted = u.status.isSorted()
	return u, nil
}

// Distroless reports whether the image records packages in status.d only.
func (u *Unpacker) Distroless() bool { return u.distroless }

// SetLimits overrides the bounds on what one .deb may make us read.
func (u *Unpacker) SetLimits(l deb.Limits) { u.lim = l }

// resolve resolves the directories of p (a clean relative path), not its
// last element: where dpkg would write p. A file where a directory is
// needed is ErrDpkgConflict.
func (u *Unpacker) resolve(p string) (string, error) {
	r, err := u.view.Resolve(p)
	if errors.Is(err, layer.ErrNotDir) {
		return "", fmt.Errorf("%w: %w", err, ErrDpkgConflict)
	}
	return r, err
}

// oldPackage is what the image records about the installed version.
type oldPackage struct {
	infoName  string
	list      []string          // shipped paths, relative
	md5sums   map[string]string // resolved path -> md5
	conffiles map[string]Conffile
	scripts   map[string][]byte
	stanza    string
}

// ScriptNames are the maintainer scripts a package may have.
var ScriptNames = []string{"preinst", "postinst", "prerm", "postrm", "config"}

// infoMembers are the control members dpkg keeps under info/, besides the
// .list it writes itself.
var infoMembers = []string{"conffiles", "config", "md5sums", "postinst", "postrm", "preinst", "prerm", "shlibs", "symbols", "templates", "triggers"}

func (u *Unpacker) readOld(name string) (*oldPackage, error) {
	old := &oldPackage{md5sums: map[string]string{}, conffiles: map[string]Conffile{}, scripts: map[string][]byte{}}
	var md5data []byte
	if u.distroless {
		st, err := ReadOptional(u.fsys, path.Join(DpkgStatusD, name))
		if err != nil {
			return nil, fmt.Errorf("read %s/%s: %w", DpkgStatusD, name, err)
		}
		if st == nil {
			return nil, fmt.Errorf("%s is not in %s", name, DpkgStatusD)
		}
		old.stanza = string(st)
		if md5data, err = ReadOptional(u.fsys, path.Join(DpkgStatusD, name+".md5sums")); err != nil {
			return nil, err
		}
		for p := range parseMD5sums(md5data) {
			old.list = append(old.list, p)
		}
		slices.Sort(old.list)
	} else {
		i := u.status.find(name, u.arch)
		if i < 0 {
			return nil, fmt.Errorf("%s is not in %s", name, DpkgStatus)
		}
		old.stanza = u.status.stanzas[i].text
		fields, _ := parseStanza(old.stanza)
		old.infoName = InfoName(name, u.status.stanzas[i].arch, fieldValue(fields, "Multi-Arch"))
		base := path.Join(DpkgInfo, old.infoName)
		list, err := ReadOptional(u.fsys, base+".list")
		if err != nil {
			return nil, err
		}
		for _, l := range parseList(list) {
			old.list = append(old.list, layer.Confine(l))
		}
		if md5data, err = ReadOptional(u.fsys, base+".md5sums"); err != nil {
			return nil, err
		}
		for _, s := range ScriptNames {
			data, err := ReadOptional(u.fsys, base+"."+s)
			if err != nil {
				return nil, err
			}
			if data != nil {
				old.scripts[s] = data
			}
		}
		for _, c := range parseConffiles(old.stanza) {
			old.conffiles[c.Path] = c
		}
	}
	for p, sum := range parseMD5sums(md5data) {
		if r, err := u.resolve(layer.Confine(p)); err == nil {
			old.md5sums[r] = sum
		}
	}
	return old, nil
}

// Install unpacks one package. Packages are installed in the order given;
// a path shipped by two of them ends as the later one wrote it.
func (u *Unpacker) Install(ctx context.Context, in Install) (*Installed, error) {
	var old *oldPackage
	if in.From != "" {
		var err error
		if old, err = u.readOld(in.Name); err != nil {
			return nil, fmt.Errorf("install %s: installed version: %w", in.Name, err)
		}
	}
	f, err := os.Open(in.Deb)
	if err != nil {
		return nil, fmt.Errorf("install %s: %w", in.Name, err)
	}
	defer f.Close()
	st := &unpackState{u: u, in: in, old: old, res: &Installed{Name: in.Name, From: in.From, To: in.Version, Conffiles: map[string]string{}},
		newPaths: map[string]bool{}, md5s: map[string]string{}, rmd5: map[string]string{}, newDirs: map[string]bool{}}
	if old != nil {
		st.res.OldScripts = old.scripts
	}
	_, err = deb.Read(f, u.lim, st.control, func(e *deb.Entry, body io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return st.entry(e, body)
	})
	if err != nil {
		return nil, fmt.Errorf("install %s %s from %s: %w", in.Name, in.Version, in.Deb, err)
	}
	if err := st.finish(); err != nil {
		return nil, fmt.Errorf("install %s %s: %w", in.Name, in.Version, err)
	}
	return st.res, nil
}

type unpackState struct {
	u         *Unpacker
	in        Install
	old       *oldPackage
	res       *Installed
	fields    []rawField
	conffiles map[string]bool   // absolute paths the new version declares
	confOrder []string          // the same, in the package's order (dpkg keeps it)
	list      []string          // "/." and shipped paths, in archive order
	files     []string          // resolved paths of files added, in order
	newPaths  map[string]bool   // resolved non-directory paths shipped
	md5s      map[string]string // shipped path -> md5 of regular files
	rmd5      map[string]string // resolved path -> md5
	newDirs   map[string]bool   // resolved directory paths shipped
	ctrl      *deb.Control
	mtime     time.Time // newest entry mtime
}

// control checks the new package's control file before any data entry.
func (st *unpackState) control(c *deb.Control) error {
	data, ok := c.Files["control"]
	if !ok {
		return errors.New("control.tar has no control file")
	}
	fields, err := parseStanza(string(data))
	if err != nil {
		return fmt.Errorf("control file: %w", err)
	}
	name, ver, arch := fieldValue(fields, "Package"), fieldValue(fields, "Version"), fieldValue(fields, "Architecture")
	if name != st.in.Name || ver != st.in.Version {
		return fmt.Errorf("the .deb holds %s %s, not %s %s", name, ver, st.in.Name, st.in.Version)
	}
	if arch != "all" && arch != st.u.arch {
		return fmt.Errorf("the .deb is for architecture %s, the image is %s", arch, st.u.arch)
	}
	st.fields, st.ctrl = fields, c
	for _, field := range []string{"Pre-Depends", "Depends"} {
		rels, err := resolve.ParseRelations(fieldValue(fields, field), st.u.arch)
		if err != nil {
			return fmt.Errorf("control file: %w", err)
		}
		for _, alts := range rels {
			for _, r := range alts {
				st.res.Depends = append(st.res.Depends, r.Name)
			}
		}
	}
	st.res.Arch, st.res.MultiArch = arch, fieldValue(fields, "Multi-Arch")
	st.conffiles = map[string]bool{}
	for l := range strings.SplitSeq(string(c.Files["conffiles"]), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "/") {
			// "remove-on-upgrade /path" entries (dpkg >= 1.20.1) name
			// conffiles to drop, not ones shipped.
			if !st.conffiles[l] {
				st.confOrder = append(st.confOrder, l)
			}
			st.conffiles[l] = true
		}
	}
	st.res.Control = map[string][]byte{}
	for k, v := range c.Files {
		if k != "control" && k != "md5sums" {
			st.res.Control[k] = v
		}
	}
	st.list = []string{"/."}
	return nil
}

// entry places one data.tar entry.
func (st *unpackState) entry(e *deb.Entry, body io.Reader) error {
	u := st.u
	st.list = append(st.list, "/"+e.Name)
	if e.ModTime.After(st.mtime) {
		st.mtime = e.ModTime
	}
	r, err := u.resolve(e.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Name, err)
	}
	mode := fs.FileMode(e.Mode & 0o777)
	if e.Mode&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if e.Mode&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if e.Mode&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	k, _ := u.view.Lookup(r)
	if e.Type == tar.TypeDir {
		st.newDirs[r] = true
		switch k {
		case layer.Dir:
			return nil // dpkg leaves an existing directory as it is
		case layer.Symlink:
			// A directory the image has turned into a symlink (/lib ->
			// usr/lib): dpkg follows it and keeps the link.
			if _, err := u.view.ResolveDir(r); err != nil {
				return fmt.Errorf("%s: %w", e.Name, err)
			}
			return nil
		case layer.File:
			return fmt.Errorf("%s: the package ships a directory where the image has a file: %w", e.Name, ErrDpkgConflict)
		}
		return u.cs.AddDir(r, mode, e.Uid, e.Gid, e.ModTime)
	}
	if k == layer.Dir {
		return fmt.Errorf("%s: the package ships a %s where the image has a directory: %w", e.Name, typeName(e.Type), ErrDpkgConflict)
	}
	st.newPaths[r] = true
	st.res.Files++
	switch e.Type {
	case tar.TypeReg:
		h := md5.New()
		if _, err := u.cs.AddFile(r, mode, e.Uid, e.Gid, e.ModTime, io.TeeReader(body, h), e.Size); err != nil {
			return err
		}
		st.md5s[e.Name] = fmt.Sprintf("%x", h.Sum(nil))
		st.rmd5[r] = st.md5s[e.Name]
		st.files = append(st.files, r)
	case tar.TypeSymlink:
		return u.cs.AddSymlink(r, e.Linkname, e.Uid, e.Gid, e.ModTime)
	case tar.TypeLink:
		t, err := u.resolve(e.Linkname)
		if err != nil {
			return fmt.Errorf("%s: link target: %w", e.Name, err)
		}
		st.md5s[e.Name] = st.md5s[e.Linkname]
		st.rmd5[r] = st.rmd5[t]
		return u.cs.AddHardlink(r, t)
	default:
		return fmt.Errorf("%s: unsupported entry type %q", e.Name, e.Type)
	}
	return nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeReg:
		return "file"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	}
	return "entry"
}
