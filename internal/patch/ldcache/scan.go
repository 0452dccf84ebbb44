package ldcache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

const maxLinks = 40

// resolve returns the canonical fsys path of p (absolute or relative to
// the root), following every symbolic link, as stat(2) inside the image.
func (b *builder) resolve(p string) (string, error) { return b.walk(p, true) }

// lresolve is resolve without following a final symbolic link (lstat).
func (b *builder) lresolve(p string) (string, error) { return b.walk(p, false) }

func (b *builder) walk(p string, follow bool) (string, error) {
	var stack []string
	rest := strings.Split(p, "/")
	hops := 0
	for len(rest) > 0 {
		elem := rest[0]
		rest = rest[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		cur := strings.Join(append(stack, elem), "/")
		fi, err := b.fsys.Lstat(cur)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 && (len(rest) > 0 || follow) {
			hops++
			if hops > maxLinks {
				return "", errors.New("too many levels of symbolic links")
			}
			target, err := b.fsys.ReadLink(cur)
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(target, "/") {
				stack = stack[:0]
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		}
		if len(rest) > 0 && !fi.IsDir() {
			// A later component needs a directory; only "" and "."
			// (trailing slashes) are harmless, and stat then fails too.
			return "", fs.ErrNotExist
		}
		stack = append(stack, elem)
	}
	if len(stack) == 0 {
		return ".", nil
	}
	return strings.Join(stack, "/"), nil
}

// candidate is one directory entry ldconfig would hand to process_file.
type candidate struct {
	name   string
	isLink bool
	canon  string // the file it reads
}

type dlib struct {
	name, soname string
	flag         int32
	isLink       bool
	osversion    uint32
}

// scan mirrors search_dirs/search_dir and add_to_cache.
func (b *builder) scan() ([]*cacheEntry, error) {
	perDir := make([][]candidate, len(b.dirs))
	var files []string
	seen := map[string]bool{}
	for i, d := range b.dirs {
		ents, err := fs.ReadDir(b.fsys, d.canon)
		if err != nil {
			continue // "Can't open directory"
		}
		for _, e := range ents {
			name := e.Name()
			t := e.Type()
			if t != 0 && t != fs.ModeSymlink && t != fs.ModeDir {
				continue
			}
			hwcapName := b.prof.legacyHWCaps && slices.Contains(b.arch.hwcapDirs, name)
			if !b.isDSO(name) && (t == 0 || !hwcapName) {
				continue
			}
			if strings.HasSuffix(name, ".#prelink#") || prelinkTemp(name) {
				continue
			}
			full := joinPath(d.canon, name)
			isLink := t == fs.ModeSymlink
			target := full
			if isLink {
				c, err := b.resolve(full)
				if err != nil {
					continue // stale link
				}
				target = c
			}
			fi, err := b.fsys.Lstat(target)
			if err != nil {
				continue
			}
			if fi.IsDir() {
				if hwcapName {
					if err := b.checkHWCapDir(d.path+"/"+name, target); err != nil {
						return nil, err
					}
				}
				continue
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			perDir[i] = append(perDir[i], candidate{name: name, isLink: isLink, canon: target})
			if !seen[target] {
				seen[target] = true
				files = append(files, target)
			}
		}
	}
	parsed, err := b.readAll(files)
	if err != nil {
		return nil, err
	}
	var entries []*cacheEntry
	for i, d := range b.dirs {
		var dlibs []*dlib
		for _, c := range perDir[i] {
			info := parsed[c.canon]
			if !info.ok {
				continue
			}
			soname := c.name
			if info.hasSoname {
				soname = info.soname
			}
			isLink := c.isLink
			if isLink && c.name != soname &&
				!(strings.HasSuffix(c.name, ".so") && strings.HasPrefix(soname, c.name)) {
				isLink = false
			}
			if isLink {
				soname = c.name
			}
			flag := info.flag
			var dl *dlib
			for _, x := range dlibs {
				if x.soname == soname {
					dl = x
					break
				}
			}
			if dl == nil {
				dlibs = append(dlibs, &dlib{name: c.name, soname: soname, flag: flag, isLink: isLink, osversion: info.osversion})
				continue
			}
			if (!isLink && dl.isLink) || (isLink == dl.isLink && libcmp(dl.name, c.name, b.arch.signedChar) < 0) {
				if dl.flag != flag {
					if dl.flag == flagELF && (flag == flagELFLibc5 || flag == flagELFLibc6) {
						dl.flag = flag
					} else if (dl.flag == flagELFLibc5 || dl.flag == flagELFLibc6) && flag == flagELF {
						dl.flag = flag
					}
				}
				dl.name, dl.isLink, dl.osversion = c.name, isLink, info.osversion
			}
		}
		// ldconfig prepends to its list: the last found is added first.
		for j := len(dlibs) - 1; j >= 0; j-- {
			dl := dlibs[j]
			if !dl.isLink && dl.soname != dl.name {
				b.reportLink(d, dl)
			}
			e := &cacheEntry{lib: dl.soname, path: d.path + "/" + dl.soname, flags: dl.flag, osversion: dl.osversion}
			entries = insertSorted(entries, e, b.arch.signedChar)
		}
	}
	return entries, nil
}

// prelinkTemp matches prelink's "*.#prelink#.XXXXXX" temporaries.
func prelinkTemp(name string) bool {
	const suffix = ".#prelink#.XXXXXX"
	return len(name) >= len(suffix) && strings.HasPrefix(name[len(name)-len(suffix):], ".#prelink#.")
}

// checkHWCapDir refuses a legacy hwcap subdirectory that holds libraries:
// their entries carry hwcap bits this package does not compute.
func (b *builder) checkHWCapDir(p, canon string) error {
	ents, err := fs.ReadDir(b.fsys, canon)
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if b.isDSO(e.Name()) {
			return fmt.Errorf("%w: hwcap subdirectory %s holds %s", ErrUnsupported, p, e.Name())
		}
	}
	return nil
}

// reportLink tells WithLinkReport's function about a soname link
// create_links would make: missing, or pointing at another file.
func (b *builder) reportLink(d dirEntry, dl *dlib) {
	if b.opts.links == nil {
		return
	}
	so := joinPath(d.canon, dl.soname)
	if l, err := b.lresolve(so); err == nil {
		fi, err := b.fsys.Lstat(l)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return // a file: "is not a symbolic link", left alone
		}
		t1, err1 := b.resolve(so)
		t2, err2 := b.resolve(joinPath(d.canon, dl.name))
		if err1 == nil && err2 == nil && t1 == t2 {
			return
		}
	}
	b.opts.links(Link{Dir: d.path, Name: dl.soname, Target: dl.name})
}

// readAll reads and parses the candidate files, in one pass per layer
// when fsys supports it.
func (b *builder) readAll(files []string) (map[string]elfInfo, error) {
	out := make(map[string]elfInfo, len(files))
	var aout string
	parse := func(name string, data []byte) error {
		if !b.prof.dedupStrings && len(data) >= 64 {
			// glibc 2.31 still recognises a.out (ZMAGIC, QMAGIC) libraries.
			if m := binary.LittleEndian.Uint32(data) & 0xffff; m == 0o413 || m == 0o314 {
				aout = name
			}
		}
		out[name] = processFile(data, b.arch, b.prof)
		return nil
	}
	if br, ok := b.fsys.(batchReader); ok {
		if err := br.ReadFiles(b.opts.ctx, files, parse); err != nil {
			return nil, fmt.Errorf("ldcache: reading libraries: %w", err)
		}
	} else {
		for _, f := range files {
			data, err := fs.ReadFile(b.fsys, f)
			if err != nil {
				return nil, fmt.Errorf("ldcache: reading %s: %w", f, err)
			}
			_ = parse(f, data)
		}
	}
	if aout != "" {
		return nil, fmt.Errorf("%w: a.out library %s", ErrUnsupported, aout)
	}
	return out, nil
}

// joinPath joins an fsys directory path (possibly ".") and a name.
func joinPath(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}
