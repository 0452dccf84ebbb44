// Package deb reads Debian binary packages (.deb files) in one forward pass,
// without dpkg, and refuses packages that could escape or overwhelm the
// image layer built from them.
package deb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/drydock-project/drydock/internal/patch/xzdec"
)

// Sentinel errors; every error Read returns for a bad package wraps one of
// them, so callers can test with errors.Is.
var (
	// ErrUnsafePath reports an entry name or hardlink target that would
	// leave the package's tree or alias something it must not.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrUnsupportedType reports a tar entry that is not a regular file,
	// directory, symlink or hardlink (device nodes, FIFOs and the like).
	ErrUnsupportedType = errors.New("unsupported entry type")
	// ErrTooLarge reports input beyond one of the Limits.
	ErrTooLarge = errors.New("too large")
	// ErrFormat reports a malformed ar archive, compressed stream or tar.
	ErrFormat = errors.New("malformed package")
)

// Limits bound what a hostile .deb may make us read or decompress. A zero or
// negative field means its default (see DefaultLimits).
type Limits struct {
	MaxControlSize int64 // total decompressed control.tar bytes, default 16 MiB
	MaxMemberSize  int64 // one decompressed data.tar file, default 4 GiB
	MaxDataSize    int64 // total decompressed data.tar bytes, default 16 GiB
	MaxEntries     int   // data.tar entries, default 200000
}

// DefaultLimits returns the limits Read uses for fields left zero.
func DefaultLimits() Limits {
	return Limits{
		MaxControlSize: 16 << 20,
		MaxMemberSize:  4 << 30,
		MaxDataSize:    16 << 30,
		MaxEntries:     200000,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxControlSize <= 0 {
		l.MaxControlSize = d.MaxControlSize
	}
	if l.MaxMemberSize <= 0 {
		l.MaxMemberSize = d.MaxMemberSize
	}
	if l.MaxDataSize <= 0 {
		l.MaxDataSize = d.MaxDataSize
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	return l
}

// Control is control.tar.*: its files by base name ("control", "md5sums",
// "conffiles", "postinst", "preinst", "prerm", "postrm", "triggers",
// "shlibs", "symbols", "templates", "config", ...) and their permission bits.
type Control struct {
	Files map[string][]byte
	Modes map[string]int64
}

// Field returns the value of a single-line field of the control file, such
// as "Package" or "Version", or "" if it is absent.
func (c *Control) Field(name string) string {
	for line := range strings.SplitSeq(string(c.Files["control"]), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && !strings.HasPrefix(k, " ") && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Entry is one data.tar entry, already validated and normalized.
type Entry struct {
	// Name is clean and relative, without a leading "./" or "/", such as
	// "usr/bin/curl". It is never "": the root "./" entry is skipped.
	Name string
	// Type is tar.TypeReg, tar.TypeDir, tar.TypeSymlink or tar.TypeLink.
	Type byte
	// Mode holds the permission bits including setuid, setgid and sticky.
	Mode         int64
	Uid, Gid     int
	Uname, Gname string
	// Size is the content size of a regular file, 0 for other types.
	Size int64
	// Linkname is a symlink's target verbatim (absolute or relative), or,
	// for a hardlink, the normalized name of an earlier regular file.
	Linkname string
	// ModTime is the entry's modification time (UTC, whole seconds).
	ModTime time.Time
}

const (
	arMagic         = "!<arch>\n"
	arHeaderSize    = 60
	maxDebianBinary = 1024
	maxXZDict       = 128 << 20
	maxZstdMemory   = 256 << 20
)

// Read reads a .deb from r in one forward pass: it parses the ar archive,
// reads control.tar.* into a Control (bounded by lim.MaxControlSize), calls
// onControl (if not nil) so the caller can refuse the package early, then
// streams data.tar.* calling fn for every entry in archive order. body reads
// the entry's content for regular files and is nil otherwise; fn need not
// consume it. Read never seeks, writes temporary files or buffers data.tar.
// An error from onControl or fn stops Read and is returned wrapped. xz
// members are decoded by the host's xz program when PATH has one, else in
// Go (see xzdec).
func Read(r io.Reader, lim Limits, onControl func(*Control) error, fn func(e *Entry, body io.Reader) error) (*Control, error) {
	return readWith(xzdec.Decoder{}, r, lim, onControl, fn)
}

// readWith is Read decoding xz with xzd (tests run both decoders).
func readWith(xzd xzdec.Decoder, r io.Reader, lim Limits, onControl func(*Control) error, fn func(e *Entry, body io.Reader) error) (*Control, error) {
	d := &reader{r: bufio.NewReaderSize(r, 64<<10), lim: lim.withDefaults(), xz: xzd}
	if err := d.run(onControl, fn); err != nil {
		return nil, err
	}
	return d.ctrl, nil
}

// BuildTime returns the newest modification time of the .deb's ar
// members (dpkg-deb stamps them with the package's build time), reading
// the archive headers and skipping the members' contents undecompressed.
func BuildTime(r io.Reader) (time.Time, error) {
	d := &reader{r: bufio.NewReaderSize(r, 64<<10)}
	var magic [len(arMagic)]byte
	if _, err := io.ReadFull(d.r, magic[:]); err != nil || string(magic[:]) != arMagic {
		return time.Time{}, d.errorf("not an ar archive: %w", ErrFormat)
	}
	var newest time.Time
	for n := 0; ; n++ {
		name, m, err := d.nextMember()
		if err == io.EOF && n > 0 {
			return newest, nil
		}
		if err == io.EOF {
			return time.Time{}, d.errorf("empty ar archive: %w", ErrFormat)
		}
		if err != nil {
			return time.Time{}, err
		}
		if m.mtime.After(newest) {
			newest = m.mtime
		}
		if _, err := io.Copy(io.Discard, m); err != nil {
			return time.Time{}, d.errorf("ar member %q: %w", name, classify(err))
		}
		if m.size%2 == 1 {
			if _, err := d.r.ReadByte(); err != nil && err != io.EOF {
				return time.Time{}, d.errorf("ar member %q: %w", name, classify(err))
			}
		}
	}
}

type reader struct {
	r    *bufio.Reader
	lim  Limits
	xz   xzdec.Decoder // the zero Decoder: the host's xz program if any
	ctrl *Control
	pkg  string // "name_version" once the control file is known
}

// errorf formats an error prefixed with "deb" and the package if known.
func (d *reader) errorf(format string, args ...any) error {
	prefix := "deb: "
	if d.pkg != "" {
		prefix = "deb " + d.pkg + ": "
	}
	return fmt.Errorf(prefix+format, args...)
}

func (d *reader) run(onControl func(*Control) error, fn func(*Entry, io.Reader) error) error {
	return d.members(func(stage int, name string, m *member) error {
		switch stage {
		case 0:
			b, err := io.ReadAll(m)
			if err != nil {
				return d.errorf("debian-binary: %w", classify(err))
			}
			if !bytes.HasPrefix(b, []byte("2.")) {
				return d.errorf("unsupported format version %q: %w", b, ErrFormat)
			}
		case 1:
			if err := d.readControl(name, m); err != nil {
				return err
			}
			if onControl != nil {
				if err := onControl(d.ctrl); err != nil {
					return d.errorf("refused: %w", err)
				}
			}
		case 2:
			return d.readData(name, m, fn)
		}
		return nil
	})
}

// memberNames are the ar members of a .deb, in the order dpkg requires.
var memberNames = [...]string{"debian-binary", "control.tar", "data.tar"}

// members walks the ar archive as dpkg requires it: the magic, then
// debian-binary (at most maxDebianBinary bytes), control.tar[.ext] and
// data.tar[.ext] in that order, members whose name starts with "_"
// skipped anywhere before data.tar, nothing after it; each member read to
// its end with its padding. fn is called for each of the three with its
// stage (an index into memberNames) and must read the member.
func (d *reader) members(fn func(stage int, name string, m *member) error) error {
	var magic [len(arMagic)]byte
	if _, err := io.ReadFull(d.r, magic[:]); err != nil || string(magic[:]) != arMagic {
		return d.errorf("not an ar archive: %w", ErrFormat)
	}
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
		case stage == len(memberNames):
			return d.errorf("unexpected ar member %q after data.tar: %w", name, ErrFormat)
		case stage == 0 && name == memberNames[0]:
			if m.n > maxDebianBinary {
				return d.errorf("debian-binary is %d bytes: %w", m.n, ErrTooLarge)
			}
			if err := fn(stage, name, m); err != nil {
				return err
			}
		case stage > 0 && isTarMember(name, memberNames[stage]):
			if err := fn(stage, name, m); err != nil {
				return err
			}
		default:
			return d.errorf("unexpected ar member %q, want %s: %w", name, memberNames[stage], ErrFormat)
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
	if stage < len(memberNames) {
		return d.errorf("missing ar member %s: %w", memberNames[stage], ErrFormat)
	}
	return nil
}

func isTarMember(name, base string) bool {
	ext, ok := strings.CutPrefix(name, base)
	return ok && (ext == "" || strings.HasPrefix(ext, "."))
}

// member reads one ar member's data; it reports io.ErrUnexpectedEOF if the
// archive ends early.
type member struct {
	r       io.Reader
	n, size int64
	mtime   time.Time
}

func (m *member) Read(p []byte) (int, error) {
	if m.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > m.n {
		p = p[:m.n]
	}
	n, err := m.r.Read(p)
	m.n -= int64(n)
	if err == io.EOF && m.n > 0 {
		err = io.ErrUnexpectedEOF
	} else if err == io.EOF {
		err = nil
	}
	return n, err
}

// nextMember parses the next ar header; it returns io.EOF at a clean end.
func (d *reader) nextMember() (string, *member, error) {
	var h [arHeaderSize]byte
	n, err := io.ReadFull(d.r, h[:])
	if err == io.EOF {
		return "", nil, io.EOF
	}
	if err != nil {
		return "", nil, d.errorf("truncated ar header (%d bytes): %w", n, ErrFormat)
	}
	if string(h[58:60]) != "`\n" {
		return "", nil, d.errorf("bad ar header terminator %q: %w", h[58:60], ErrFormat)
	}
	name := strings.TrimSuffix(strings.TrimRight(string(h[:16]), " "), "/")
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return "", nil, d.errorf("bad ar member name %q: %w", h[:16], ErrFormat)
	}
	sz := strings.TrimRight(string(h[48:58]), " ")
	size, err := strconv.ParseInt(sz, 10, 64)
	if err != nil || size < 0 || strings.ContainsAny(sz, "+-") {
		return "", nil, d.errorf("ar member %q: bad size %q: %w", name, h[48:58], ErrFormat)
	}
	mt, err := strconv.ParseInt(strings.TrimRight(string(h[16:28]), " "), 10, 64)
	if err != nil || mt < 0 {
		return "", nil, d.errorf("ar member %q: bad modification time %q: %w", name, h[16:28], ErrFormat)
	}
	return name, &member{r: d.r, n: size, size: size, mtime: time.Unix(mt, 0).UTC()}, nil
}

// limited counts bytes read from a decompressor and fails with ErrTooLarge
// once more than max have been produced.
type limited struct {
	r    io.Reader
	n    int64
	max  int64
	what string
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n > l.max {
		return 0, fmt.Errorf("%s exceeds %d bytes: %w", l.what, l.max, ErrTooLarge)
	}
	if int64(len(p)) > l.max-l.n+1 {
		p = p[:l.max-l.n+1]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		return n - int(l.n-l.max), fmt.Errorf("%s exceeds %d bytes: %w", l.what, l.max, ErrTooLarge)
	}
	return n, err
}

// decompress returns a reader of the decompressed member according to the
// extension of its name, and a function releasing the decompressor.
func (d *reader) decompress(name string, r io.Reader) (io.Reader, func(), error) {
	nop := func() {}
	var ext string
	if i := strings.Index(name, ".tar"); i >= 0 {
		ext = name[i+len(".tar"):]
	}
	switch ext {
	case "":
		return r, nop, nil
	case ".gz":
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return z, func() { z.Close() }, nil
	case ".xz":
		z, err := d.xz.NewReader(r, maxXZDict)
		if err != nil {
			return nil, nil, err
		}
		return z, func() { z.Close() }, nil
	case ".zst":
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(maxZstdMemory), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, nil, err
		}
		return z, z.Close, nil
	case ".bz2":
		return bzip2.NewReader(r), nop, nil
	}
	return nil, nil, fmt.Errorf("unsupported compression %q", ext)
}

// classify wraps errors from decompressors and archive/tar in ErrFormat,
// keeping the package's own sentinel errors as they are.
func classify(err error) error {
	switch {
	case errors.Is(err, xzdec.ErrTooLarge):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrFormat),
		errors.Is(err, ErrUnsafePath), errors.Is(err, ErrUnsupportedType):
		return err
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return fmt.Errorf("truncated: %w", ErrFormat)
	}
	return fmt.Errorf("%w: %w", ErrFormat, err)
}

// openTar starts decompressing member m into a byte-counting reader.
func (d *reader) openTar(name string, m *member, max int64) (*limited, func(), error) {
	z, done, err := d.decompress(name, m)
	if err != nil {
		return nil, nil, d.errorf("%s: %w", name, classify(err))
	}
	return &limited{r: z, max: max, what: "decompressed " + name}, done, nil
}

// finishTar checks that only zero padding follows the end of a tar stream
// and that the compressed stream ends exactly at the end of the ar member.
func (d *reader) finishTar(name string, l *limited) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := l.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return d.errorf("%s: trailing garbage after end of tar: %w", name, ErrFormat)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return d.errorf("%s: %w", name, classify(err))
		}
	}
}

func (d *reader) readControl(name string, m *member) error {
	l, done, err := d.openTar(name, m, d.lim.MaxControlSize)
	if err != nil {
		return err
	}
	defer done()
	c := &Control{Files: map[string][]byte{}, Modes: map[string]int64{}}
	tr := tar.NewReader(l)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return d.errorf("%s: %w", name, classify(err))
		}
		p, err := cleanName(h.Name)
		if err != nil {
			return d.errorf("%s entry %q: %w", name, h.Name, err)
		}
		switch {
		case h.Typeflag == tar.TypeDir && p == "":
			continue
		case h.Typeflag != tar.TypeReg:
			return d.errorf("%s entry %q: type %q: %w", name, h.Name, h.Typeflag, ErrUnsupportedType)
		case p == "" || strings.Contains(p, "/"):
			return d.errorf("%s entry %q: not a top-level file: %w", name, h.Name, ErrFormat)
		case c.Files[p] != nil:
			return d.errorf("%s entry %q: duplicate: %w", name, h.Name, ErrFormat)
		case h.Size > d.lim.MaxControlSize:
			return d.errorf("%s entry %q: %d bytes: %w", name, h.Name, h.Size, ErrTooLarge)
		}
		b := make([]byte, h.Size)
		if _, err := io.ReadFull(tr, b); err != nil {
			return d.errorf("%s entry %q: %w", name, h.Name, classify(err))
		}
		c.Files[p] = b
		c.Modes[p] = h.Mode & 07777
	}
	if err := d.finishTar(name, l); err != nil {
		return err
	}
	if c.Files["control"] == nil {
		return d.errorf("%s: no control file: %w", name, ErrFormat)
	}
	d.ctrl = c
	if pkg := c.Field("Package"); pkg != "" && !strings.ContainsAny(pkg, "\x00") {
		d.pkg = pkg
		if v := c.Field("Version"); v != "" {
			d.pkg += "_" + v
		}
	}
	return nil
}

// body hides the tar.Reader from fn and wraps its errors like Read's own.
type body struct{ r io.Reader }

func (b body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = classify(err)
	}
	return n, err
}

func (d *reader) readData(name string, m *member, fn func(*Entry, io.Reader) error) error {
	l, done, err := d.openTar(name, m, d.lim.MaxDataSize)
	if err != nil {
		return err
	}
	defer done()
	tr := tar.NewReader(l)
	chk := newChecker(d.lim)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return d.errorf("%s: %w", name, classify(err))
		}
		e, err := chk.check(h)
		if err != nil {
			return d.errorf("data.tar entry %q: %w", h.Name, err)
		}
		if e == nil {
			continue
		}
		var b io.Reader
		if e.Type == tar.TypeReg {
			b = body{tr}
		}
		if err := fn(e, b); err != nil {
			return d.errorf("data.tar entry %q: %w", e.Name, err)
		}
	}
	return d.finishTar(name, l)
}
