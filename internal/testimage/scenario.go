package testimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// olderSuffix makes a Debian version sort just before the one it follows:
// "~" sorts before the end of a version.
const olderSuffix = "~drydocktest0"

// Older returns a version dpkg orders just before v.
func Older(v string) string { return v + olderSuffix }

// Downgraded returns img with one more layer, in which the dpkg database
// (var/lib/dpkg/status, or distroless status.d) records each named package
// at Older of its installed version; the package's files stay as they are.
// It builds a scenario of pending updates that does not depend on what
// the mirror offers today: apt, and drydock, see for each package an
// upgrade at least to the mirror's version of the image's own suite, a
// real .deb with its real scripts. It fails when a package is not
// installed. The result is deterministic (DefaultEpoch timestamps).
func Downgraded(img v1.Image, pkgs ...string) (v1.Image, error) {
	if len(pkgs) == 0 {
		return nil, errors.New("testimage.Downgraded: no packages")
	}
	return recordVersions(img, pkgs, func(_, v string) string { return Older(v) })
}

// DowngradedTo is Downgraded with the versions to record given, package
// name -> version: a scenario in which the image looks as old as a
// vulnerability feed of another day expects (its fixed findings then
// show), while the files stay the current ones.
func DowngradedTo(img v1.Image, versions map[string]string) (v1.Image, error) {
	if len(versions) == 0 {
		return nil, errors.New("testimage.DowngradedTo: no packages")
	}
	pkgs := slices.Sorted(maps.Keys(versions))
	return recordVersions(img, pkgs, func(p, _ string) string { return versions[p] })
}

func recordVersions(img v1.Image, pkgs []string, version func(pkg, installed string) string) (v1.Image, error) {
	files, err := statusFiles(img)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		data, changed := downgrade(f.data, pkgs, done, version)
		if !changed {
			continue
		}
		h := *f.hdr
		h.Size, h.ModTime, h.AccessTime, h.ChangeTime = int64(len(data)), DefaultEpoch, DefaultEpoch, DefaultEpoch
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	for _, p := range pkgs {
		if !done[p] {
			return nil, fmt.Errorf("testimage.Downgraded: %s is not installed in the image", p)
		}
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	out, err := mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer, History: v1.History{
		Created:   v1.Time{Time: DefaultEpoch},
		CreatedBy: "# drydock testimage: dpkg database records older versions of " + strings.Join(pkgs, " "),
	}})
	if err != nil {
		return nil, err
	}
	return fromRaw(out)
}

// rawImage is an image read back from its serialized manifest and config,
// as a registry or layout would serve it (mutate's in-memory manifest
// differs from its own bytes in empty annotation maps, which
// validate.Image reports).
type rawImage struct {
	src              v1.Image
	manifest, config []byte
	mediaType        types.MediaType
}

func (r *rawImage) RawManifest() ([]byte, error)        { return r.manifest, nil }
func (r *rawImage) RawConfigFile() ([]byte, error)      { return r.config, nil }
func (r *rawImage) MediaType() (types.MediaType, error) { return r.mediaType, nil }
func (r *rawImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	return r.src.LayerByDigest(h)
}

func fromRaw(img v1.Image) (v1.Image, error) {
	m, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	c, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&rawImage{src: img, manifest: m, config: c, mediaType: mt})
}

// DowngradedIndex applies Downgraded to every image of idx and returns the
// index of the results, platforms kept.
func DowngradedIndex(idx v1.ImageIndex, pkgs ...string) (v1.ImageIndex, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	out := mutate.IndexMediaType(empty.Index, im.MediaType)
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		if img, err = Downgraded(img, pkgs...); err != nil {
			return nil, fmt.Errorf("%s: %w", d.Platform, err)
		}
		out = mutate.AppendManifests(out, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: d.Platform}})
	}
	return out, nil
}

type statusFile struct {
	hdr  *tar.Header
	data []byte
}

// statusFiles reads the image's dpkg status file, or its status.d files.
func statusFiles(img v1.Image) ([]statusFile, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	var out []statusFile
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading image filesystem: %w", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		isStatusD := path.Dir(name) == "var/lib/dpkg/status.d" && !strings.HasSuffix(name, ".md5sums")
		if h.Typeflag != tar.TypeReg || (name != "var/lib/dpkg/status" && !isStatusD) {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out = append(out, statusFile{hdr: h, data: data})
	}
	if len(out) == 0 {
		return nil, errors.New("testimage.Downgraded: no dpkg database in the image")
	}
	return out, nil
}

// downgrade rewrites the Version line of the stanzas of pkgs in a status
// file, byte for byte otherwise, and marks them in done.
func downgrade(data []byte, pkgs []string, done map[string]bool, version func(pkg, installed string) string) ([]byte, bool) {
	lines := strings.SplitAfter(string(data), "\n")
	changed := false
	inPkg := ""
	for i, l := range lines {
		t := strings.TrimRight(l, "\n")
		switch {
		case strings.TrimSpace(t) == "":
			inPkg = ""
		case strings.HasPrefix(t, "Package:"):
			inPkg = strings.TrimSpace(strings.TrimPrefix(t, "Package:"))
		case strings.HasPrefix(t, "Version:") && slices.Contains(pkgs, inPkg):
			lines[i] = "Version: " + version(inPkg, strings.TrimSpace(strings.TrimPrefix(t, "Version:"))) + "\n"
			done[inPkg], changed = true, true
		}
	}
	return []byte(strings.Join(lines, "")), changed
}
