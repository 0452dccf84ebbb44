package archive

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/patch/deb"
	"github.com/drydock-project/drydock/internal/version"
)

// Update is an installed package and the version apt would upgrade it to.
type Update struct {
	Name      string // binary package name
	Arch      string // installed architecture
	Installed string // installed version
	// Candidate is the index entry of the highest version the sources
	// offer: its Version, Suite, URL(), Size and SHA256.
	Candidate IndexPackage
}

// Candidates returns, for each installed dpkg package, the highest version
// across the fetched suites that is greater than the installed one (Debian
// version order), sorted by name and architecture. Only entries of the same
// architecture match, where "all" and the image's architecture stand for
// each other (apt treats arch-all packages as native). Suites whose Release
// says NotAutomatic (backports, experimental) are skipped, as apt's default
// pin does. Of equal versions, the one of the earliest source wins. Call
// Update first; dependencies are not resolved here.
func (r *Repo) Candidates(installed []inventory.Package) []Update {
	var out []Update
	cmpDeb := version.Deb{}
	for _, ip := range installed {
		if ip.Ecosystem != "" && ip.Ecosystem != version.EcosystemDeb {
			continue
		}
		var best *IndexPackage
		for _, p := range r.entries(ip.Name, false) {
			if !r.sameArch(ip.Arch, p.Architecture) {
				continue
			}
			if rel := r.releases[p.URI+" "+p.Suite]; rel != nil && rel.NotAutomatic {
				continue
			}
			if c, err := cmpDeb.Compare(p.Version, ip.Version); err != nil || c <= 0 {
				continue
			}
			if best == nil {
				best = p
				continue
			}
			if c, err := cmpDeb.Compare(p.Version, best.Version); err == nil && c > 0 {
				best = p
			}
		}
		if best != nil {
			out = append(out, Update{Name: ip.Name, Arch: ip.Arch, Installed: ip.Version, Candidate: *best})
		}
	}
	slices.SortFunc(out, func(a, b Update) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Arch, b.Arch))
	})
	return slices.CompactFunc(out, func(a, b Update) bool { return a.Name == b.Name && a.Arch == b.Arch })
}

// sameArch reports whether an index entry of architecture offered can
// upgrade a package installed for architecture installed.
func (r *Repo) sameArch(installed, offered string) bool {
	native := func(a string) bool { return a == r.arch || a == "all" }
	return installed == offered || (native(installed) && native(offered))
}

// FetchDeb downloads p's .deb into the cache (or finds it there) and
// returns its path. Its size and SHA256 must match the index: a mismatch is
// a *HashMismatchError and nothing is kept.
func (r *Repo) FetchDeb(ctx context.Context, p *IndexPackage) (string, error) {
	if p.URI == "" || !validPoolPath(p.Filename) || len(p.SHA256) != 64 || !isHex(p.SHA256) {
		return "", fmt.Errorf("fetching package %s %s: incomplete index entry", p.Package, p.Version)
	}
	want := FileHash{Path: p.Filename, Size: p.Size, SHA256: p.SHA256}
	dst, err := r.store.file("deb-"+p.SHA256, "package.deb", matches(want), func(dst string) error {
		return r.fetchVerified(ctx, []string{p.URL()}, dst, want)
	})
	if err != nil {
		return "", fmt.Errorf("fetching package %s %s: %w", p.Package, p.Version, err)
	}
	return dst, nil
}

// Lookup returns the index entry of package name at version for the
// image's architecture (or "all"), after Update.
func (r *Repo) Lookup(name, version string) (*IndexPackage, bool) {
	for _, p := range r.entries(name, false) {
		if p.Version == version && (p.Architecture == r.arch || p.Architecture == "all") {
			return p, true
		}
	}
	return nil, false
}

// FetchPlainDeb returns p's .deb with its tar archives decompressed (see
// deb.Normalize), cached by p's SHA256 with a checksum of its own: the
// same package, which unpacks without decompressing xz again.
func (r *Repo) FetchPlainDeb(ctx context.Context, p *IndexPackage) (string, error) {
	return r.store.file("debplain-"+p.SHA256, "package.deb", sumMatches, func(dst string) error {
		src, err := r.FetchDeb(ctx, p)
		if err != nil {
			return err
		}
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
		if err != nil {
			return err
		}
		err = deb.Normalize(in, out, deb.DefaultLimits())
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = writeSum(dst)
		}
		if err != nil {
			return fmt.Errorf("decompressing package %s %s: %w", p.Package, p.Version, err)
		}
		return nil
	})
}

// writeSum records the SHA256 of file in file.sha256.
func writeSum(file string) error {
	sum, err := fileSum(file)
	if err != nil {
		return err
	}
	return os.WriteFile(file+".sha256", []byte(sum), 0o644)
}

// sumMatches is a store check: file matches the SHA256 writeSum recorded.
func sumMatches(file string) (bool, error) {
	want, err := os.ReadFile(file + ".sha256")
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	got, err := fileSum(file)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil && got == string(want), err
}

func fileSum(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
