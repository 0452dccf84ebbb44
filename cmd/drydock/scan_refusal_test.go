package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb/vulndatatest"
)

// TestScanRefusals: drydock scan refuses what the gate refuses, with the
// kind and reason, and --exit-code applies to a refusal.
func TestScanRefusals(t *testing.T) {
	// A database of release data only is enough to scan: the refusals come
	// before any advisory is read.
	data := t.TempDir()
	csv := filepath.Join(vulndatatest.Dir(t), "debian-eol/distro-info-data/2026.10.12-1/debian.csv")
	if _, _, err := runCmd(t, "db", "update", "--data", data, "--only", "distro-info", "--source", "distro-info="+csv); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(data, "vulndb", "drydock-vuln.db")
	ti := testimage.Require(t, testimage.Bookworm)
	base, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/.wh.status", Typeflag: tar.TypeReg, Mode: 0o600})
	tw.Close()
	wh, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	hidden, err := mutate.AppendLayers(base, wh)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(hidden); err != nil {
		t.Fatal(err)
	}
	common := []string{"--db", db, "--data", t.TempDir(), "--no-inventory-cache"}

	_, _, err = runCmd(t, append([]string{"scan", "oci:" + dir, "--exit-code", "3"}, common...)...)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 3 || !strings.Contains(err.Error(), "unverifiable image: Debian GNU/Linux 12 (bookworm): its dpkg database file var/lib/dpkg/status") {
		t.Errorf("whited-out status with --exit-code 3: %v", err)
	}
	_, _, err = runCmd(t, append([]string{"scan", "oci:" + dir}, common...)...)
	if err == nil || errors.As(err, &ee) {
		t.Errorf("whited-out status without --exit-code: %v; want a plain error", err)
	}

	_, _, err = runCmd(t, append([]string{"scan", ti.OCIReference(), "--max-packages", "10"}, common...)...)
	if err == nil || !strings.Contains(err.Error(), "over-limit image: over the package limit: more than 10 installed packages") {
		t.Errorf("--max-packages 10: %v", err)
	}
	_, _, err = runCmd(t, append([]string{"scan", ti.OCIReference(), "--max-package-data", "64KiB"}, common...)...)
	if err == nil || !strings.Contains(err.Error(), "over the package database limit: var/lib/dpkg/status makes") {
		t.Errorf("--max-package-data 64KiB: %v", err)
	}
	for _, bad := range [][]string{{"--max-packages", "0"}, {"--max-findings", "-1"}, {"--max-package-data", "lots"}} {
		if _, _, err := runCmd(t, append(append([]string{"scan", ti.OCIReference()}, common...), bad...)...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestSizeFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		text string
	}{
		{"1048576", 1 << 20, "1MiB"}, {"128MiB", 128 << 20, "128MiB"}, {"2GiB", 2 << 30, "2GiB"}, {"10KiB", 10 << 10, "10KiB"},
		{"500MB", 500e6, "500000000"}, {"1 KB", 1000, "1000"}, {"7B", 7, "7"}, {"1536KiB", 1536 << 10, "1536KiB"},
		{"0", 0, ""}, {"-5MiB", 0, ""}, {"MiB", 0, ""}, {"5TiB", 0, ""}, {"9223372036854775807GiB", 0, ""},
	} {
		var s sizeFlag
		err := s.Set(tc.in)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("Set(%q) accepted: %d", tc.in, s)
			}
			continue
		}
		if err != nil || int64(s) != tc.want || s.String() != tc.text {
			t.Errorf("Set(%q) = %d (%s), %v; want %d (%s)", tc.in, s, s.String(), err, tc.want, tc.text)
		}
	}
}

func FuzzSizeFlag(f *testing.F) {
	for _, s := range []string{"128MiB", "1", "500MB", " 7 B", "9223372036854775807", "-1KiB", "1.5GiB", "GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var s sizeFlag
		if s.Set(in) != nil {
			return
		}
		if s <= 0 {
			t.Fatalf("Set(%q) = %d", in, s)
		}
		var back sizeFlag
		if err := back.Set(s.String()); err != nil || back != s {
			t.Fatalf("Set(%q) = %d, String %q reads back as %d, %v", in, s, s.String(), back, err)
		}
	})
}
