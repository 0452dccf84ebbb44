package oci

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// cleanTarName returns the slash-separated, cleaned name of a tar entry,
// or an error for names that would escape the archive root.
func cleanTarName(n string) (string, error) {
	c := path.Clean(strings.TrimPrefix(n, "./"))
	if c == "." || c == "" {
		return ".", nil
	}
	if path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("entry %q points outside the archive", n)
	}
	return c, nil
}

// untar unpacks the (uncompressed) tar file into dir, accepting only
// directories and regular files.
func untar(ctx context.Context, file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return err
	} else if fi.IsDir() {
		return errors.New("is a directory (use oci: for a layout directory)")
	}
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	if magic, _ := br.Peek(3); bytes.Equal(magic, []byte{0x1f, 0x8b, 0x08}) {
		zr, err := gzip.NewReader(br) // a .tar.gz of a layout
		if err != nil {
			return fmt.Errorf("reading gzip: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading tar (corrupt or truncated?): %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		n++
		name, err := cleanTarName(h.Name)
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("reading tar entry %q (corrupt or truncated?): %w", h.Name, err)
			}
		case tar.TypeXGlobalHeader:
		default:
			return fmt.Errorf("tar entry %q: unsupported type %q (only files and directories)", h.Name, string(h.Typeflag))
		}
	}
	if n == 0 {
		return errors.New("not a tar archive or empty")
	}
	return nil
}

// tarEntry locates a regular file inside an uncompressed tar file.
type tarEntry struct {
	offset, size int64
	link         string // target name for symlinks and hard links
}

// tarIndex is a random-access view of the entries of a tar file.
type tarIndex struct {
	f       *os.File
	entries map[string]tarEntry
}

// indexTar reads the headers of a tar file (seeking over the contents) and
// records where each entry's data starts.
func indexTar(f *os.File) (*tarIndex, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	tr := tar.NewReader(f)
	ix := &tarIndex{f: f, entries: map[string]tarEntry{}}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar (corrupt or truncated?): %w", err)
		}
		name, err := cleanTarName(h.Name)
		if err != nil {
			return nil, err
		}
		switch h.Typeflag {
		case tar.TypeReg:
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, err
			}
			if off+h.Size > fi.Size() {
				return nil, fmt.Errorf("tar entry %q is truncated (%d of %d bytes present)", h.Name, max(fi.Size()-off, 0), h.Size)
			}
			ix.entries[name] = tarEntry{offset: off, size: h.Size}
		case tar.TypeSymlink:
			target := h.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			ix.entries[name] = tarEntry{link: strings.TrimPrefix(path.Clean(target), "/")}
		case tar.TypeLink:
			target, err := cleanTarName(h.Linkname)
			if err != nil {
				return nil, err
			}
			ix.entries[name] = tarEntry{link: target}
		}
	}
	if len(ix.entries) == 0 {
		return nil, errors.New("not a tar archive or empty")
	}
	return ix, nil
}

// open returns a reader for the named regular file, following links.
func (ix *tarIndex) open(name string) (*io.SectionReader, error) {
	name, err := cleanTarName(name)
	if err != nil {
		return nil, err
	}
	for range 16 {
		e, ok := ix.entries[name]
		if !ok {
			return nil, fmt.Errorf("%q: %w in the archive", name, ErrNotFound)
		}
		if e.link == "" {
			return io.NewSectionReader(ix.f, e.offset, e.size), nil
		}
		name = e.link
	}
	return nil, fmt.Errorf("%q: too many levels of links", name)
}
