package scan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/refusal"
	"github.com/drydock-project/drydock/internal/rootfs"
	"github.com/drydock-project/drydock/internal/version"
)

// Inspect reads what judging an image takes from its root filesystem (its
// OS and installed packages) and refuses, with a *refusal.Error, an image
// that cannot be judged. It is the one validation the gate, `drydock scan`
// and `drydock patch` run, in this order:
//
//  1. hostile: when fsys is a *rootfs.FS (or anything with CheckHostile),
//     an entry, hardlink or symbolic link that leaves the image root
//     (refusal.Hostile, naming the layer and entry);
//  2. the OS (osinfo.Detect): an OS drydock does not support is returned
//     in Snapshot.Unsupported with a nil error, and nothing more is read;
//  3. the installed packages, within limits (refusal.OverLimit): the
//     default analyzers are built with limits; in all, at most
//     limits.MaxPackages;
//  4. unverifiable (refusal.Unverifiable): for an OS of a supported family
//     (Debian, Ubuntu: dpkg; Alpine: apk; the RHEL family: rpm), a package
//     database that is missing, lists no installed package, or that a
//     layer removed (a whiteout or opaque whiteout of dpkg's status or a
//     status.d entry, or of apk's installed, that a lower layer wrote).
//     Its packages cannot be known, so "0 findings" would be a lie.
//
// Corrupt and over-limit layers are refused earlier, by rootfs.New with
// limits.RootFSOptions().
func Inspect(ctx context.Context, fsys fs.FS, limits Limits, analyzers ...inventory.Analyzer) (*Snapshot, error) {
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	limits = limits.WithDefaults()
	if len(analyzers) == 0 {
		var err error
		if analyzers, err = inventory.Analyzers(limits.AnalyzerOptions()...); err != nil {
			return nil, err
		}
	}
	if h, ok := fsys.(interface{ CheckHostile() error }); ok {
		if err := h.CheckHostile(); err != nil {
			return nil, err
		}
	}
	snap := &Snapshot{SchemaVersion: snapshotVersion}
	o, err := osinfo.Detect(fsys)
	if err != nil && !errors.Is(err, osinfo.ErrUnsupportedOS) {
		return nil, fmt.Errorf("detecting OS: %w", err)
	}
	snap.OS = o
	if err != nil {
		snap.Unsupported = err.Error()
		if r := (*refusal.Error)(nil); errors.As(err, &r) {
			snap.Unsupported = r.Reason
		}
		return snap, nil
	}
	inv, err := inventory.Inventory(ctx, fsys, analyzers...)
	if err != nil {
		return nil, fmt.Errorf("listing packages: %w", err)
	}
	if len(inv.Packages) > limits.MaxPackages {
		return nil, overPackages(len(inv.Packages), limits.MaxPackages)
	}
	if err := verifiable(fsys, o, inv); err != nil {
		return nil, err
	}
	snap.Packages = inv.Packages
	snap.Skipped = inv.SkippedTotal
	snap.Analyzers = inv.Analyzers
	return snap, nil
}

// familyDB is where an OS family keeps its installed packages.
type familyDB struct {
	analyzer  string   // the inventory analyzer that reads it
	ecosystem string   // of its packages
	paths     []string // what "missing" names
	// main is the file that, present, must list an installed package.
	main string
	// removable reports the database files whose removal by a layer makes
	// the image unverifiable (rpm's files are not: converting the database
	// between backends removes the old one).
	removable func(p string) bool
}

var familyDBs = map[osinfo.Family]familyDB{
	osinfo.FamilyDebian: {
		analyzer: "dpkg", ecosystem: version.EcosystemDeb,
		paths: []string{"var/lib/dpkg/status", "var/lib/dpkg/status.d"}, main: "var/lib/dpkg/status",
		removable: func(p string) bool {
			if p == "var/lib/dpkg/status" {
				return true
			}
			dir, base := path.Split(p)
			return dir == "var/lib/dpkg/status.d/" && !strings.HasPrefix(base, ".") && !strings.HasSuffix(base, ".md5sums")
		},
	},
	osinfo.FamilyAlpine: {
		analyzer: "apk", ecosystem: version.EcosystemAPK,
		paths: []string{"lib/apk/db/installed"}, main: "lib/apk/db/installed",
		removable: func(p string) bool { return p == "lib/apk/db/installed" },
	},
	osinfo.FamilyRHEL: {
		analyzer: "rpm", ecosystem: version.EcosystemRPM,
		paths:     []string{"usr/lib/sysimage/rpm", "var/lib/rpm"},
		removable: func(string) bool { return false },
	},
}

// layered is what a *rootfs.FS tells about the layers that built it.
type layered interface {
	Layers() []rootfs.Layer
}

// verifiable refuses an OS of a supported family whose package database
// cannot be trusted to list its packages.
func verifiable(fsys fs.FS, o osinfo.OS, inv inventory.Result) error {
	db, ok := familyDBs[o.Family]
	if !ok {
		return nil
	}
	who := cmp.Or(strings.TrimSpace(o.PrettyName), strings.TrimSpace(o.ID+" "+o.VersionID))
	unverifiable := func(entry, format string, args ...any) error {
		return &refusal.Error{Kind: refusal.Unverifiable, Entry: entry,
			Reason: who + ": " + fmt.Sprintf(format, args...) + "; its packages cannot be known"}
	}
	if !slices.ContainsFunc(inv.Analyzers, func(a inventory.AnalyzerInfo) bool { return a.Type == db.analyzer }) {
		return unverifiable("", "no %s analyzer ran", db.analyzer)
	}
	perFile := map[string]int{}
	total := 0
	for _, p := range inv.Packages {
		if p.Ecosystem == db.ecosystem {
			perFile[p.DBPath]++
			total++
		}
	}
	if lf, ok := fsys.(layered); ok {
		if p, how := removedDB(fsys, lf.Layers(), db); p != "" {
			return unverifiable(p, "its %s database file %s %s", db.analyzer, p, how)
		}
	}
	if db.main != "" && perFile[db.main] == 0 {
		if st, err := fs.Stat(fsys, db.main); err == nil {
			if !st.Mode().IsRegular() {
				return unverifiable(db.main, "its %s database %s is not a regular file", db.analyzer, db.main)
			}
			return unverifiable(db.main, "its %s database %s lists no installed package (%d bytes)", db.analyzer, db.main, st.Size())
		}
	}
	if total == 0 {
		return unverifiable(db.paths[0], "no installed package in its %s database (%s)", db.analyzer, strings.Join(db.paths, ", "))
	}
	return nil
}

// removedDB finds a database file that a layer wrote and that is gone from
// the merged view, and says what removed it.
func removedDB(fsys fs.FS, layers []rootfs.Layer, db familyDB) (string, string) {
	lastWriter := map[string]int{}
	for _, l := range layers {
		for _, p := range l.Paths {
			if db.removable(p) {
				lastWriter[p] = l.Index
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(lastWriter)) {
		if _, err := fs.Stat(fsys, p); err == nil || !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		w := lastWriter[p]
		return p, fmt.Sprintf("(written by layer %d, %s) is removed by %s", w, layers[w].Digest, remover(fsys, layers[w+1:], p))
	}
	return "", ""
}

// remover says which of layers removed p.
func remover(fsys fs.FS, layers []rootfs.Layer, p string) string {
	ancestors := []string{p}
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		ancestors = append(ancestors, d)
	}
	for _, l := range layers {
		for _, w := range l.Whiteouts {
			if slices.Contains(ancestors, w) {
				return fmt.Sprintf("layer %d (%s): a whiteout of %s", l.Index, l.Digest, w)
			}
		}
		for _, d := range l.Opaque {
			if d == "." || slices.Contains(ancestors[1:], d) {
				return fmt.Sprintf("layer %d (%s): an opaque whiteout of %s", l.Index, l.Digest, d)
			}
		}
	}
	for _, a := range ancestors[1:] {
		if fi, err := fs.Lstat(fsys, a); err == nil && !fi.IsDir() {
			if e, ok := fi.Sys().(*rootfs.Entry); ok && e.Layer >= 0 {
				return fmt.Sprintf("layer %d (%s): %s in place of the directory %s", e.Layer, layerDigest(layers, e.Layer), typeName(fi.Mode()), a)
			}
			return fmt.Sprintf("%s in place of the directory %s", typeName(fi.Mode()), a)
		}
	}
	return "a later layer"
}

// layerDigest is the digest of layer idx among layers, or "" when it is
// not one of them.
func layerDigest(layers []rootfs.Layer, idx int) string {
	for _, l := range layers {
		if l.Index == idx {
			return l.Digest.String()
		}
	}
	return "?"
}

// typeName names a file type in a sentence.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsRegular():
		return "a file"
	}
	return "a " + m.Type().String() + " entry"
}
