package deb

import (
	"archive/tar"
	"fmt"
	"path"
	"strings"
	"time"
)

// cleanName normalizes a tar entry name: one leading "./" or "/" is dropped
// and the rest cleaned. It returns "" for the root directory and refuses
// NUL bytes, absolute names and names that climb out with "..".
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", fmt.Errorf("empty name: %w", ErrUnsafePath)
	case strings.IndexByte(name, 0) >= 0:
		return "", fmt.Errorf("NUL byte in name: %w", ErrUnsafePath)
	}
	s, ok := strings.CutPrefix(name, "./")
	if !ok {
		s = strings.TrimPrefix(name, "/")
	}
	if strings.HasPrefix(s, "/") {
		return "", fmt.Errorf("absolute name: %w", ErrUnsafePath)
	}
	if s == "" {
		return "", nil
	}
	s = path.Clean(s)
	if s == ".." || strings.HasPrefix(s, "../") {
		return "", fmt.Errorf("name leaves the package tree: %w", ErrUnsafePath)
	}
	if s == "." {
		return "", nil
	}
	return s, nil
}

// checker validates data.tar entries in archive order.
type checker struct {
	lim     Limits
	entries int
	seen    map[string]byte // normalized name -> type
}

func newChecker(lim Limits) *checker {
	return &checker{lim: lim, seen: map[string]byte{}}
}

// check validates and normalizes one data.tar header. It returns nil, nil
// for the root directory entry, which callers skip.
func (c *checker) check(h *tar.Header) (*Entry, error) {
	c.entries++
	if c.entries > c.lim.MaxEntries {
		return nil, fmt.Errorf("more than %d entries: %w", c.lim.MaxEntries, ErrTooLarge)
	}
	name, err := cleanName(h.Name)
	if err != nil {
		return nil, err
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return nil, fmt.Errorf("device node or FIFO (type %q): %w", h.Typeflag, ErrUnsupportedType)
	default:
		return nil, fmt.Errorf("tar type %q: %w", h.Typeflag, ErrUnsupportedType)
	}
	if name == "" {
		if h.Typeflag != tar.TypeDir {
			return nil, fmt.Errorf("root entry is not a directory: %w", ErrUnsafePath)
		}
		return nil, nil
	}
	if h.Uid < 0 || h.Gid < 0 {
		return nil, fmt.Errorf("negative owner %d:%d: %w", h.Uid, h.Gid, ErrFormat)
	}
	e := &Entry{
		Name:  name,
		Type:  h.Typeflag,
		Mode:  h.Mode & 07777,
		Uid:   h.Uid,
		Gid:   h.Gid,
		Uname: h.Uname,
		Gname: h.Gname,
		// dpkg keeps the package's times; whole seconds, UTC, so that
		// layers built from it are reproducible.
		ModTime: h.ModTime.UTC().Truncate(time.Second),
	}
	// No entry may live below something that is not a directory: writing
	// "a/b" after a symlink "a" would write through the link.
	for p := name; ; {
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
		if t, ok := c.seen[p]; ok && t != tar.TypeDir {
			return nil, fmt.Errorf("parent %q is not a directory: %w", p, ErrUnsafePath)
		}
	}
	switch h.Typeflag {
	case tar.TypeReg:
		if h.Size > c.lim.MaxMemberSize {
			return nil, fmt.Errorf("size %d exceeds %d: %w", h.Size, c.lim.MaxMemberSize, ErrTooLarge)
		}
		if h.Size > c.lim.MaxDataSize {
			return nil, fmt.Errorf("size %d exceeds %d: %w", h.Size, c.lim.MaxDataSize, ErrTooLarge)
		}
		e.Size = h.Size
	case tar.TypeSymlink:
		if h.Linkname == "" {
			return nil, fmt.Errorf("empty symlink target: %w", ErrFormat)
		}
		if strings.IndexByte(h.Linkname, 0) >= 0 {
			return nil, fmt.Errorf("NUL byte in symlink target: %w", ErrUnsafePath)
		}
		e.Linkname = h.Linkname
	case tar.TypeLink:
		target, err := cleanName(h.Linkname)
		if err != nil {
			return nil, fmt.Errorf("hardlink target %q: %w", h.Linkname, err)
		}
		if t, ok := c.seen[target]; !ok || t != tar.TypeReg || target == name {
			return nil, fmt.Errorf("hardlink target %q is not an earlier regular file: %w", h.Linkname, ErrUnsafePath)
		}
		e.Linkname = target
	}
	if t, ok := c.seen[name]; ok && t != h.Typeflag {
		return nil, fmt.Errorf("duplicate entry of another type (%q, was %q): %w", h.Typeflag, t, ErrFormat)
	}
	c.seen[name] = h.Typeflag
	return e, nil
}
