package archive

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/drydock-project/drydock/internal/inventory"
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
		for _, p := range r.pkgs[ip.Name] {
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
	dst := filepath.Join(r.o.cacheDir, "debs", p.SHA256+".deb")
	if err := r.fetchVerified(ctx, []string{p.URL()}, dst, FileHash{Path: p.Filename, Size: p.Size, SHA256: p.SHA256}); err != nil {
		return "", fmt.Errorf("fetching package %s %s: %w", p.Package, p.Version, err)
	}
	return dst, nil
}

// Lookup returns the index entry of package name at version for the
// image's architecture (or "all"), after Update.
func (r *Repo) Lookup(name, version string) (*IndexPackage, bool) {
	for _, p := range r.pkgs[name] {
		if p.Version == version && (p.Architecture == r.arch || p.Architecture == "all") {
			return p, true
		}
	}
	return nil, false
}
