// Package ldcache rebuilds /etc/ld.so.cache natively, byte for byte as the
// image's own glibc `ldconfig` (run without arguments inside the image)
// would write it, without executing anything of the image.
//
// What is reproduced (glibc elf/ldconfig.c, cache.c, readlib.c,
// readelflib.c, stringtable.c, and Debian's configuration):
//
//   - the directory list: /etc/ld.so.conf with its `include` globs (sorted,
//     relative patterns taken from the including file's directory), then
//     Debian's built-in directories /lib/<triplet>, /usr/lib/<triplet>,
//     /lib, /usr/lib; a directory that does not exist is dropped, and one
//     reached again through symbolic links (merged /usr) keeps its first
//     spelling;
//   - the scan: names that look like DSOs (lib*.so*, ld-*.so*, and from
//     glibc 2.33 ld.so.*, ld64.so.*), regular files and symbolic links to
//     them; the ELF class, machine, ARM float ABI, PT_INTERP, DT_NEEDED and
//     DT_SONAME give the flags and soname exactly as readelflib.c does
//     (including its architecture quirks: the arm64 ldconfig does not
//     check e_machine); a symbolic link that is not the soname link nor a
//     development link counts as a file; of several files with one soname
//     the file beats the link and the higher _dl_cache_libcmp name wins;
//   - the cache: entries keyed by soname with path <dir>/<soname>, sorted
//     as cache.c does (reverse _dl_cache_libcmp with the platform's char
//     signedness, then flags, then osversion, stable), written in the new
//     format (Debian's default since bullseye): glibc 2.31 with
//     sequential strings and the NT_GNU_ABI_TAG osversion; glibc 2.36 and
//     2.41 with the tail-merged string table and the generator extension.
//
// Limits: only amd64 and arm64 and only glibc 2.31 (bullseye), 2.36
// (bookworm) and 2.41 (trixie) are known; anything else is an error
// wrapping ErrUnsupported, as are glibc-hwcaps subdirectories, legacy
// hwcap subdirectories (tls, x86_64, haswell, atomics, ...) holding
// libraries, `dir=type` lines in ld.so.conf and a.out libraries. ldconfig
// reads directories in the file system's order; Build reads them sorted,
// which differs only when two files of one directory share a soname and
// compare equal by _dl_cache_libcmp. Build does not create the soname
// links ldconfig would create; WithLinkReport reports them.
package ldcache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// ErrUnsupported is wrapped by Build's errors when the image holds
// something whose ldconfig behaviour is not known to be reproduced.
var ErrUnsupported = errors.New("ldcache: unsupported")

// FS is a read-only view of an image root: paths relative, no leading
// slash, symbolic links resolved inside the image root (a *rootfs.FS).
type FS interface {
	fs.FS
	Lstat(name string) (fs.FileInfo, error)
	ReadLink(name string) (string, error)
}

// batchReader is implemented by *rootfs.FS: one pass per layer for many
// lazily read files.
type batchReader interface {
	ReadFiles(ctx context.Context, names []string, fn func(name string, data []byte) error) error
}

// Link is a soname symbolic link ldconfig would create or replace:
// Dir/Name -> Target (Target relative to Dir).
type Link struct{ Dir, Name, Target string }

// Option configures Build.
type Option func(*options)

type options struct {
	ctx     context.Context
	version string
	links   func(Link)
}

// WithContext sets the context of the file reads.
func WithContext(ctx context.Context) Option { return func(o *options) { o.ctx = ctx } }

// WithGlibcVersion sets the Debian version of the glibc whose ldconfig
// runs (e.g. "2.36-9+deb12u4"), instead of reading it from the image's
// dpkg database and ldconfig binary.
func WithGlibcVersion(debVersion string) Option {
	return func(o *options) { o.version = debVersion }
}

// WithLinkReport calls fn for every soname link ldconfig would create or
// replace (Build itself changes nothing).
func WithLinkReport(fn func(Link)) Option { return func(o *options) { o.links = fn } }

// archInfo is what differs between the architectures' ldconfig builds.
type archInfo struct {
	name         string
	triplet      string
	signedChar   bool     // C char signedness, used by _dl_cache_libcmp
	interpreters []string // readlib.c interpreters[]
	knownLibs    []string // readlib.c known_libs[]
	hwcapDirs    []string // legacy hwcap subdirectory names (glibc <= 2.36)
}

var arches = map[string]*archInfo{
	"amd64": {name: "amd64", triplet: "x86_64-linux-gnu", signedChar: true,
		interpreters: []string{"/lib/ld-linux-x86-64.so.2", "/lib/ld-linux.so.2", "/libx32/ld-linux-x32.so.2", "/lib64/ld-linux-x86-64.so.2"},
		knownLibs:    []string{"libc.so.6", "libm.so.6"},
		hwcapDirs:    []string{"tls", "x86_64", "avx512_1", "i586", "i686", "haswell", "xeon_phi"}},
	"arm64": {name: "arm64", triplet: "aarch64-linux-gnu",
		interpreters: []string{"/lib/ld-linux-aarch64.so.1", "/lib/ld-linux-aarch64_be.so.1", "/lib/ld-linux-aarch64_ilp32.so.1",
			"/lib/ld-linux-aarch64_be_ilp32.so.1", "/lib/ld-linux.so.3", "/lib/ld-linux-armhf.so.3"},
		knownLibs: []string{"libc.so.6", "libm.so.6"},
		hwcapDirs: []string{"tls", "atomics"}},
}

// profile is what differs between the glibc releases.
type profile struct {
	upstream     string
	osversion    bool   // record the NT_GNU_ABI_TAG (2.31)
	dedupStrings bool   // stringtable.c (2.32+)
	newDSONames  bool   // _dl_is_dso also takes ld.so.* and ld64.so.* (2.33+)
	legacyHWCaps bool   // hwcap subdirectories are scanned (<= 2.36)
	generator    string // generator extension (2.33+)
}

var releases = map[string]profile{
	"2.31": {upstream: "2.31", osversion: true, legacyHWCaps: true},
	"2.36": {upstream: "2.36", dedupStrings: true, newDSONames: true, legacyHWCaps: true},
	"2.41": {upstream: "2.41", dedupStrings: true, newDSONames: true},
}

// Build returns the bytes of the ld.so.cache that the image's own ldconfig
// would write for fsys, for the Debian architecture arch.
func Build(fsys FS, arch string, opts ...Option) ([]byte, error) {
	o := options{ctx: context.Background()}
	for _, f := range opts {
		f(&o)
	}
	a := arches[arch]
	if a == nil {
		return nil, fmt.Errorf("%w: architecture %q (known: amd64, arm64)", ErrUnsupported, arch)
	}
	p, err := detectGlibc(fsys, a, o)
	if err != nil {
		return nil, err
	}
	b := &builder{fsys: fsys, arch: a, prof: p, opts: o}
	if err := b.collectDirs(); err != nil {
		return nil, err
	}
	entries, err := b.scan()
	if err != nil {
		return nil, err
	}
	return encode(entries, p), nil
}

type dirEntry struct {
	path  string // as configured: the prefix of the cache's paths
	canon string // resolved path in fsys: the identity (dev, ino)
}

type builder struct {
	fsys  FS
	arch  *archInfo
	prof  *profile
	opts  options
	dirs  []dirEntry
	depth int
}

// collectDirs mirrors ldconfig's main: ld.so.conf, then the built-ins.
func (b *builder) collectDirs() error {
	if err := b.parseConf("/etc/ld.so.conf"); err != nil {
		return err
	}
	if b.arch.name == "arm64" {
		// The aarch64 add_system_dir also adds <dir>64 and <dir>ilp32 for
		// /lib and /usr/lib; whether Debian's built-ins go through it is
		// not verified, so refuse images where it would matter.
		for _, d := range []string{"/lib64", "/libilp32", "/usr/lib64", "/usr/libilp32"} {
			if _, err := b.resolve(d); err == nil {
				return fmt.Errorf("%w: %s exists on arm64 (built-in directory handling not verified)", ErrUnsupported, d)
			}
		}
	}
	for _, d := range []string{"/lib/" + b.arch.triplet, "/usr/lib/" + b.arch.triplet, "/lib", "/usr/lib"} {
		if err := b.addDir(d); err != nil {
			return err
		}
	}
	return nil
}

// parseConf mirrors ldconfig.c parse_conf.
func (b *builder) parseConf(name string) error {
	b.depth++
	defer func() { b.depth-- }()
	if b.depth > 32 {
		return fmt.Errorf("%w: ld.so.conf includes nest too deep (at %s)", ErrUnsupported, name)
	}
	canon, err := b.resolve(name)
	if err != nil {
		return nil
	}
	data, err := fs.ReadFile(b.fsys, canon)
	if err != nil {
		return nil // ldconfig warns and goes on
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if i := strings.IndexByte(line, 0); i >= 0 {
			line = line[:i]
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		cp := strings.TrimLeft(line, " \t\n\v\f\r")
		if cp == "" {
			continue
		}
		switch {
		case strings.HasPrefix(cp, "include") && len(cp) > 7 && (cp[7] == ' ' || cp[7] == '\t'):
			for _, pat := range strings.FieldsFunc(cp[8:], func(r rune) bool { return r == ' ' || r == '\t' }) {
				if err := b.include(name, pat); err != nil {
					return err
				}
			}
		case len(cp) > 5 && strings.EqualFold(cp[:5], "hwcap") && (cp[5] == ' ' || cp[5] == '\t'):
			// "hwcap directive ignored"
		default:
			if err := b.addDir(cp); err != nil {
				return err
			}
		}
	}
	return nil
}

// include mirrors parse_conf_include: glob, sorted, each file parsed.
func (b *builder) include(conf, pat string) error {
	if !strings.HasPrefix(pat, "/") && strings.Contains(conf, "/") {
		pat = path.Dir(conf) + "/" + pat
	}
	matches := b.glob(pat)
	slices.Sort(matches)
	for _, m := range matches {
		if err := b.parseConf(m); err != nil {
			return err
		}
	}
	return nil
}

// glob is glob(3) without flags over fsys: wildcards do not match a
// leading dot; results keep the pattern's spelling.
func (b *builder) glob(pat string) []string {
	prefixes := []string{""}
	if strings.HasPrefix(pat, "/") {
		prefixes = []string{"/"}
	}
	parts := strings.Split(strings.Trim(pat, "/"), "/")
	for i, part := range parts {
		var next []string
		for _, pre := range prefixes {
			join := func(n string) string {
				if pre == "" || strings.HasSuffix(pre, "/") {
					return pre + n
				}
				return pre + "/" + n
			}
			if !strings.ContainsAny(part, "*?[\\") {
				next = append(next, join(part))
				continue
			}
			dir := pre
			if dir == "" {
				dir = "."
			}
			canon, err := b.resolve(dir)
			if err != nil {
				continue
			}
			ents, err := fs.ReadDir(b.fsys, canon)
			if err != nil {
				continue
			}
			gp := strings.ReplaceAll(part, "[!", "[^")
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(part, ".") {
					continue
				}
				if ok, _ := path.Match(gp, e.Name()); ok {
					next = append(next, join(e.Name()))
				}
			}
		}
		if i == len(parts)-1 {
			var exist []string
			for _, n := range next {
				if _, err := b.lresolve(n); err == nil {
					exist = append(exist, n)
				}
			}
			next = exist
		}
		prefixes = next
	}
	return prefixes
}

// addDir mirrors add_dir_1 and add_single_dir.
func (b *builder) addDir(line string) error {
	p := strings.TrimRight(line, " \t\n\v\f\r")
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	if p == "" {
		return nil
	}
	if strings.Contains(p, "=") {
		return fmt.Errorf("%w: ld.so.conf line %q uses the dir=type form", ErrUnsupported, line)
	}
	canon, err := b.resolve(p)
	if err != nil {
		return nil // "Can't stat": dropped
	}
	if b.prof.newDSONames {
		// glibc >= 2.33 adds each <dir>/glibc-hwcaps/<name> subdirectory.
		if hw, err := b.resolve(p + "/glibc-hwcaps"); err == nil {
			if ents, err := fs.ReadDir(b.fsys, hw); err == nil && len(ents) > 0 {
				return fmt.Errorf("%w: %s/glibc-hwcaps subdirectories are not reproduced", ErrUnsupported, p)
			}
		}
	}
	for _, d := range b.dirs {
		if d.canon == canon {
			return nil // "given more than once": the first spelling stays
		}
	}
	b.dirs = append(b.dirs, dirEntry{path: p, canon: canon})
	return nil
}

// isDSO is _dl_is_dso (or glibc 2.31's inline test).
func (b *builder) isDSO(name string) bool {
	if (strings.HasPrefix(name, "lib") || strings.HasPrefix(name, "ld-")) && strings.Contains(name, ".so") {
		return true
	}
	return b.prof.newDSONames && (strings.HasPrefix(name, "ld.so.") || strings.HasPrefix(name, "ld64.so."))
}

// detectGlibc finds the glibc release and generator string of the image.
func detectGlibc(fsys FS, a *archInfo, o options) (*profile, error) {
	version := o.version
	if version == "" {
		v, err := dpkgVersion(fsys, a.name)
		if err != nil {
			return nil, err
		}
		version = v
	}
	up := version
	if i := strings.IndexByte(up, ':'); i >= 0 {
		up = up[i+1:]
	}
	if i := strings.LastIndexByte(up, '-'); i >= 0 {
		up = up[:i]
	}
	rel, ok := releases[up]
	if !ok {
		return nil, fmt.Errorf("%w: glibc %s (known: 2.31, 2.36, 2.41)", ErrUnsupported, version)
	}
	p := rel
	if p.dedupStrings {
		p.generator = "ldconfig (Debian GLIBC " + version + ") stable release version " + up
		// The binary's own string wins when the image has ldconfig.
		for _, name := range []string{"/sbin/ldconfig", "/usr/sbin/ldconfig"} {
			bb := &builder{fsys: fsys}
			canon, err := bb.resolve(name)
			if err != nil {
				continue
			}
			data, err := fs.ReadFile(fsys, canon)
			if err != nil {
				return nil, fmt.Errorf("ldcache: reading %s: %w", name, err)
			}
			g, ok := generatorIn(data, up)
			if !ok {
				return nil, fmt.Errorf("%w: %s has no generator string for glibc %s", ErrUnsupported, name, up)
			}
			p.generator = g
			break
		}
	}
	return &p, nil
}

// generatorIn finds "ldconfig ... release version <up>" in a binary.
func generatorIn(data []byte, up string) (string, bool) {
	s := string(data)
	needle := " release version " + up + "\x00"
	i := strings.Index(s, needle)
	if i < 0 {
		return "", false
	}
	start := strings.LastIndexByte(s[:i], 0) + 1
	g := s[start : i+len(needle)-1]
	if !strings.HasPrefix(g, "ldconfig ") {
		return "", false
	}
	return g, true
}

// dpkgVersion returns the version of libc-bin (which ships ldconfig) or,
// without it (distroless), of libc6, for the architecture.
func dpkgVersion(fsys FS, arch string) (string, error) {
	var stanzas []string
	if data, err := fs.ReadFile(fsys, "var/lib/dpkg/status"); err == nil {
		stanzas = append(stanzas, strings.Split(string(data), "\n\n")...)
	}
	if ents, err := fs.ReadDir(fsys, "var/lib/dpkg/status.d"); err == nil {
		for _, e := range ents {
			if data, err := fs.ReadFile(fsys, "var/lib/dpkg/status.d/"+e.Name()); err == nil {
				stanzas = append(stanzas, strings.Split(string(data), "\n\n")...)
			}
		}
	}
	found := map[string]string{}
	for _, st := range stanzas {
		f := map[string]string{}
		for l := range strings.SplitSeq(st, "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, " ") {
				f[k] = strings.TrimSpace(v)
			}
		}
		if s, ok := f["Status"]; ok && !strings.HasSuffix(s, " installed") {
			continue
		}
		if pkg := f["Package"]; (pkg == "libc-bin" || pkg == "libc6") && f["Architecture"] == arch {
			found[pkg] = f["Version"]
		}
	}
	for _, pkg := range []string{"libc-bin", "libc6"} {
		if v := found[pkg]; v != "" {
			return v, nil
		}
	}
	return "", fmt.Errorf("%w: no installed libc-bin or libc6 (%s) in the dpkg database", ErrUnsupported, arch)
}
