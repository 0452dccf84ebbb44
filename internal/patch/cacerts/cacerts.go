// Package cacerts reproduces, natively and without running anything of the
// image, what Debian's ca-certificates package does to an image when it is
// configured or its update-ca-certificates trigger runs, so that images of
// any architecture can be patched.
//
// Reproduced (from the ca-certificates 20210119 ... 20250419 scripts):
//
//   - postinst "configure" (Options.Configure), with the debconf config
//     script as the noninteractive frontend runs it: the
//     /usr/local/share/ca-certificates directory (created with the mode of
//     /usr/local, or re-moded to it unless dpkg-statoverride lists it);
//     the list of available certificates (every *.crt file under
//     /usr/share/ca-certificates plus the CERTS_LIST of the installed config
//     script) and of enabled ones (trusted before, or new with
//     ca-certificates/trust_new_crts "yes"); the rewrite of
//     /etc/ca-certificates.conf line by line (with the shell's quirks: regex
//     membership tests, prefix greps), the old file kept as
//     ca-certificates.conf.dpkg-old, or the file created from scratch;
//   - update-ca-certificates [--fresh] (and the trigger
//     "update-ca-certificates-fresh"): --fresh symlink clearing, "!" removals,
//     the *.pem symlinks in /etc/ssl/certs for the certificates of
//     ca-certificates.conf and of /usr/local/share/ca-certificates (sorted
//     in the C locale), the ca-certificates.crt bundle (0644), the removal of
//     dangling symlinks and `openssl rehash .` (subject hash links
//     HHHHHHHH.N, kept, added and removed as apps/rehash.c does, collisions
//     numbered in strcmp order of the file names).
//
// Refused with ErrUnsupported, never guessed: an update-ca-certificates,
// postinst or config script other than the known Debian versions (checked
// by SHA-256); any hook in /etc/ca-certificates/update.d that run-parts
// would run (ca-certificates-java's jks-keystore, ...); debconf answer
// "ask"; a file rehash would read that is not plain PEM certificates (CRLs,
// keys, TRUSTED CERTIFICATE, PEM headers, DER, BER, name strings OpenSSL
// might convert differently); duplicate certificates under one hash; names
// the shell would split, glob or unescape; subdirectories or directories in
// the way in /etc/ssl/certs; a leftover ca-certificates.crt.new; owners
// that would have to change. Not reproduced: the debconf database
// (/var/cache/debconf/config.dat keeps its old enable_crts value and
// choices) and SELinux relabelling.
package cacerts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// ErrUnsupported wraps every refusal: the image is in a state whose outcome
// this package cannot reproduce exactly.
var ErrUnsupported = errors.New("cacerts: not reproducible natively")

// FS is the image root: paths are relative, without a leading slash, and
// symbolic links are resolved inside the image root (an absolute target
// starts at the root). In drydock it is a *rootfs.FS overlaid with the
// patch's pending changes.
type FS interface {
	fs.FS
	Lstat(name string) (fs.FileInfo, error)
	ReadLink(name string) (string, error)
}

// Change is one path to write or remove. Exactly one of: Remove; Symlink
// (a symbolic link with that target); Mode.IsDir() (create the directory,
// or change its permissions, owner unchanged); a regular file with Data
// and Mode (owner root:root).
type Change struct {
	Path    string
	Remove  bool
	Symlink string
	Data    []byte
	Mode    fs.FileMode
}

// Options selects what runs.
type Options struct {
	// Configure reproduces "postinst configure" (the ca-certificates.conf
	// merge) before update-ca-certificates; false is the trigger alone.
	Configure bool
	// TrustNew is the debconf answer ca-certificates/trust_new_crts, "yes"
	// or "no"; "" reads it from var/cache/debconf/config.dat, "yes" when
	// it is not there. Only used with Configure.
	TrustNew string
	// Fresh is update-ca-certificates --fresh (the trigger
	// update-ca-certificates-fresh).
	Fresh bool
}

const (
	certsConf = "etc/ca-certificates.conf"
	certsDir  = "usr/share/ca-certificates"
	localDir  = "usr/local/share/ca-certificates"
	etcCerts  = "etc/ssl/certs"
	bundle    = "ca-certificates.crt"
	hooksDir  = "etc/ca-certificates/update.d"
)

// Known update-ca-certificates scripts: true when the temporary bundle is
// ETCCERTSDIR/ca-certificates.crt.new and only written when a certificate
// was added (20230311 and later), false for the 20210119 script (bundle in
// /tmp, the old one removed before the rehash, always written).
var knownScripts = map[string]bool{
	"7ad4af5c16cfe26de17f76a3b2217f011a651fe1f25ed1608584765aeeffb7f9": false, // 20210119
	"395364bffc7ce85ccbe2de71215f9c6c85c024af3bbd991c75a01c2d2aa3080a": true,  // 20230311, 20250419~deb12u1~deb11u1
	"2cb06c85b5f01c4f6b72c3983d9f66d44aac0a7ac997ee55e7e429aedbc3934d": true,  // 20250419~deb12u2
}

const (
	knownPostinst = "bbad2df5d3c5e3d787789275830bc5b597fe6e9218a99516947a079dcae9e262"
	// the config script without its CERTS_LIST= line
	knownConfig = "526302268981f40a3e43e3b68036b8229125420fecb14b7227943ee328a5be44"
)

// Update computes the changes that configuring ca-certificates (or running
// its trigger) would make to the image, sorted by path. No changes means
// the image is already in that state.
func Update(fsys FS, opts Options) ([]Change, error) {
	script, err := fs.ReadFile(fsys, "usr/sbin/update-ca-certificates")
	if err != nil {
		return nil, fmt.Errorf("%w: reading update-ca-certificates: %v", ErrUnsupported, err)
	}
	newScript, ok := knownScripts[sha256hex(script)]
	if !ok {
		return nil, fmt.Errorf("%w: unknown update-ca-certificates script %s", ErrUnsupported, sha256hex(script)[:16])
	}
	if err := checkHooks(fsys); err != nil {
		return nil, err
	}
	v := &view{fsys: fsys, over: map[string]*node{}}
	if opts.Configure {
		if err := configure(v, opts.TrustNew); err != nil {
			return nil, err
		}
	}
	if err := updateCerts(v, opts.Fresh, newScript); err != nil {
		return nil, err
	}
	return v.changes()
}

func sha256hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// checkHooks refuses when run-parts would run anything in the hooks
// directory: any entry with a run-parts name (^[a-zA-Z0-9_-]+$) that is
// not a non-executable regular file.
func checkHooks(fsys FS) error {
	fi, err := fs.Stat(fsys, hooksDir)
	if err != nil || !fi.IsDir() {
		return nil
	}
	ents, err := fs.ReadDir(fsys, hooksDir)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnsupported, hooksDir, err)
	}
	for _, e := range ents {
		if strings.Trim(e.Name(), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.Mode()&0o111 != 0 {
			return fmt.Errorf("%w: hook %s/%s would run", ErrUnsupported, hooksDir, e.Name())
		}
	}
	return nil
}

// updateCerts is update-ca-certificates [--fresh] without hooks.
func updateCerts(v *view, fresh, newScript bool) error {
	if k, _, _ := v.lstat(etcCerts); k != kindDir {
		return fmt.Errorf("%w: %s is not a directory", ErrUnsupported, etcCerts)
	}
	names, err := v.list(etcCerts)
	if err != nil {
		return err
	}
	for _, n := range names {
		k, _, err := v.lstat(etcCerts + "/" + n)
		if err != nil || (k != kindFile && k != kindLink) || strings.ContainsAny(n, "\n\\") || strings.TrimSpace(n) != n {
			return fmt.Errorf("%w: %s/%s: unexpected entry", ErrUnsupported, etcCerts, n)
		}
	}
	tmp := etcCerts + "/" + bundle + ".new"
	if k, _, _ := v.lstat(tmp); newScript && k != kindNone {
		return fmt.Errorf("%w: leftover %s", ErrUnsupported, tmp)
	}
	conf, confErr := v.readFile(certsConf)
	if confErr != nil || len(conf) == 0 {
		fresh = true
	}
	if fresh {
		for _, n := range names {
			p := etcCerts + "/" + n
			if k, target, _ := v.lstat(p); k == kindLink &&
				(strings.HasPrefix(target, "/"+certsDir) || strings.HasPrefix(target, "/"+localDir)) {
				v.remove(p)
			}
		}
		for _, n := range names {
			p := etcCerts + "/" + n
			if k, _, _ := v.lstat(p); k == kindLink && !v.isFile(p) {
				v.remove(p)
			}
		}
	}
	lines := confLines(conf) // sed | while read -r: a last line without newline is lost
	added, removed := 0, 0
	var bundleData []byte
	bundleMade := false
	for _, l := range lines {
		if crt, ok := strings.CutPrefix(l, "!"); ok {
			pem := etcCerts + "/" + shBasename("/"+certsDir+"/"+readR(crt), ".crt") + ".pem"
			if k, _, _ := v.lstat(pem); k == kindLink {
				v.remove(pem)
				removed++
			}
		}
	}
	add := func(cert string) error {
		base := shBasename(cert, ".crt")
		base = strings.NewReplacer(" ", "_", "(", "=", ")", "=", ",", "_").Replace(base)
		pem := etcCerts + "/" + base + ".pem"
		if k, _, _ := v.stat(pem); k == kindDir {
			return fmt.Errorf("%w: %s is a directory", ErrUnsupported, pem)
		}
		if _, target, _ := v.lstat(pem); !v.exists(pem) || target != cert {
			v.setLink(pem, cert)
			added++
		}
		data, err := v.readFile(strings.TrimPrefix(cert, "/"))
		if err != nil {
			return fmt.Errorf("%w: reading %s: %v", ErrUnsupported, cert, err)
		}
		bundleData = append(bundleData, data...)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			bundleData = append(bundleData, '\n')
		}
		bundleMade = true
		return nil
	}
	for _, l := range lines {
		if l == "" || l[0] == '#' || l[0] == '!' {
			continue
		}
		crt := readR(l)
		if !v.isFile(certsDir + "/" + crt) {
			continue // "W: ... not found, but listed in ..."
		}
		if err := add("/" + certsDir + "/" + crt); err != nil {
			return err
		}
	}
	if k, _, _ := v.stat(localDir); k == kindDir {
		var local []string
		if err := findCrt(v, localDir, &local, 0); err != nil {
			return err
		}
		sort.Strings(local)
		for _, crt := range local {
			if strings.Contains(crt, "\n") || strings.TrimRight(crt, " \t") != crt {
				return fmt.Errorf("%w: local certificate name %q", ErrUnsupported, crt)
			}
			if err := add("/" + crt); err != nil {
				return err
			}
		}
	}
	if !newScript {
		v.remove(etcCerts + "/" + bundle)
	}
	if added > 0 || removed > 0 {
		names, err := v.list(etcCerts)
		if err != nil {
			return err
		}
		for _, n := range names {
			p := etcCerts + "/" + n
			if k, _, _ := v.lstat(p); k == kindLink && !v.exists(p) {
				v.remove(p)
			}
		}
		if err := rehash(v, etcCerts); err != nil {
			return err
		}
	}
	if bundleMade || !newScript {
		if k, _, _ := v.stat(etcCerts + "/" + bundle); k == kindDir {
			return fmt.Errorf("%w: %s/%s is a directory", ErrUnsupported, etcCerts, bundle)
		}
		v.setFile(etcCerts+"/"+bundle, bundleData, 0o644)
	}
	return nil
}

// findCrt is `find -L DIR -type f -name '*.crt'`, refusing symlinked
// directories (loops) and absurd depths.
func findCrt(v *view, dir string, out *[]string, depth int) error {
	if depth > 32 {
		return fmt.Errorf("%w: %s: too deep", ErrUnsupported, dir)
	}
	names, err := v.list(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := dir + "/" + n
		lk, _, _ := v.lstat(p)
		k, _, _ := v.stat(p)
		switch {
		case k == kindDir && lk == kindLink:
			return fmt.Errorf("%w: symlinked directory %s", ErrUnsupported, p)
		case k == kindDir:
			if err := findCrt(v, p, out, depth+1); err != nil {
				return err
			}
		case k == kindFile && strings.HasSuffix(n, ".crt"):
			*out = append(*out, p)
		}
	}
	return nil
}

// readR is `read -r`: leading and trailing blanks (IFS) removed.
func readR(s string) string { return strings.Trim(s, " \t") }

// shBasename is basename(1) with a suffix.
func shBasename(s, suffix string) string {
	s = strings.TrimRight(s, "/")
	if s == "" {
		return "/"
	}
	s = s[strings.LastIndexByte(s, '/')+1:]
	if s != suffix {
		s = strings.TrimSuffix(s, suffix)
	}
	return s
}

// kind of a path in the view.
type kind int

const (
	kindNone kind = iota
	kindFile
	kindLink
	kindDir
	kindOther
)

// node is a pending state of one path.
type node struct {
	removed bool
	link    string
	isLink  bool
	data    []byte
	mode    fs.FileMode
}

// view is the image with pending changes (only files and symlinks are
// written, and only in directories that exist).
type view struct {
	fsys FS
	over map[string]*node
}

func (v *view) remove(p string) {
	if k, _, _ := v.lstat(p); k != kindNone {
		v.over[p] = &node{removed: true}
	}
}
func (v *view) setLink(p, target string) { v.over[p] = &node{isLink: true, link: target} }
func (v *view) setFile(p string, data []byte, mode fs.FileMode) {
	v.over[p] = &node{data: data, mode: mode}
}

// lstat returns the kind of p and, for a symlink, its target.
func (v *view) lstat(p string) (kind, string, error) {
	if n, ok := v.over[p]; ok {
		switch {
		case n.removed:
			return kindNone, "", nil
		case n.isLink:
			return kindLink, n.link, nil
		case n.mode.IsDir():
			return kindDir, "", nil
		}
		return kindFile, "", nil
	}
	fi, err := v.fsys.Lstat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return kindNone, "", nil
		}
		return kindNone, "", err
	}
	switch m := fi.Mode(); {
	case m&fs.ModeSymlink != 0:
		t, err := v.fsys.ReadLink(p)
		return kindLink, t, err
	case m.IsDir():
		return kindDir, "", nil
	case m.IsRegular():
		return kindFile, "", nil
	}
	return kindOther, "", nil
}

// resolve follows symlinks at p (the last component; parents are resolved
// by the FS, and pending changes are only in etc/ssl/certs, a real
// directory).
func (v *view) resolve(p string) (string, kind, error) {
	for i := 0; i < 40; i++ {
		k, target, err := v.lstat(p)
		if err != nil || k != kindLink {
			return p, k, err
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		p = strings.TrimPrefix(path.Clean("/"+target), "/")
		if p == "" {
			p = "."
		}
	}
	return p, kindNone, fmt.Errorf("%w: symlink loop at %s", ErrUnsupported, p)
}

func (v *view) stat(p string) (kind, string, error) {
	_, k, err := v.resolve(p)
	return k, "", err
}
func (v *view) exists(p string) bool { k, _, err := v.stat(p); return err == nil && k != kindNone }
func (v *view) isFile(p string) bool { k, _, err := v.stat(p); return err == nil && k == kindFile }

func (v *view) readFile(p string) ([]byte, error) {
	rp, k, err := v.resolve(p)
	if err != nil {
		return nil, err
	}
	if k != kindFile {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	if n, ok := v.over[rp]; ok {
		return n.data, nil
	}
	return fs.ReadFile(v.fsys, rp)
}

// list returns the sorted names in directory p, pending changes included.
func (v *view) list(p string) ([]string, error) {
	ents, err := fs.ReadDir(v.fsys, p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: listing %s: %v", ErrUnsupported, p, err)
	}
	set := map[string]bool{}
	for _, e := range ents {
		set[e.Name()] = true
	}
	for q, n := range v.over {
		if path.Dir(q) == p {
			set[path.Base(q)] = !n.removed
		}
	}
	var out []string
	for n, ok := range set {
		if ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// changes diffs the pending state against the image.
func (v *view) changes() ([]Change, error) {
	var out []Change
	for p, n := range v.over {
		orig := &view{fsys: v.fsys, over: map[string]*node{}}
		k, target, err := orig.lstat(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrUnsupported, p, err)
		}
		switch {
		case n.removed:
			if k != kindNone {
				out = append(out, Change{Path: p, Remove: true})
			}
		case n.isLink:
			if k != kindLink || target != n.link {
				out = append(out, Change{Path: p, Symlink: n.link})
			}
		case n.mode.IsDir():
			fi, err := v.fsys.Lstat(p)
			if err != nil || fi.Mode() != n.mode {
				out = append(out, Change{Path: p, Mode: n.mode})
			}
		default:
			same := false
			if k == kindFile {
				fi, err1 := v.fsys.Lstat(p)
				data, err2 := fs.ReadFile(v.fsys, p)
				same = err1 == nil && err2 == nil && fi.Mode() == n.mode && bytes.Equal(data, n.data)
			}
			if !same {
				out = append(out, Change{Path: p, Data: n.data, Mode: n.mode})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
