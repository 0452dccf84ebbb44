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
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

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

// dateCol is a date column and the field it fills.
type dateCol struct {
	col string
	dst *time.Time
}

// Parse reads a distro-info CSV file of distro (vulndb.Debian or
// vulndb.Ubuntu); name is used in errors. Records come in file order.
func Parse(name, distro string, r io.Reader) ([]vulndb.Release, error) {
	if distro != vulndb.Debian && distro != vulndb.Ubuntu {
		return nil, fmt.Errorf("distroinfo: %s: unsupported distro %q", name, distro)
	}
	cr := csv.NewReader(io.LimitReader(r, 16<<20))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("distroinfo: %s: reading header: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, need := range []string{"version", "codename", "series", "created", "release", "eol"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("distroinfo: %s: header %q lacks column %q", name, strings.Join(header, ","), need)
		}
	}
	var out []vulndb.Release
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("distroinfo: %s: %w", name, err)
		}
		line, _ := cr.FieldPos(0) // only valid after a successful Read
		get := func(c string) string {
			i, ok := col[c]
			if !ok || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		date := func(c string) (time.Time, error) {
			v := get(c)
			if v == "" {
				return time.Time{}, nil
			}
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				return time.Time{}, fmt.Errorf("distroinfo: %s:%d: column %s: %w", name, line, c, err)
			}
			return t, nil
		}
		rel := vulndb.Release{Distro: distro, Codename: get("codename"), Series: get("series"), Source: Name}
		if rel.Series == "" {
			return nil, fmt.Errorf("distroinfo: %s:%d: empty series", name, line)
		}
		dates := []dateCol{{"created", &rel.Created}, {"release", &rel.Released}, {"eol", &rel.EOL}}
		if distro == vulndb.Debian {
			dates = append(dates, dateCol{"eol-lts", &rel.EOLLTS}, dateCol{"eol-elts", &rel.EOLELTS})
		} else {
			dates = append(dates, dateCol{"eol-esm", &rel.EOLLTS}, dateCol{"eol-legacy", &rel.EOLELTS})
		}
		for _, d := range dates {
			if *d.dst, err = date(d.col); err != nil {
				return nil, err
			}
		}
		v := get("version")
		switch distro {
		case vulndb.Debian:
			v = debianrel.ReleaseKey(v)
		case vulndb.Ubuntu:
			v = strings.TrimSpace(strings.TrimSuffix(v, " LTS"))
			server, err := date("eol-server")
			if err != nil {
				return nil, err
			}
			if server.After(rel.EOL) {
				rel.EOL = server
			}
		}
		if v == "" {
			continue // sid, experimental: no release key
		}
		rel.Version = v
		out = append(out, rel)
	}
}
