package deb

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/drydock-project/drydock/internal/patch/xzdec"
)

// normalized returns Normalize's result for data.
func normalized(t *testing.T, data []byte, lim Limits) ([]byte, error) {
	return normalizedWith(t, xzdec.Decoder{}, data, lim)
}

func normalizedWith(t *testing.T, xzd xzdec.Decoder, data []byte, lim Limits) ([]byte, error) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "n.deb"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := normalizeWith(xzd, bytes.NewReader(data), f, lim); err != nil {
		return nil, err
	}
	return os.ReadFile(f.Name())
}

// TestNormalize: the normalized package reads exactly as the original
// (control, entries, contents, build time), with nothing compressed in
// it, for every compression.
func TestNormalize(t *testing.T) {
	for _, ext := range []string{"", ".gz", ".xz", ".zst", ".bz2"} {
		t.Run("ext"+ext, func(t *testing.T) {
			orig := validDeb(t, ext, ext)
			norm, err := normalized(t, orig, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			c1, e1, err1 := readAll(orig, Limits{})
			c2, e2, err2 := readAll(norm, Limits{})
			if err1 != nil || err2 != nil {
				t.Fatalf("read: %v, %v", err1, err2)
			}
			if !reflect.DeepEqual(c1, c2) || !reflect.DeepEqual(e1, e2) {
				t.Errorf("the normalized package reads differently:\n%+v\n%+v", e1, e2)
			}
			for _, name := range []string{"control.tar ", "data.tar    "} {
				if !bytes.Contains(norm, []byte(name)) {
					t.Errorf("normalized package lacks an uncompressed %q member", name)
				}
			}
			t1, _ := BuildTime(bytes.NewReader(orig))
			t2, _ := BuildTime(bytes.NewReader(norm))
			if !t1.Equal(t2) || t1.IsZero() {
				t.Errorf("build time %s, normalized %s", t1, t2)
			}
			for _, xzd := range xzDecoders(t) {
				n, err := normalizedWith(t, xzd, orig, Limits{})
				if err != nil || !bytes.Equal(n, norm) {
					t.Errorf("%v: %d bytes, %v; differs from %d bytes", xzd, len(n), err, len(norm))
				}
			}
		})
	}
}

// TestNormalizeRefuses what Read refuses: broken archives, bombs.
func TestNormalizeRefuses(t *testing.T) {
	if _, err := normalized(t, []byte("not a deb"), Limits{}); !errors.Is(err, ErrFormat) {
		t.Errorf("garbage: %v", err)
	}
	noData := buildAr(arMember{"debian-binary", []byte("2.0\n")}, arMember{"control.tar", controlTar(t)})
	if _, err := normalized(t, noData, Limits{}); !errors.Is(err, ErrFormat) {
		t.Errorf("missing data.tar: %v", err)
	}
	for _, ext := range []string{".gz", ".xz"} {
		bombDeb := buildAr(arMember{"debian-binary", []byte("2.0\n")}, arMember{"control.tar", controlTar(t)},
			arMember{"data.tar" + ext, bomb(t, ext, 32)})
		for _, xzd := range xzDecoders(t) {
			if _, err := normalizedWith(t, xzd, bombDeb, Limits{MaxDataSize: 1 << 20}); !errors.Is(err, ErrTooLarge) {
				t.Errorf("%s bomb, %v: %v", ext, xzd, err)
			}
		}
	}
}
