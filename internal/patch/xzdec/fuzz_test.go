package xzdec

import (
	"bytes"
	"testing"
)

// FuzzDecoders checks that the two decoders agree on every input: both
// succeed with the same output, or both fail with the same class of error
// (ErrFormat or ErrTooLarge, or the input's own error, which a bytes
// reader never gives). Run it with:
// go test -run=^$ -fuzz=FuzzDecoders ./internal/patch/xzdec
func FuzzDecoders(f *testing.F) {
	ds := decoders(f)
	one := xzProgram(f, []byte("hello\n"), "--check=crc32")
	f.Add(one)
	f.Add(append(bytes.Clone(one), 0, 0, 0, 0))
	f.Add(append(bytes.Clone(one), one...))
	f.Add(xzProgram(f, sample(5000), "--block-size=1000", "--check=sha256"))
	f.Add(goXZ(f, sample(3000)))
	f.Add(withDict(f, one, 38))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out [2][]byte
		var got [2]string
		for i, d := range ds {
			b, err := decode(d, in, 8<<20) // xz -6, Go's default
			out[i], got[i] = b, class(err)
		}
		if got[0] != got[1] {
			t.Fatalf("%v: %s; %v: %s", ds[0], got[0], ds[1], got[1])
		}
		if got[0] == "nil" && !bytes.Equal(out[0], out[1]) {
			t.Fatalf("outputs differ: %d and %d bytes", len(out[0]), len(out[1]))
		}
	})
}
