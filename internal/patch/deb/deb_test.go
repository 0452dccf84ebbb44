package deb

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/drydock-project/drydock/internal/patch/xzdec"
	"github.com/drydock-project/drydock/internal/testenv"
)

// arMember is one member of a synthetic ar archive.
type arMember struct {
	name string
	data []byte
}

// buildAr writes an ar archive the way dpkg-deb does.
func buildAr(members ...arMember) []byte {
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	for _, m := range members {
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 1700000000, 0, 0, "100644", len(m.data))
		b.Write(m.data)
		if len(m.data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// tarEnt describes one synthetic tar entry; typ 0 means a regular file.
type tarEnt struct {
	name, link, body string
	typ              byte
	mode             int64
	size             int64 // if set, overrides len(body) in the header only
}

func makeTar(t testing.TB, ents ...tarEnt) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode,
			Uname: "root", Gname: "root", ModTime: time.Unix(1700000000, 0), Format: tar.FormatGNU}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if e.size != 0 {
			h.Size = e.size
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil && ents[len(ents)-1].size == 0 {
		t.Fatal(err)
	}
	return b.Bytes()
}

// compress compresses data for a member named with extension ext.
func compress(t testing.TB, ext string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	var err error
	switch ext {
	case "":
		return data
	case ".gz":
		w = gzip.NewWriter(&b)
	case ".xz":
		w, err = xz.NewWriter(&b)
	case ".zst":
		w, err = zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1))
	case ".bz2":
		testenv.RequireTool(t, "bzip2", "bzip2") // Go has no bzip2 writer
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bzip2: %v", err)
		}
		return out
	default:
		t.Fatalf("unknown compression %q", ext)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const testControl = "Package: hello\nVersion: 1.0-1\nArchitecture: all\nDescription: test\n"

func controlTar(t testing.TB) []byte {
	return makeTar(t,
		tarEnt{name: "./", typ: tar.TypeDir, mode: 0755},
		tarEnt{name: "./control", body: testControl},
		tarEnt{name: "./postinst", body: "#!/bin/sh\nexit 0\n", mode: 0755},
	)
}

func dataTar(t testing.TB) []byte {
	return makeTar(t,
		tarEnt{name: "./", typ: tar.TypeDir, mode: 0755},
		tarEnt{name: "./usr/", typ: tar.TypeDir, mode: 0755},
		tarEnt{name: "./usr/bin/", typ: tar.TypeDir, mode: 0755},
		tarEnt{name: "./usr/bin/hello", body: "#!/bin/sh\necho hello\n", mode: 04755},
		tarEnt{name: "./usr/bin/hi", typ: tar.TypeLink, link: "./usr/bin/hello"},
		tarEnt{name: "./usr/bin/hey", typ: tar.TypeSymlink, link: "hello", mode: 0777},
		tarEnt{name: "/etc/alt", typ: tar.TypeSymlink, link: "/etc/alternatives/alt", mode: 0777},
	)
}

// validDeb builds a small valid package with the given compressions.
func validDeb(t testing.TB, cext, dext string) []byte {
	return buildAr(
		arMember{"debian-binary", []byte("2.0\n")},
		arMember{"control.tar" + cext, compress(t, cext, controlTar(t))},
		arMember{"data.tar" + dext, compress(t, dext, dataTar(t))},
	)
}

type gotEntry struct {
	Entry
	Body string
}

// xzDecoders returns both xz decoders: Go's and the host's xz program.
func xzDecoders(t testing.TB) []xzdec.Decoder {
	t.Helper()
	return []xzdec.Decoder{xzdec.Native(), xzdec.Program(testenv.RequireTool(t, "xz", "xz-utils"))}
}

// decoderName names xzd in subtests: "go" or "program".
func decoderName(xzd xzdec.Decoder) string {
	if xzd == xzdec.Native() {
		return "go"
	}
	return "program"
}

func readAll(data []byte, lim Limits) (*Control, []gotEntry, error) {
	return readAllWith(xzdec.Decoder{}, data, lim)
}

func readAllWith(xzd xzdec.Decoder, data []byte, lim Limits) (*Control, []gotEntry, error) {
	var got []gotEntry
	ctrl, err := readWith(xzd, bytes.NewReader(data), lim, nil, func(e *Entry, body io.Reader) error {
		g := gotEntry{Entry: *e}
		if body != nil {
			b, err := io.ReadAll(body)
			if err != nil {
				return err
			}
			g.Body = string(b)
		}
		got = append(got, g)
		return nil
	})
	return ctrl, got, err
}

func TestReadCompressions(t *testing.T) {
	want := []string{
		"usr dir 0755 0 ",
		"usr/bin dir 0755 0 ",
		"usr/bin/hello reg 4755 21 ",
		"usr/bin/hi link 0644 0 usr/bin/hello",
		"usr/bin/hey symlink 0777 0 hello",
		"etc/alt symlink 0777 0 /etc/alternatives/alt",
	}
	types := map[byte]string{tar.TypeReg: "reg", tar.TypeDir: "dir", tar.TypeSymlink: "symlink", tar.TypeLink: "link"}
	for _, ext := range []string{"", ".gz", ".xz", ".zst", ".bz2"} {
		for _, xzd := range xzDecoders(t) {
			t.Run("ext"+ext+"/"+decoderName(xzd), func(t *testing.T) {
				ctrl, got, err := readAllWith(xzd, validDeb(t, ext, ext), Limits{})
				if err != nil {
					t.Fatal(err)
				}
				if string(ctrl.Files["control"]) != testControl || ctrl.Modes["postinst"] != 0755 || len(ctrl.Files) != 2 {
					t.Errorf("control = %q, modes %v", ctrl.Files, ctrl.Modes)
				}
				if ctrl.Field("Package") != "hello" || ctrl.Field("version") != "1.0-1" {
					t.Errorf("Field: %q %q", ctrl.Field("Package"), ctrl.Field("version"))
				}
				var lines []string
				for _, e := range got {
					lines = append(lines, fmt.Sprintf("%s %s %04o %d %s", e.Name, types[e.Type], e.Mode, e.Size, e.Linkname))
					if e.Uname != "root" || e.Uid != 0 {
						t.Errorf("%s: owner %s/%d", e.Name, e.Uname, e.Uid)
					}
				}
				if strings.Join(lines, "\n") != strings.Join(want, "\n") {
					t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
				}
				if got[2].Body != "#!/bin/sh\necho hello\n" {
					t.Errorf("body = %q", got[2].Body)
				}
			})
			if ext != ".xz" {
				break // one decoder is enough where there is no xz
			}
		}
	}
}

func TestReadCallbacks(t *testing.T) {
	deb := buildAr(
		arMember{"_gpgorigin", []byte("sig")},
		arMember{"debian-binary", []byte("2.0\n")},
		arMember{"_extra", []byte("x")},
		arMember{"control.tar.gz", compress(t, ".gz", controlTar(t))},
		arMember{"data.tar.xz", compress(t, ".xz", dataTar(t))},
		arMember{"_trailer", []byte("odd")},
	)
	var order []string
	refuse := errors.New("refused by caller")
	onControl := func(c *Control) error {
		order = append(order, "control:"+c.Field("Package"))
		return nil
	}
	fn := func(e *Entry, body io.Reader) error {
		order = append(order, e.Name)
		return nil // bodies deliberately left unread
	}
	if _, err := Read(bytes.NewReader(deb), Limits{}, onControl, fn); err != nil {
		t.Fatal(err)
	}
	if len(order) != 7 || order[0] != "control:hello" {
		t.Errorf("order = %q", order)
	}
	_, err := Read(bytes.NewReader(deb), Limits{}, func(*Control) error { return refuse }, func(*Entry, io.Reader) error {
		t.Error("fn called after onControl refused")
		return nil
	})
	if !errors.Is(err, refuse) || !strings.Contains(err.Error(), "deb hello_1.0-1:") {
		t.Errorf("onControl refusal: %v", err)
	}
	_, err = Read(bytes.NewReader(deb), Limits{}, nil, func(e *Entry, _ io.Reader) error {
		if e.Name == "usr/bin/hello" {
			return refuse
		}
		return nil
	})
	if !errors.Is(err, refuse) || !strings.Contains(err.Error(), `data.tar entry "usr/bin/hello"`) {
		t.Errorf("fn error: %v", err)
	}
}

func TestCleanName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"./usr/x", "usr/x"}, {"/usr/x", "usr/x"}, {"usr/x", "usr/x"}, {"./usr/bin/", "usr/bin"},
		{"./", ""}, {".", ""}, {"/", ""}, {"./usr//x/./y", "usr/x/y"}, {"usr/../etc", "etc"},
		{"..", "!"}, {"./../x", "!"}, {"usr/../../x", "!"}, {"//etc/x", "!"}, {".//etc", "!"},
		{"", "!"}, {"usr/a\x00b", "!"}, {"/../x", "!"},
	} {
		got, err := cleanName(tt.in)
		if err != nil {
			if tt.want != "!" || !errors.Is(err, ErrUnsafePath) {
				t.Errorf("cleanName(%q) = %v, want %q", tt.in, err, tt.want)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("cleanName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// xzWithDict returns an xz stream whose LZMA2 block header asks for a
// dictionary of 2^(code/2+12) bytes, with a valid header CRC.
func xzWithDict(t *testing.T, data []byte, code byte) []byte {
	x := compress(t, ".xz", data)
	hlen := (int(x[12]) + 1) * 4
	h := x[12 : 12+hlen]
	i := bytes.Index(h, []byte{0x21, 0x01})
	if i < 0 {
		t.Fatalf("no LZMA2 filter in block header % x", h)
	}
	h[i+2] = code
	crc := crc32.ChecksumIEEE(h[:hlen-4])
	h[hlen-4], h[hlen-3], h[hlen-2], h[hlen-1] = byte(crc), byte(crc>>8), byte(crc>>16), byte(crc>>24)
	return x
}

// bomb returns a compressed stream of a small tar followed by n MiB of
// zeros, built from repeated gzip members or zstd frames.
func bomb(t *testing.T, ext string, mib int) []byte {
	chunk := compress(t, ext, make([]byte, 16<<20))
	b := compress(t, ext, makeTar(t, tarEnt{name: "./a", body: "a"}))
	for range mib / 16 {
		b = append(b, chunk...)
	}
	return b
}

func TestReadHostile(t *testing.T) {
	db := arMember{"debian-binary", []byte("2.0\n")}
	ctl := arMember{"control.tar.gz", compress(t, ".gz", controlTar(t))}
	data := func(ents ...tarEnt) []byte {
		return buildAr(db, ctl, arMember{"data.tar", makeTar(t, ents...)})
	}
	good := validDeb(t, ".gz", ".gz")
	hdrAt := len(good) - len(compress(t, ".gz", dataTar(t))) - 60
	patch := func(off int, s string) []byte {
		b := bytes.Clone(good)
		copy(b[off:], s)
		return b
	}
	small := Limits{MaxDataSize: 1 << 20}
	big := strings.Repeat("x", 600<<10)
	xzData := compress(t, ".xz", dataTar(t))
	xzCorrupt := bytes.Clone(xzData)
	xzCorrupt[len(xzCorrupt)/2] ^= 0x10
	for _, tt := range []struct {
		name string
		deb  []byte
		lim  Limits
		want error
	}{
		{"empty", nil, Limits{}, ErrFormat},
		{"not ar", []byte("!<arch>"), Limits{}, ErrFormat},
		{"no members", []byte("!<arch>\n"), Limits{}, ErrFormat},
		{"truncated header", good[:100], Limits{}, ErrFormat},
		{"truncated member", good[:len(good)-10], Limits{}, ErrFormat},
		{"bad terminator", patch(8+58, "x\n"), Limits{}, ErrFormat},
		{"bad size", patch(hdrAt+48, "12x       "), Limits{}, ErrFormat},
		{"negative size", patch(hdrAt+48, "-1        "), Limits{}, ErrFormat},
		{"size past end", patch(hdrAt+48, "99999999  "), Limits{}, ErrFormat},
		{"version 3", buildAr(arMember{"debian-binary", []byte("3.0\n")}, ctl), Limits{}, ErrFormat},
		{"huge debian-binary", buildAr(arMember{"debian-binary", make([]byte, 5000)}), Limits{}, ErrTooLarge},
		{"control first", buildAr(ctl, db), Limits{}, ErrFormat},
		{"missing control", buildAr(db, arMember{"data.tar", dataTar(t)}), Limits{}, ErrFormat},
		{"missing data", buildAr(db, ctl), Limits{}, ErrFormat},
		{"duplicate control", buildAr(db, ctl, ctl, arMember{"data.tar", dataTar(t)}), Limits{}, ErrFormat},
		{"duplicate data", buildAr(db, ctl, arMember{"data.tar", dataTar(t)}, arMember{"data.tar", dataTar(t)}), Limits{}, ErrFormat},
		{"unknown member", buildAr(db, ctl, arMember{"evil", nil}, arMember{"data.tar", dataTar(t)}), Limits{}, ErrFormat},
		{"unknown compression", buildAr(db, ctl, arMember{"data.tar.lz4", dataTar(t)}), Limits{}, ErrFormat},
		{"garbage after tar", buildAr(db, ctl, arMember{"data.tar", append(dataTar(t), "evil"...)}), Limits{}, ErrFormat},
		{"garbage after gzip", buildAr(db, ctl, arMember{"data.tar.gz", append(compress(t, ".gz", dataTar(t)), "evil"...)}), Limits{}, ErrFormat},
		{"garbage after xz", buildAr(db, ctl, arMember{"data.tar.xz", append(compress(t, ".xz", dataTar(t)), "evil"...)}), Limits{}, ErrFormat},
		{"garbage after zstd", buildAr(db, ctl, arMember{"data.tar.zst", append(compress(t, ".zst", dataTar(t)), "evil"...)}), Limits{}, ErrFormat},
		{"garbage after bzip2", buildAr(db, ctl, arMember{"data.tar.bz2", append(compress(t, ".bz2", dataTar(t)), "evil"...)}), Limits{}, ErrFormat},
		{"corrupt gzip", buildAr(db, ctl, arMember{"data.tar.gz", compress(t, ".gz", dataTar(t))[:40]}), Limits{}, ErrFormat},
		{"no control file", buildAr(db, arMember{"control.tar", makeTar(t, tarEnt{name: "./md5sums", body: "x"})}, arMember{"data.tar", dataTar(t)}), Limits{}, ErrFormat},
		{"control subdir", buildAr(db, arMember{"control.tar", makeTar(t, tarEnt{name: "./control", body: "x"}, tarEnt{name: "./a/b", body: "x"})}, arMember{"data.tar", dataTar(t)}), Limits{}, ErrFormat},
		{"control symlink", buildAr(db, arMember{"control.tar", makeTar(t, tarEnt{name: "./control", typ: tar.TypeSymlink, link: "/etc/shadow"})}, arMember{"data.tar", dataTar(t)}), Limits{}, ErrUnsupportedType},
		{"control escape", buildAr(db, arMember{"control.tar", makeTar(t, tarEnt{name: "../control", body: "x"})}, arMember{"data.tar", dataTar(t)}), Limits{}, ErrUnsafePath},
		{"control too large", good, Limits{MaxControlSize: 100}, ErrTooLarge},
		{"dotdot", data(tarEnt{name: "./../etc/passwd", body: "x"}), Limits{}, ErrUnsafePath},
		{"dotdot inner", data(tarEnt{name: "./usr/../../etc/passwd", body: "x"}), Limits{}, ErrUnsafePath},
		{"absolute", data(tarEnt{name: "//etc/passwd", body: "x"}), Limits{}, ErrUnsafePath},
		{"dot absolute", data(tarEnt{name: ".//etc/passwd", body: "x"}), Limits{}, ErrUnsafePath},
		{"root file", data(tarEnt{name: ".", body: "x"}), Limits{}, ErrUnsafePath},
		{"char device", data(tarEnt{name: "./dev/mem", typ: tar.TypeChar}), Limits{}, ErrUnsupportedType},
		{"block device", data(tarEnt{name: "./dev/sda", typ: tar.TypeBlock}), Limits{}, ErrUnsupportedType},
		{"fifo", data(tarEnt{name: "./run/fifo", typ: tar.TypeFifo}), Limits{}, ErrUnsupportedType},
		{"contiguous", data(tarEnt{name: "./x", typ: tar.TypeCont}), Limits{}, ErrUnsupportedType},
		{"unknown type", data(tarEnt{name: "./x", typ: 'Z'}), Limits{}, ErrUnsupportedType},
		{"hardlink unseen", data(tarEnt{name: "./x", typ: tar.TypeLink, link: "/etc/shadow"}), Limits{}, ErrUnsafePath},
		{"hardlink later", data(tarEnt{name: "./x", typ: tar.TypeLink, link: "./y"}, tarEnt{name: "./y", body: "y"}), Limits{}, ErrUnsafePath},
		{"hardlink to dir", data(tarEnt{name: "./d/", typ: tar.TypeDir}, tarEnt{name: "./x", typ: tar.TypeLink, link: "./d"}), Limits{}, ErrUnsafePath},
		{"hardlink escape", data(tarEnt{name: "./x", typ: tar.TypeLink, link: "../x"}), Limits{}, ErrUnsafePath},
		{"hardlink self", data(tarEnt{name: "./x", body: "x"}, tarEnt{name: "./x", typ: tar.TypeLink, link: "./x"}), Limits{}, ErrUnsafePath},
		{"empty symlink", data(tarEnt{name: "./x", typ: tar.TypeSymlink}), Limits{}, ErrFormat},
		{"dir then file", data(tarEnt{name: "./x/", typ: tar.TypeDir}, tarEnt{name: "./x", body: "x"}), Limits{}, ErrFormat},
		{"file then symlink", data(tarEnt{name: "./x", body: "x"}, tarEnt{name: "x", typ: tar.TypeSymlink, link: "/"}), Limits{}, ErrFormat},
		{"below symlink", data(tarEnt{name: "./etc", typ: tar.TypeSymlink, link: "/etc"}, tarEnt{name: "./etc/passwd", body: "x"}), Limits{}, ErrUnsafePath},
		{"below file", data(tarEnt{name: "./a", body: "x"}, tarEnt{name: "./a/b/c", body: "x"}), Limits{}, ErrUnsafePath},
		{"too many entries", good, Limits{MaxEntries: 3}, ErrTooLarge},
		{"member too large", data(tarEnt{name: "./x", body: "0123456789"}), Limits{MaxMemberSize: 9}, ErrTooLarge},
		{"declared size over data limit", data(tarEnt{name: "./x", size: 1 << 30}), small, ErrTooLarge},
		{"data total too large", buildAr(db, ctl, arMember{"data.tar.gz", compress(t, ".gz", makeTar(t, tarEnt{name: "a", body: big}, tarEnt{name: "b", body: big}))}), small, ErrTooLarge},
		{"xz huge dictionary", buildAr(db, ctl, arMember{"data.tar.xz", xzWithDict(t, dataTar(t), 38)}), Limits{}, ErrTooLarge},
		{"truncated xz", buildAr(db, ctl, arMember{"data.tar.xz", xzData[:len(xzData)-10]}), Limits{}, ErrFormat},
		{"corrupt xz", buildAr(db, ctl, arMember{"data.tar.xz", xzCorrupt}), Limits{}, ErrFormat},
		{"xz bomb", buildAr(db, ctl, arMember{"data.tar.xz", bomb(t, ".xz", 32)}), small, ErrTooLarge},
		{"gzip bomb", buildAr(db, ctl, arMember{"data.tar.gz", bomb(t, ".gz", 1024)}), small, ErrTooLarge},
		{"zstd bomb", buildAr(db, ctl, arMember{"data.tar.zst", bomb(t, ".zst", 1024)}), small, ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, xzd := range xzDecoders(t) {
				start := time.Now()
				_, _, err := readAllWith(xzd, tt.deb, tt.lim)
				if !errors.Is(err, tt.want) {
					t.Fatalf("%s: err = %v, want %v", decoderName(xzd), err, tt.want)
				}
				if !strings.HasPrefix(err.Error(), "deb") {
					t.Errorf("error %q lacks the deb prefix", err)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("%v: took %v to refuse", xzd, d)
				}
				t.Logf("%v: %v", xzd, err)
			}
		})
	}
}

// TestReadDataLimitExact checks that a package exactly at the limits passes.
func TestReadDataLimitExact(t *testing.T) {
	tr := makeTar(t, tarEnt{name: "./x", body: "0123456789"})
	deb := buildAr(arMember{"debian-binary", []byte("2.0\n")},
		arMember{"control.tar", controlTar(t)}, arMember{"data.tar", tr})
	_, got, err := readAll(deb, Limits{MaxDataSize: int64(len(tr)), MaxMemberSize: 10, MaxEntries: 1,
		MaxControlSize: int64(len(controlTar(t)))})
	if err != nil || len(got) != 1 || got[0].Body != "0123456789" {
		t.Fatalf("got %v, %v", got, err)
	}
}
