package securitysupport

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/vulndatatest"
)

type recorder struct{ recs []vulndb.PackageSupport }

func (r *recorder) Advisory(vulndb.Advisory) error { return errors.New("unexpected Advisory") }
func (r *recorder) Release(vulndb.Release) error   { return errors.New("unexpected Release") }
func (r *recorder) PackageSupport(p vulndb.PackageSupport) error {
	r.recs = append(r.recs, p)
	return nil
}

// countLines counts non-comment lines, minus "supported" ones: an
// independent count of the records a list should give.
func countLines(t *testing.T, file string) int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 || strings.HasPrefix(fs[0], "#") || (len(fs) > 1 && fs[1] == "supported") {
			continue
		}
		n++
	}
	return n
}

func TestImportReal(t *testing.T) {
	base := filepath.Join(vulndatatest.Dir(t), "debian-eol", "debian-security-support")
	files, err := filepath.Glob(filepath.Join(base, "*", "security-support*"))
	if err != nil || len(files) != 13 {
		t.Fatalf("%d files, %v; want 13", len(files), err)
	}
	byName := map[string][]vulndb.PackageSupport{}
	for _, f := range files {
		rel, _ := filepath.Rel(base, f)
		t.Run(rel, func(t *testing.T) {
			var r recorder
			if err := New().Import(context.Background(), "https://x.invalid/"+filepath.Base(f), f, &r); err != nil {
				t.Fatal(err)
			}
			if want := countLines(t, f); len(r.recs) != want {
				t.Errorf("%d records, want %d", len(r.recs), want)
			}
			for _, p := range r.recs {
				if p.Package == "" || (p.Kind != "limited" && p.Kind != "ended") || (p.Kind == "limited" && !p.EndDate.IsZero()) {
					t.Errorf("bad record %+v", p)
				}
			}
			byName[rel] = r.recs
			t.Logf("%d records", len(r.recs))
		})
	}
	find := func(file, pkg string) vulndb.PackageSupport {
		for _, p := range byName[file] {
			if p.Package == pkg {
				return p
			}
		}
		t.Fatalf("%s: no %s", file, pkg)
		return vulndb.PackageSupport{}
	}
	wpe := find("12+2026.06.30/security-support-ended.deb12", "wpewebkit")
	if wpe.Release != "12" || wpe.Kind != "ended" || wpe.LastVersion != "2.38.6-1" ||
		!wpe.EndDate.Equal(time.Date(2023, 5, 9, 0, 0, 0, 0, time.UTC)) || wpe.Details != "https://bugs.debian.org/1035794" {
		t.Errorf("wpewebkit = %+v", wpe)
	}
	if g := find("12+2026.06.30/security-support-limited", "golang.*"); g.Kind != "limited" || g.Release != "" || !strings.HasPrefix(g.Details, "See https://www.debian.org/releases/bookworm/") {
		t.Errorf("golang.* = %+v", g)
	}
	consul := find("14+2026.05.07/security-support.deb13", "consul")
	if consul.Release != "13" || consul.Kind != "ended" || consul.LastVersion != "1.10.12+dfsg1-1" || !consul.EndDate.Equal(time.Date(2023, 9, 20, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("consul = %+v", consul)
	}
	if fi := find("14+2026.05.07/security-support.deb11", "freeimage"); fi.Kind != "ended" || fi.LastVersion != "" || !fi.EndDate.IsZero() || !strings.HasPrefix(fi.Details, "Inactive project upstream") {
		t.Errorf("freeimage = %+v", fi)
	}
	if a := find("13+2026.01.04/security-support.deb13", "adns"); a.Kind != "limited" || a.Details != "Stub resolver that should only be used with trusted recursors" {
		t.Errorf("adns = %+v", a)
	}
	for _, p := range byName["13+2026.01.04/security-support.deb13"] {
		if p.Package == "rust-sequoia-sqv" {
			t.Errorf("supported exception emitted: %+v", p)
		}
	}
}

// Hand-made lines: parsing edge cases only.
func TestParseEdgeCases(t *testing.T) {
	recs, err := Parse("x", FormatPerRelease, "13", strings.NewReader("# c\n\n  p1   limited\np2 non-supported 1.0-1 2024-01-02\np3\tsupported  x\n"))
	if err != nil || len(recs) != 2 || recs[0].Details != "" || recs[1].LastVersion != "1.0-1" {
		t.Fatalf("%+v, %v", recs, err)
	}
	for _, tc := range []struct {
		f   Format
		doc string
	}{
		{FormatPerRelease, "p weird x\n"},
		{FormatPerRelease, "p non-supported\n"},
		{FormatEnded, "p 1.0 2024-02-30 x\n"},
		{FormatEnded, "p\n"},
		{Format(9), ""},
	} {
		if _, err := Parse("f.list", tc.f, "1", strings.NewReader(tc.doc)); err == nil || !strings.Contains(err.Error(), "f.list") {
			t.Errorf("%q: err = %v", tc.doc, err)
		}
	}
	for name, want := range map[string]Format{
		"security-support.deb13": FormatPerRelease, "security-support-ended.deb9": FormatEnded, "security-support-limited": FormatLimited,
	} {
		if f, _, err := formatOf("/x/" + name); err != nil || f != want {
			t.Errorf("formatOf(%s) = %v, %v", name, f, err)
		}
	}
	if _, _, err := formatOf("/x/README"); !errors.Is(err, ErrUnknownFile) {
		t.Errorf("README: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("wpewebkit\t2.38.6-1\t\t2023-05-09\thttps://bugs.debian.org/1035794\n", 1)
	f.Add("adns limited Stub resolver\nconsul non-supported 1.10.12+dfsg1-1 2023-09-20 x\n", 3)
	f.Add("golang.* See https://x\n", 2)
	f.Fuzz(func(t *testing.T, doc string, format int) {
		recs, err := Parse("fuzz", Format(format), "12", strings.NewReader(doc))
		if err == nil {
			for _, r := range recs {
				if r.Package == "" || strings.HasPrefix(r.Package, "#") {
					t.Fatalf("bad record %+v", r)
				}
			}
		}
	})
}
