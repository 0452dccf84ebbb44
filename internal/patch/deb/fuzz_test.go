package deb

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/patch/xzdec"
)

// FuzzRead checks that Read never panics, that every error wraps one of the
// package's sentinel errors, and that every entry it accepts is normalized.
// Run it with: go test -run=^$ -fuzz=FuzzRead ./internal/patch/deb
func FuzzRead(f *testing.F) {
	for _, ext := range []string{"", ".gz", ".xz", ".zst"} {
		f.Add(validDeb(f, ext, ext))
	}
	f.Add(buildAr(arMember{"debian-binary", []byte("2.0\n")},
		arMember{"control.tar", controlTar(f)},
		arMember{"data.tar", makeTar(f, tarEnt{name: "./a", body: "a"}, tarEnt{name: "./b", typ: tar.TypeLink, link: "a"})}))
	xzds := xzDecoders(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, xzd := range xzds {
			fuzzRead(t, xzd, data)
		}
	})
}

// fuzzRead is one input of FuzzRead on one xz decoder.
func fuzzRead(t *testing.T, xzd xzdec.Decoder, data []byte) {
	lim := Limits{MaxControlSize: 1 << 20, MaxMemberSize: 4 << 20, MaxDataSize: 8 << 20, MaxEntries: 1000}
	seen := map[string]byte{}
	ctrl, err := readWith(xzd, bytes.NewReader(data), lim, nil, func(e *Entry, body io.Reader) error {
		if e.Name == "" || strings.HasPrefix(e.Name, "/") || e.Name == ".." ||
			strings.HasPrefix(e.Name, "../") || strings.ContainsRune(e.Name, 0) {
			t.Errorf("bad name %q", e.Name)
		}
		switch e.Type {
		case tar.TypeReg:
			n, err := io.Copy(io.Discard, body)
			if err != nil {
				return err
			}
			if n != e.Size {
				t.Errorf("%s: body %d bytes, size %d", e.Name, n, e.Size)
			}
		case tar.TypeLink:
			if seen[e.Linkname] != tar.TypeReg {
				t.Errorf("%s: hardlink to %q", e.Name, e.Linkname)
			}
		case tar.TypeDir, tar.TypeSymlink:
		default:
			t.Errorf("%s: type %q", e.Name, e.Type)
		}
		if body != nil && e.Type != tar.TypeReg {
			t.Errorf("%s: body for type %q", e.Name, e.Type)
		}
		seen[e.Name] = e.Type
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTooLarge) &&
			!errors.Is(err, ErrUnsafePath) && !errors.Is(err, ErrUnsupportedType) {
			t.Errorf("%v: error wraps no sentinel: %v", xzd, err)
		}
		return
	}
	if ctrl == nil || ctrl.Files["control"] == nil {
		t.Errorf("%v: no control file in a package Read accepted", xzd)
	}
}
