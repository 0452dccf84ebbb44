package xzdec

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/drydock-project/drydock/internal/testenv"
)

const testMaxDict = 128 << 20

// decoders returns both decoders: Go's, and the host's xz program.
func decoders(t testing.TB) []Decoder {
	t.Helper()
	return []Decoder{Native(), Program(testenv.RequireTool(t, "xz", "xz-utils"))}
}

// decode reads all of data through d.
func decode(d Decoder, data []byte, maxDict int64) ([]byte, error) {
	z, err := d.NewReader(bytes.NewReader(data), maxDict)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	return io.ReadAll(z)
}

// xzProgram compresses data with the xz program and args.
func xzProgram(t testing.TB, data []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testenv.RequireTool(t, "xz", "xz-utils"), append([]string{"--compress", "--stdout"}, args...)...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xz %v: %v", args, err)
	}
	return out
}

// goXZ compresses data with github.com/ulikunitz/xz.
func goXZ(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := xz.NewWriter(&b)
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

// sample returns n bytes that compress, but not to nothing.
func sample(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		if r.IntN(4) == 0 {
			b[i] = byte(r.IntN(256))
		} else {
			b[i] = "drydock patches images "[i%23]
		}
	}
	return b
}

// fixCRC rewrites the CRC32 that follows b[from:to].
func fixCRC(b []byte, from, to int) {
	c := crc32.ChecksumIEEE(b[from:to])
	b[to], b[to+1], b[to+2], b[to+3] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
}

// withDict returns the single-block stream x with its LZMA2 dictionary
// code set to code (size 2^(code/2+12) for even codes).
func withDict(t testing.TB, x []byte, code byte) []byte {
	x = bytes.Clone(x)
	hlen := (int(x[12]) + 1) * 4
	i := bytes.Index(x[12:12+hlen], []byte{0x21, 0x01})
	if i < 0 {
		t.Fatalf("no LZMA2 filter in block header % x", x[12:12+hlen])
	}
	x[12+i+2] = code
	fixCRC(x, 12, 12+hlen-4)
	return x
}

// withCheck returns the stream x with its check type set to id in the
// header and footer (both CRCs fixed): the check field keeps its size, so
// only a decoder that knows id can tell.
func withCheck(x []byte, id byte) []byte {
	x = bytes.Clone(x)
	x[7] = id
	fixCRC(x, 6, 8)
	x[len(x)-3] = id
	// The footer's CRC32 covers Backward Size and flags, and precedes them.
	c := crc32.ChecksumIEEE(x[len(x)-8 : len(x)-2])
	x[len(x)-12], x[len(x)-11], x[len(x)-10], x[len(x)-9] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
	return x
}

// TestSameOutput: both decoders give the input back, byte for byte, from
// streams made by the xz program with every kind of check and several
// presets, several blocks, concatenated streams and stream padding, and
// from Go's encoder.
func TestSameOutput(t *testing.T) {
	data := sample(1 << 20)
	small := []byte("hello\n")
	one := xzProgram(t, small)
	cases := []struct {
		name  string
		xz    []byte
		plain []byte
	}{
		{"preset 6 crc64", xzProgram(t, data, "-6"), data},
		{"preset 0 crc32", xzProgram(t, data, "-0", "--check=crc32"), data},
		{"preset 9 sha256", xzProgram(t, data, "-9", "--check=sha256"), data},
		{"no check", xzProgram(t, data, "--check=none"), data},
		{"blocks", xzProgram(t, data, "--block-size=300000"), data},
		{"empty", xzProgram(t, nil), nil},
		{"go encoder", goXZ(t, data[:200<<10]), data[:200<<10]},
		{"concatenated", append(bytes.Clone(one), xzProgram(t, data)...), append(bytes.Clone(small), data...)},
		{"padding", append(bytes.Clone(one), 0, 0, 0, 0, 0, 0, 0, 0), small},
		{"padding between", append(append(bytes.Clone(one), 0, 0, 0, 0), one...), append(bytes.Clone(small), small...)},
		{"dictionary at the bound", withDict(t, xzProgram(t, small, "-0"), 22), small}, // 8 MiB
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, d := range decoders(t) {
				max := int64(testMaxDict)
				if tc.name == "dictionary at the bound" {
					max = 8 << 20
				}
				got, err := decode(d, tc.xz, max)
				if err != nil {
					t.Fatalf("%v: %v", d, err)
				}
				if !bytes.Equal(got, tc.plain) {
					t.Errorf("%v: %d bytes differ from the %d put in", d, len(got), len(tc.plain))
				}
			}
		})
	}
}

// class is the sentinel err wraps: "format", "too large", or the error.
func class(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, ErrFormat):
		return "format"
	case errors.Is(err, ErrTooLarge):
		return "too large"
	}
	return "other: " + err.Error()
}

// TestSameErrors: every malformed input fails on both decoders with the
// same class of error.
func TestSameErrors(t *testing.T) {
	// CRC32 (check ID 1) has the size of the unsupported ID 2's check.
	good := xzProgram(t, []byte("hello, hello, hello\n"), "--check=crc32")
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty input", nil, ErrFormat},
		{"not xz", []byte("plain text, not xz at all"), ErrFormat},
		{"lzma alone", xzProgram(t, []byte("hello\n"), "--format=lzma"), ErrFormat},
		{"truncated", good[:len(good)-5], ErrFormat},
		{"trailing garbage", append(bytes.Clone(good), "junk"...), ErrFormat},
		{"short padding", append(bytes.Clone(good), 0, 0, 0), ErrFormat},
		{"padding then garbage", append(bytes.Clone(good), 0, 0, 0, 0, 'x', 'y', 'z', 'w'), ErrFormat},
		{"unsupported check", withCheck(good, 0x02), ErrFormat},
		{"corrupt payload", func() []byte { b := bytes.Clone(good); b[30] ^= 0x55; return b }(), ErrFormat},
		{"dictionary over the bound", withDict(t, good, 38), ErrTooLarge}, // 2 GiB
		{"dictionary 4 GiB", withDict(t, good, 40), ErrTooLarge},          // 4 GiB - 1
		{"second stream over the bound", append(bytes.Clone(good), withDict(t, good, 38)...), ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, d := range decoders(t) {
				_, err := decode(d, tc.in, testMaxDict)
				if !errors.Is(err, tc.want) {
					t.Errorf("%v: %v, want %v", d, err, tc.want)
				}
				t.Logf("%v: %v", d, err)
			}
		})
	}
}

// TestSameVerdictOnDamage: every truncation and every one-byte change of
// a small stream gets the same verdict from both decoders (success with
// the same output, or the same class of error).
func TestSameVerdictOnDamage(t *testing.T) {
	plain := sample(1000)
	good := xzProgram(t, plain, "--check=crc32")
	ds := decoders(t)
	verdict := func(in []byte) [2]string {
		var v [2]string
		for i, d := range ds {
			out, err := decode(d, in, testMaxDict)
			v[i] = class(err)
			if err == nil {
				v[i] = fmt.Sprintf("ok %x", crc32.ChecksumIEEE(out))
			}
		}
		return v
	}
	check := func(what string, in []byte) {
		if v := verdict(in); v[0] != v[1] {
			t.Errorf("%s: %v says %s, %v says %s", what, ds[0], v[0], ds[1], v[1])
		}
	}
	for n := range len(good) {
		check(fmt.Sprintf("first %d bytes", n), good[:n])
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		check(fmt.Sprintf("byte %d changed", i), b)
	}
}

// failing yields data, then fails with err.
type failing struct {
	data []byte
	err  error
}

func (f *failing) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestSourceError: an error of the input itself comes back unchanged.
func TestSourceError(t *testing.T) {
	good := xzProgram(t, sample(256<<10))
	boom := errors.New("disk on fire")
	for _, d := range decoders(t) {
		z, err := d.NewReader(&failing{data: good[:len(good)/2], err: boom}, testMaxDict)
		if err == nil {
			_, err = io.ReadAll(z)
			z.Close()
		}
		if !errors.Is(err, boom) {
			t.Errorf("%v: %v, want %v", d, err, boom)
		}
	}
}
