// Package distroinfo imports distro-info-data's debian.csv and ubuntu.csv
// as vulndb.Release records.
//
// The CSV header is version,codename,series,created,release,eol followed by
// debian.csv's eol-lts,eol-elts or ubuntu.csv's eol-server,eol-esm,
// eol-legacy; columns are found by name, so new ones are ignored.
// Mapping:
//   - Debian: Version is the release key ("6.0" -> "6", "12"); EOL, EOLLTS
//     and EOLELTS are eol, eol-lts, eol-elts. Rows without a version (sid,
//     experimental, rc-buggy) have no release key and are skipped.
//   - Ubuntu: Version drops " LTS" ("22.04 LTS" -> "22.04"); EOL is the
//     later of eol and eol-server (old LTS releases supported servers
//     longer, and images are servers); EOLLTS is eol-esm (Ubuntu Pro ESM)
//     and EOLELTS is eol-legacy (Legacy support add-on), the closest
//     counterparts of Debian's LTS and ELTS.
//
// Dates are YYYY-MM-DD, taken as midnight UTC. Which distribution a file
// holds comes from its name (debian.csv, ubuntu.csv), from the local path
// first and then from the URL.
//
// A parser for the same files may land in internal/osinfo
// (ParseDistroInfo); when it does, this Source should call it.
package distroinfo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/sources/internal/debianrel"
)

// Name is the Source name.
const Name = "distro-info"

// Source imports distro-info-data CSV files.
type Source struct{}

// New returns a distro-info Source.
func New() *Source { return &Source{} }

// Name implements vulndb.Source.
func (*Source) Name() string { return Name }

// DefaultURLs implements vulndb.Source: the files in distro-info-data's
// repository.
func (*Source) DefaultURLs() []string {
	return []string{
		"https://salsa.debian.org/debian/distro-info-data/-/raw/main/debian.csv",
		"https://salsa.debian.org/debian/distro-info-data/-/raw/main/ubuntu.csv",
	}
}

// ErrUnknownFile means the file is neither debian.csv nor ubuntu.csv.
var ErrUnknownFile = errors.New("not a debian.csv or ubuntu.csv distro-info file")

// distroOf names the distribution of a file by its base name.
func distroOf(names ...string) (string, error) {
	for _, n := range names {
		n, _, _ = strings.Cut(n, "?")
		switch strings.ToLower(path.Base(filepath.ToSlash(n))) {
		case "debian.csv":
			return vulndb.Debian, nil
		case "ubuntu.csv":
			return vulndb.Ubuntu, nil
		}
	}
	return "", ErrUnknownFile
}

// Import implements vulndb.Source.
func (s *Source) Import(ctx context.Context, url, file string, sink vulndb.Sink) error {
	distro, err := distroOf(file, url)
	if err != nil {
		return fmt.Errorf("distroinfo: %s: %w", file, err)
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("distroinfo: opening %s: %w", file, err)
	}
	defer f.Close()
	rels, err := Parse(file, distro, f)
	if err != nil {
		return err
	}
	for _, r := range rels {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := sink.Release(r); err != nil {
			return fmt.Errorf("distroinfo: %s: release %s: %w", file, r.Version, err)
		}
	}
	return nil
}

// Parse reads a distro-info CSV file of distro (vulndb.Debian or
// vulndb.Ubuntu) with osinfo.ParseDistroInfo, the one parser of that format,
// and turns the rows into DB records: Debian versions become release keys
// ("4.0" -> "4"), rows without a version (sid, experimental) are dropped.
// name is used in errors. Records come in file order.
func Parse(name, distro string, r io.Reader) ([]vulndb.Release, error) {
	if distro != vulndb.Debian && distro != vulndb.Ubuntu {
		return nil, fmt.Errorf("distroinfo: %s: unsupported distro %q", name, distro)
	}
	rels, err := osinfo.ParseDistroInfo(io.LimitReader(r, 16<<20), distro)
	if err != nil {
		return nil, fmt.Errorf("distroinfo: %s: %w", name, err)
	}
	out := rels[:0]
	for _, rel := range rels {
		if rel.Series == "" {
			return nil, fmt.Errorf("distroinfo: %s: release %q has an empty series", name, rel.Version)
		}
		if distro == vulndb.Debian {
			rel.Version = debianrel.ReleaseKey(rel.Version)
		}
		if rel.Version == "" {
			continue // sid, experimental: no release key
		}
		rel.Source = Name
		out = append(out, rel)
	}
	return out, nil
}
