package archive

import (
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/drydock-project/drydock/internal/deb822"
)

// Bounds on Packages indexes. Debian's largest uncompressed binary index
// (sid main amd64) is about 70 MB with 65,000 stanzas.
const (
	maxIndexCompressed   = 128 << 20 // bytes of a compressed index download
	maxIndexUncompressed = 512 << 20 // bytes of an index once decompressed
	maxIndexPackages     = 1 << 20   // stanzas in one index
	maxIndexXZDict       = 128 << 20 // an xz index's dictionary (xz -9: 64 MiB)
)

// IndexPackage is one stanza of a Packages index: a binary package the
// archive offers.
type IndexPackage struct {
	Package, Version, Architecture string
	Source, SourceVersion          string // source name and version (= Package, Version when absent)
	MultiArch                      string // "same", "foreign", "allowed" or ""
	Depends, PreDepends            string // raw relationship fields; resolution comes later
	Provides, Breaks, Conflicts    string
	Filename                       string // relative to the archive root, e.g. "pool/main/o/openssl/libssl3_3.0.17-1~deb12u2_amd64.deb"
	Size                           int64  // bytes of the .deb
	SHA256                         string // of the .deb, lower-case hex
	InstalledSize                  int64  // KiB, as the index gives it

	// Suite and URI name the source (archive) the index came from.
	Suite, URI string
}

// URL is the .deb's download URL.
func (p *IndexPackage) URL() string { return p.URI + "/" + p.Filename }

// ParsePackages parses a Packages index (uncompressed). Each stanza must
// have Package, Version, Architecture, Filename, Size and a well-formed
// SHA256: apt cannot fetch a package without them, so one missing is an
// error naming the stanza's line. name is used in errors.
func ParsePackages(r io.Reader, name string) ([]IndexPackage, error) {
	var (
		out   chunks
		count int
	)
	err := parsePackages(r, name, func(p *IndexPackage) {
		out.add(*p)
		count++
	})
	if err != nil {
		return nil, err
	}
	return out.join(count), nil
}

// parsePackages parses a Packages index as ParsePackages does, and gives
// each package to fn as it is parsed (fn must not keep p, which is
// reused).
func parsePackages(r io.Reader, name string, fn func(p *IndexPackage)) error {
	count := 0
	err := parseStanzas(r, func(st *deb822.Paragraph) error {
		if count >= maxIndexPackages {
			return fmt.Errorf("more than %d packages", maxIndexPackages)
		}
		p := IndexPackage{
			Package: st.Value("Package"), Version: st.Value("Version"), Architecture: st.Value("Architecture"),
			MultiArch: st.Value("Multi-Arch"), Depends: st.Value("Depends"), PreDepends: st.Value("Pre-Depends"),
			Provides: st.Value("Provides"), Breaks: st.Value("Breaks"), Conflicts: st.Value("Conflicts"),
			Filename: st.Value("Filename"), SHA256: strings.ToLower(st.Value("SHA256")),
		}
		if p.Package == "" || p.Version == "" || p.Architecture == "" || p.Filename == "" {
			return fmt.Errorf("line %d: stanza without Package, Version, Architecture or Filename", st.Line)
		}
		if len(p.SHA256) != 64 || !isHex(p.SHA256) {
			return fmt.Errorf("line %d: package %s: missing or malformed SHA256", st.Line, p.Package)
		}
		if !validPoolPath(p.Filename) {
			return fmt.Errorf("line %d: package %s: invalid Filename %q", st.Line, p.Package, deb822.Truncate(p.Filename, 100))
		}
		var err error
		if p.Size, err = strconv.ParseInt(st.Value("Size"), 10, 64); err != nil || p.Size < 0 {
			return fmt.Errorf("line %d: package %s: bad Size %q", st.Line, p.Package, deb822.Truncate(st.Value("Size"), 40))
		}
		if is := st.Value("Installed-Size"); is != "" {
			if p.InstalledSize, err = strconv.ParseInt(is, 10, 64); err != nil || p.InstalledSize < 0 {
				return fmt.Errorf("line %d: package %s: bad Installed-Size %q", st.Line, p.Package, deb822.Truncate(is, 40))
			}
		}
		p.Source, p.SourceVersion = p.Package, p.Version
		if src := st.Value("Source"); src != "" {
			n, v, ok := strings.Cut(src, " ")
			p.Source = n
			if ok {
				p.SourceVersion = strings.Trim(strings.TrimSpace(v), "()")
			}
		}
		fn(&p)
		count++
		return nil
	})
	if err != nil {
		return fmt.Errorf("parsing index %s: %w", name, err)
	}
	return nil
}

// chunks collects the packages of an index of unknown length in chunks
// of at most maxChunk. One slice grown by append would allocate about 5
// times its final size for a large index (Go grows large slices by a
// quarter), 80 MB for bookworm's main; chunks allocate it twice.
type chunks struct {
	full [][]IndexPackage
	cur  []IndexPackage
}

const maxChunk = 4096

func (c *chunks) add(p IndexPackage) {
	if len(c.cur) == cap(c.cur) {
		if len(c.cur) > 0 {
			c.full = append(c.full, c.cur)
		}
		c.cur = make([]IndexPackage, 0, min(max(2*cap(c.cur), 64), maxChunk))
	}
	c.cur = append(c.cur, p)
}

// join returns the n packages added, in order, in one slice.
func (c *chunks) join(n int) []IndexPackage {
	if len(c.full) == 0 {
		return c.cur
	}
	out := make([]IndexPackage, 0, n)
	for _, f := range c.full {
		out = append(out, f...)
	}
	return append(out, c.cur...)
}

// validPoolPath accepts a relative, clean path without "..": a Filename
// may not point outside the archive.
func validPoolPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && path.Clean(p) == p &&
		!strings.Contains(p, "..") && !strings.ContainsAny(p, "?#\\ \t")
}
