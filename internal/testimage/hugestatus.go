package testimage

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// bookwormOSRelease is the os-release of Debian 12.
const bookwormOSRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
`

// hugeStanza is one fake package built from openssl, about 330 bytes.
func hugeStanza(i int) string {
	return fmt.Sprintf("Package: fake-openssl-%d\nStatus: install ok installed\nPriority: optional\nSection: libs\n"+
		"Installed-Size: 6000\nMaintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>\n"+
		"Architecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u1\n"+
		"Description: Secure Sockets Layer toolkit - fake %d\n This package is one of many.\n\n", i, i)
}

// HugeDpkgStatusImage builds, in dir, the image of issue 12's hole 5: one
// layer holding bookworm's os-release and a dpkg status of n fake
// installed packages whose source is openssl (160,000 of them make a
// 50 MB status in a layer of under 1 MB). The layer is written streaming
// to a file, so building it costs no memory. It returns the image and the
// status file's size.
func HugeDpkgStatusImage(dir string, n int) (v1.Image, int64, error) {
	p := filepath.Join(dir, "huge-dpkg-status.tar.gz")
	f, err := os.Create(p)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	var size int64
	for i := range n {
		size += int64(len(hugeStanza(i)))
	}
	if err := tw.WriteHeader(&tar.Header{Name: "etc/os-release", Mode: 0o644, Size: int64(len(bookwormOSRelease)), Typeflag: tar.TypeReg}); err != nil {
		return nil, 0, err
	}
	if _, err := tw.Write([]byte(bookwormOSRelease)); err != nil {
		return nil, 0, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		return nil, 0, err
	}
	bw := bufio.NewWriterSize(tw, 1<<20)
	for i := range n {
		bw.WriteString(hugeStanza(i))
	}
	for _, err := range []error{bw.Flush(), tw.Close(), zw.Close(), f.Close()} {
		if err != nil {
			return nil, 0, fmt.Errorf("writing %s: %w", p, err)
		}
	}
	l, err := tarball.LayerFromFile(p)
	if err != nil {
		return nil, 0, err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return nil, 0, err
	}
	return img, size, nil
}
