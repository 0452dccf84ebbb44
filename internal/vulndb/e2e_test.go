package vulndb_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/sources"
	"github.com/drydock-project/drydock/internal/vulndb/vulndatatest"
)

// feedOverrides points every default source at the loopback feed server,
// as the vulndata README maps the public URLs to its files.
func feedOverrides(base string) []vulndb.UpdateOption {
	m := map[string][]string{
		"osv":            {"/osv/Debian/all.zip", "/osv/Alpine/all.zip"},
		"debian-tracker": {"/debian-security-tracker/data/DSA/list", "/debian-security-tracker/data/DLA/list", "/debian-security-tracker/data/DTSA/list"},
		"alpine-secdb":   {"/alpine-secdb/v3.20/main.json", "/alpine-secdb/v3.21/main.json", "/alpine-secdb/v3.21/community.json"},
		"distro-info":    {"/debian-eol/distro-info-data/2026.10.12-1/debian.csv", "/debian-eol/distro-info-data/2026.10.12-1/ubuntu.csv"},
		"debian-security-support": {"/debian-eol/debian-security-support/13+2026.01.04/security-support.deb11",
			"/debian-eol/debian-security-support/13+2026.01.04/security-support.deb12"},
	}
	var opts []vulndb.UpdateOption
	for name, paths := range m {
		for _, p := range paths {
			opts = append(opts, vulndb.WithSourceURLs(name, base+p))
		}
	}
	return opts
}

// TestUpdateDefaultSources builds the database with the real importers
// from the real feed files served over loopback HTTP.
func TestUpdateDefaultSources(t *testing.T) {
	if testing.Short() {
		t.Skip("imports the whole feed data (-short)")
	}
	dir := vulndatatest.Dir(t)
	srv := newFeedServer(t, dir)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "drydock-vuln.db")
	rep, err := vulndb.Update(ctx, path, sources.Defaults(), append(feedOverrides(srv.URL), clock(t0))...)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Sources {
		t.Logf("%-24s advisories %6d releases %3d package-support %4d data as of %s", s.Name, s.Advisories, s.Releases, s.PackageSupport, s.DataAsOf.Format(time.DateOnly))
		if s.Advisories+s.Releases+s.PackageSupport == 0 {
			t.Errorf("source %s imported nothing", s.Name)
		}
	}
	db := open(t, path)
	// CVE-2023-0286 (openssl, X.400 type confusion): DSA-5343-1 fixed it
	// in bullseye in 1.1.1n-0+deb11u4; both the tracker's DSA list and OSV
	// say so, and the tracker wins.
	advs, err := db.Advisories(ctx, vulndb.Debian, "11", "openssl")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(advs, func(a vulndb.Advisory) bool { return a.ID == "CVE-2023-0286" })
	if i < 0 {
		t.Fatalf("CVE-2023-0286 not among %d openssl advisories", len(advs))
	}
	a := advs[i]
	t.Logf("merged: %+v", a)
	if a.Status != vulndb.StatusFixed || a.FixedVersion != "1.1.1n-0+deb11u4" || !slices.Contains(a.FixedBy, "DSA-5343-1") || a.Source != "debian-tracker" {
		t.Errorf("CVE-2023-0286 merged as %+v", a)
	}
	r, ok, err := db.Release(ctx, vulndb.Debian, "bullseye")
	if err != nil || !ok || r.Version != "11" || r.EOL.IsZero() {
		t.Errorf("Release(bullseye) = %+v, %v, %v", r, ok, err)
	}
}
