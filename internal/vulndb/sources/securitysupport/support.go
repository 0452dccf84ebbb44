// Package securitysupport imports debian-security-support's lists of
// source packages whose security support is limited or has ended, as
// vulndb.PackageSupport records.
//
// Two formats exist, told apart by the file name:
//   - up to the bookworm package (1:12+...): security-support-ended.debN
//     (columns: source package, last supported version, end date
//     YYYY-MM-DD, details) -> Kind "ended", Release "N"; and
//     security-support-limited (source package, details) -> Kind
//     "limited". That file names no release (each package version ships
//     the one of its release), so its records have Release "": they apply
//     to every release.
//   - from trixie's package (1:13+...) one file per release,
//     security-support.debN (source package, limited|non-supported|
//     supported, then for non-supported: last version, end date; then
//     details): limited -> "limited", non-supported -> "ended". "supported"
//     lines mark exceptions to a pattern (rust-sequoia-sqv under rust.*)
//     and are skipped: the PackageSupport contract has no such kind.
//
// Columns are separated by runs of blanks; details are the rest of the
// line, verbatim but trimmed. '#' lines and blank lines are comments.
// Package names may be patterns ("golang.*", "php-horde.*"), as Debian's
// check-support-status treats them; they are kept verbatim.
package securitysupport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// Name is the Source name.
const Name = "debian-security-support"

// Source imports debian-security-support lists.
type Source struct{}

// New returns a debian-security-support Source.
func New() *Source { return &Source{} }

// Name implements vulndb.Source.
func (*Source) Name() string { return Name }

// DefaultURLs implements vulndb.Source: the per-release files of the
// repository's default branch.
func (*Source) DefaultURLs() []string {
	var urls []string
	for _, n := range []string{"11", "12", "13", "14"} {
		urls = append(urls, "https://salsa.debian.org/debian/debian-security-support/-/raw/master/security-support.deb"+n)
	}
	return urls
}

// ErrUnknownFile means the file name is none of the known lists.
var ErrUnknownFile = errors.New("not a debian-security-support list (security-support.debN, security-support-ended.debN, security-support-limited)")

// Format is one of the list formats.
type Format int

// The list formats.
const (
	FormatEnded      Format = iota + 1 // security-support-ended.debN
	FormatLimited                      // security-support-limited
	FormatPerRelease                   // security-support.debN
)

var nameRE = regexp.MustCompile(`^security-support(-ended)?\.deb(\d+)$`)

// formatOf tells a list's format and release from its base name.
func formatOf(names ...string) (Format, string, error) {
	for _, n := range names {
		n, _, _ = strings.Cut(n, "?")
		base := path.Base(filepath.ToSlash(n))
		if base == "security-support-limited" {
			return FormatLimited, "", nil
		}
		if m := nameRE.FindStringSubmatch(base); m != nil {
			if m[1] != "" {
				return FormatEnded, m[2], nil
			}
			return FormatPerRelease, m[2], nil
		}
	}
	return 0, "", ErrUnknownFile
}

// Import implements vulndb.Source.
func (s *Source) Import(ctx context.Context, url, file string, sink vulndb.Sink) error {
	format, release, err := formatOf(file, url)
	if err != nil {
		return fmt.Errorf("securitysupport: %s: %w", file, err)
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("securitysupport: opening %s: %w", file, err)
	}
	defer f.Close()
	recs, err := Parse(file, format, release, f)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := sink.PackageSupport(r); err != nil {
			return fmt.Errorf("securitysupport: %s: package %s: %w", file, r.Package, err)
		}
	}
	return nil
}

// next splits off the first blank-separated field of s.
func next(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// versionAndDate reads an ended package's "last-version end-date" columns.
// Real lists sometimes give neither (freeimage in bullseye's list: only
// details follow "non-supported"), so when the second field is not a date
// the fields are details; a lone date is taken as the end date. A field
// that looks like a date but is not one (2024-02-30) is an error.
func versionAndDate(s string) (ver string, end time.Time, rest string, err error) {
	f1, r1 := next(s)
	f2, r2 := next(r1)
	if looksLikeDate(f2) {
		end, err = time.Parse(time.DateOnly, f2)
		if err != nil {
			return "", time.Time{}, "", fmt.Errorf("end date: %w", err)
		}
		return f1, end, r2, nil
	}
	if looksLikeDate(f1) {
		end, err = time.Parse(time.DateOnly, f1)
		if err != nil {
			return "", time.Time{}, "", fmt.Errorf("end date: %w", err)
		}
		return "", end, r1, nil
	}
	if f1 == "" {
		return "", time.Time{}, "", errors.New("missing last version and end date")
	}
	return "", time.Time{}, s, nil
}

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

func looksLikeDate(s string) bool { return dateRE.MatchString(s) }

// Parse reads one list of the given format; release is the Debian release
// key the list is for ("" for security-support-limited); name is used in
// errors.
func Parse(name string, format Format, release string, r io.Reader) ([]vulndb.PackageSupport, error) {
	if format < FormatEnded || format > FormatPerRelease {
		return nil, fmt.Errorf("securitysupport: %s: unknown format %d", name, format)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var out []vulndb.PackageSupport
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		var err error
		rec := vulndb.PackageSupport{Distro: vulndb.Debian, Release: release, Source: Name}
		var rest string
		rec.Package, rest = next(text)
		kind := "ended"
		switch format {
		case FormatLimited:
			kind = "limited"
		case FormatPerRelease:
			var k string
			k, rest = next(rest)
			switch k {
			case "limited":
				kind = "limited"
			case "non-supported":
				kind = "ended"
			case "supported":
				continue
			default:
				return nil, fmt.Errorf("securitysupport: %s:%d: package %s: unknown support kind %q", name, line, rec.Package, k)
			}
		}
		rec.Kind = kind
		if kind == "ended" {
			if rec.LastVersion, rec.EndDate, rest, err = versionAndDate(rest); err != nil {
				return nil, fmt.Errorf("securitysupport: %s:%d: package %s: %w", name, line, rec.Package, err)
			}
		}
		rec.Details = strings.TrimSpace(rest)
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("securitysupport: %s: %w", name, err)
	}
	return out, nil
}
