package deb

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/drydock-project/drydock/internal/patch/xzdec"
)

// Normalize writes the .deb read from r to w with its control and data
// tar archives decompressed ("control.tar", "data.tar"), every member's
// modification time kept and "_" members dropped: the same package, which
// Read reads without decompressing anything. The archive is checked as
// Read checks it (ar structure, member order, decompression bounds); its
// tar entries are checked when the result is read. w is written from the
// start and its member sizes filled in once known.
func Normalize(r io.Reader, w *os.File, lim Limits) error {
	return normalizeWith(xzdec.Decoder{}, r, w, lim)
}

// normalizeWith is Normalize decoding xz with xzd (tests run both).
func normalizeWith(xzd xzdec.Decoder, r io.Reader, w *os.File, lim Limits) error {
	d := &reader{r: bufio.NewReaderSize(r, 64<<10), lim: lim.withDefaults(), xz: xzd}
	out := &offsetWriter{f: w}
	if _, err := out.Write([]byte(arMagic)); err != nil {
		return err
	}
	return d.members(func(stage int, name string, m *member) error {
		if stage == 0 {
			if err := out.member(name, m.mtime.Unix(), m); err != nil {
				return d.errorf("debian-binary: %w", classify(err))
			}
			return nil
		}
		max := d.lim.MaxControlSize
		if stage == 2 {
			max = d.lim.MaxDataSize
		}
		l, done, err := d.openTar(name, m, max)
		if err != nil {
			return err
		}
		err = out.member(memberNames[stage], m.mtime.Unix(), l)
		done()
		if err != nil {
			return d.errorf("%s: %w", name, classify(err))
		}
		return nil
	})
}

// offsetWriter writes an ar archive at increasing offsets of f.
type offsetWriter struct {
	f   *os.File
	off int64
}

func (o *offsetWriter) Write(p []byte) (int, error) {
	n, err := o.f.WriteAt(p, o.off)
	o.off += int64(n)
	return n, err
}

// member writes an ar member named name with content from r, filling in
// its size once r is read.
func (o *offsetWriter) member(name string, mtime int64, r io.Reader) error {
	head := o.off
	if _, err := o.Write(make([]byte, arHeaderSize)); err != nil {
		return err
	}
	n, err := io.Copy(o, r)
	if err != nil {
		return err
	}
	h := fmt.Sprintf("%-16s%-12s%-6s%-6s%-8s%-10s`\n", name, strconv.FormatInt(mtime, 10), "0", "0", "100644", strconv.FormatInt(n, 10))
	if len(h) != arHeaderSize {
		return fmt.Errorf("ar header for %s: %d bytes", name, len(h))
	}
	if _, err := o.f.WriteAt([]byte(h), head); err != nil {
		return err
	}
	if n%2 == 1 {
		_, err = o.Write([]byte{'\n'})
	}
	return err
}
