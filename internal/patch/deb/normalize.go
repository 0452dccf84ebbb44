package deb

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Normalize writes the .deb read from r to w with its control and data
// tar archives decompressed ("control.tar", "data.tar"), every member's
// modification time kept and "_" members dropped: the same package, which
// Read reads without decompressing anything. The archive is checked as
// Read checks it (ar structure, member order, decompression bounds); its
// tar entries are checked when the result is read. w is written from the
// start and its member sizes filled in once known.
func Normalize(r io.Reader, w *os.File, lim Limits) error {
	d := &reader{r: bufio.NewReaderSize(r, 64<<10), lim: lim.withDefaults()}
	var magic [len(arMagic)]byte
	if _, err := io.ReadFull(d.r, magic[:]); err != nil || string(magic[:]) != arMagic {
		return d.errorf("not an ar archive: %w", ErrFormat)
	}
	out := &offsetWriter{f: w}
	if _, err := out.Write([]byte(arMagic)); err != nil {
		return err
	}
	want := []string{"debian-binary", "control.tar", "data.tar"}
	stage := 0
	for {
		name, m, err := d.nextMember()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(name, "_"):
			if _, err := io.Copy(io.Discard, m); err != nil {
				return d.errorf("ar member %q: %w", name, classify(err))
			}
		case stage == len(want):
			return d.errorf("unexpected ar member %q after data.tar: %w", name, ErrFormat)
		case stage == 0 && name == "debian-binary":
			if m.n > maxDebianBinary {
				return d.errorf("debian-binary is %d bytes: %w", m.n, ErrTooLarge)
			}
			if err := out.member(name, m.mtime.Unix(), m); err != nil {
				return d.errorf("debian-binary: %w", classify(err))
			}
		case (stage == 1 && isTarMember(name, "control.tar")) || (stage == 2 && isTarMember(name, "data.tar")):
			max := d.lim.MaxControlSize
			if stage == 2 {
				max = d.lim.MaxDataSize
			}
			l, done, err := d.openTar(name, m, max)
			if err != nil {
				return err
			}
			err = out.member(want[stage], m.mtime.Unix(), l)
			done()
			if err != nil {
				return d.errorf("%s: %w", name, classify(err))
			}
		default:
			return d.errorf("unexpected ar member %q, want %s: %w", name, want[stage], ErrFormat)
		}
		if !strings.HasPrefix(name, "_") {
			stage++
		}
		if m.n != 0 {
			return d.errorf("ar member %q: %d bytes of trailing garbage: %w", name, m.n, ErrFormat)
		}
		if m.size%2 == 1 {
			if _, err := d.r.ReadByte(); err != nil {
				return d.errorf("ar member %q: missing padding: %w", name, classify(err))
			}
		}
	}
	if stage < len(want) {
		return d.errorf("missing ar member %s: %w", want[stage], ErrFormat)
	}
	return nil
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
