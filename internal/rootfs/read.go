package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
)

// ReadFiles reads the files names (following symbolic links) with at most
// one pass over each layer that holds one of them lazily: the batch form of
// ReadFile for analyzers that learn which files they need only after the
// index is built (say, the md5sums of the packages found). Kept and spooled
// contents are read directly. fn is called once per name, in a
// deterministic order (layer, then position in the layer); data is fn's to
// keep. A name that does not exist, is a directory or is over the file size
// limit is an error before anything is read; an error from fn stops the
// reads and is returned.
func (f *FS) ReadFiles(ctx context.Context, names []string, fn func(name string, data []byte) error) error {
	type want struct {
		name string
		c    *content
	}
	byLayer := map[int][]want{}
	var direct []string
	cached := map[string][]byte{} // direct names whose content the cache had
	for _, name := range names {
		n, err := f.walk("readfiles", name, true)
		if err != nil {
			return err
		}
		if n.isDir() {
			return &fs.PathError{Op: "readfiles", Path: name, Err: errors.New("is a directory")}
		}
		c := n.content
		if c != nil && !c.kept && c.size <= f.maxFile {
			if data := f.cachedContent(c); data != nil {
				cached[name] = bytes.Clone(data)
				direct = append(direct, name)
				continue
			}
		}
		switch {
		case c == nil || c.kept || (f.spool(c.layer) != nil && c.offset >= 0):
			direct = append(direct, name)
		case c.size > f.maxFile:
			return &fs.PathError{Op: "readfiles", Path: name,
				Err: fmt.Errorf("%w: %d bytes, over the %d bytes file limit", ErrLimit, c.size, f.maxFile)}
		default:
			byLayer[c.layer] = append(byLayer[c.layer], want{name, c})
		}
	}
	for _, name := range direct {
		data, ok := cached[name]
		if !ok {
			var err error
			if data, err = f.ReadFile(name); err != nil {
				return err
			}
		}
		if err := fn(name, data); err != nil {
			return err
		}
	}
	for _, layer := range slices.Sorted(maps.Keys(byLayer)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		ws := byLayer[layer]
		slices.SortStableFunc(ws, func(a, b want) int { return a.c.ordinal - b.c.ordinal })
		err := f.streamLayer(ws[0].c, func(tr *tar.Reader, ordinal int, hdr *tar.Header) (bool, error) {
			var data []byte
			for len(ws) > 0 && ws[0].c.ordinal == ordinal {
				w := ws[0]
				ws = ws[1:]
				if hdr.Name != w.c.entry || hdr.Size != w.c.size {
					return false, f.layerErr(w.c, errors.New("layer changed since it was indexed"))
				}
				if data == nil {
					data = make([]byte, w.c.size)
					if _, err := io.ReadFull(tr, data); err != nil {
						return false, f.layerErr(w.c, fmt.Errorf("re-reading content: %w", err))
					}
					f.storeContent(w.c, bytes.Clone(data))
				} else {
					data = bytes.Clone(data)
				}
				if err := fn(w.name, data); err != nil {
					return false, err
				}
			}
			return len(ws) > 0, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// streamLayer re-reads c's layer, calling each for every entry until it
// returns false.
func (f *FS) streamLayer(c *content, each func(tr *tar.Reader, ordinal int, hdr *tar.Header) (bool, error)) error {
	rc, err := f.layers[c.layer].Uncompressed()
	if err != nil {
		return f.layerErr(c, fmt.Errorf("re-opening layer: %w", err))
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for ordinal := 0; ; ordinal++ {
		hdr, err := tr.Next()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return f.layerErr(c, fmt.Errorf("re-reading layer: %w", err))
		}
		more, err := each(tr, ordinal, hdr)
		if err != nil || !more {
			return err
		}
	}
}
