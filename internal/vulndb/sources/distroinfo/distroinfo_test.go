package distroinfo

import (
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

type recorder struct{ rels []vulndb.Release }

func (r *recorder) Advisory(vulndb.Advisory) error { return errors.New("unexpected Advisory") }
func (r *recorder) Release(x vulndb.Release) error { r.rels = append(r.rels, x); return nil }
func (r *recorder) PackageSupport(vulndb.PackageSupport) error {
	return errors.New("unexpected PackageSupport")
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestImportReal(t *testing.T) {
	base := filepath.Join(vulndatatest.Dir(t), "debian-eol", "distro-info-data")
	dirs, err := os.ReadDir(base)
	if err != nil || len(dirs) != 4 {
		t.Fatalf("distro-info-data versions: %d, %v", len(dirs), err)
	}
	for _, d := range dirs {
		for _, name := range []string{"debian.csv", "ubuntu.csv"} {
			file := filepath.Join(base, d.Name(), name)
			t.Run(d.Name()+"/"+name, func(t *testing.T) {
				var r recorder
				if err := New().Import(context.Background(), "https://x.invalid/"+name, file, &r); err != nil {
					t.Fatal(err)
				}
				// Independent count: data lines with a non-empty version column.
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n")[1:] {
					if !strings.HasPrefix(l, ",") {
						want++
					}
				}
				if len(r.rels) != want {
					t.Errorf("%d releases, want %d", len(r.rels), want)
				}
				t.Logf("%d releases", len(r.rels))
			})
		}
	}

	// Facts from the newest file (2026.10.12-1).
	var deb, ubu recorder
	if err := New().Import(context.Background(), "", filepath.Join(base, "2026.10.12-1", "debian.csv"), &deb); err != nil {
		t.Fatal(err)
	}
	if err := New().Import(context.Background(), "", filepath.Join(base, "2026.10.12-1", "ubuntu.csv"), &ubu); err != nil {
		t.Fatal(err)
	}
	find := func(rels []vulndb.Release, v string) vulndb.Release {
		for _, r := range rels {
			if r.Version == v {
				return r
			}
		}
		t.Fatalf("no release %q", v)
		return vulndb.Release{}
	}
	bookworm := find(deb.rels, "12")
	if bookworm.Series != "bookworm" || bookworm.Codename != "Bookworm" || !bookworm.Released.Equal(day("2023-06-10")) ||
		!bookworm.EOL.Equal(day("2026-07-11")) || !bookworm.EOLLTS.Equal(day("2028-06-30")) || !bookworm.EOLELTS.Equal(day("2033-06-30")) ||
		bookworm.Distro != vulndb.Debian || bookworm.Source != Name {
		t.Errorf("bookworm = %+v", bookworm)
	}
	bullseye := find(deb.rels, "11")
	if !bullseye.EOLLTS.Equal(day("2026-08-31")) {
		t.Errorf("bullseye = %+v", bullseye)
	}
	squeeze := find(deb.rels, "6")
	if squeeze.Series != "squeeze" || !squeeze.EOLLTS.Equal(day("2016-02-29")) {
		t.Errorf("squeeze = %+v", squeeze)
	}
	forky := find(deb.rels, "14")
	if !forky.Released.IsZero() || !forky.EOL.IsZero() {
		t.Errorf("forky = %+v", forky)
	}
	find(deb.rels, "3.1")
	resolute := find(ubu.rels, "26.04")
	if resolute.Series != "resolute" || !resolute.EOL.Equal(day("2031-05-29")) || !resolute.EOLLTS.IsZero() || !resolute.EOLELTS.Equal(day("2036-04-23")) {
		// Ubuntu ESM (Ubuntu Pro, paid) is reported like Debian's ELTS; see osinfo.
		t.Errorf("26.04 = %+v", resolute)
	}
	dapper := find(ubu.rels, "6.06")
	if !dapper.EOL.Equal(day("2011-06-01")) { // eol-server later than eol 2009-07-14
		t.Errorf("6.06 = %+v", dapper)
	}
}

// Hand-made documents: parsing edge cases only.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"empty", ""},
		{"header", "version,codename\n1,a\n"},
		{"date", "version,codename,series,created,release,eol\n1,A,a,2020-13-01,,\n"},
		{"series", "version,codename,series,created,release,eol\n1,A,,,,\n"},
		{"quote", "version,codename,series,created,release,eol\n1,\"A,a\n"},
	} {
		if _, err := Parse("f.csv", vulndb.Debian, strings.NewReader(tc.doc)); err == nil || !strings.Contains(err.Error(), "f.csv") {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
	if _, err := Parse("f.csv", vulndb.Alpine, strings.NewReader("")); err == nil {
		t.Error("alpine accepted")
	}
	err := New().Import(context.Background(), "https://x/devuan.csv", filepath.Join(t.TempDir(), "devuan.csv"), &recorder{})
	if !errors.Is(err, ErrUnknownFile) {
		t.Errorf("devuan.csv: err = %v", err)
	}
	rels, err := Parse("f.csv", vulndb.Ubuntu, strings.NewReader("version,codename,series,created,release,eol,extra\n22.04 LTS,Jammy Jellyfish,jammy,2021-10-14,2022-04-21,2027-06-01,x\n"))
	if err != nil || len(rels) != 1 || rels[0].Version != "22.04" {
		t.Errorf("extra column: %+v, %v", rels, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("version,codename,series,created,release,eol,eol-lts,eol-elts\n12,Bookworm,bookworm,2021-08-14,2023-06-10,2026-07-11,2028-06-30,2033-06-30\n,Sid,sid,1993-08-16\n")
	f.Add("version,codename,series,created,release,eol,eol-server,eol-esm,eol-legacy\n6.06 LTS,Dapper Drake,dapper,2005-10-12,2006-06-01,2009-07-14,2011-06-01\n")
	f.Fuzz(func(t *testing.T, doc string) {
		for _, d := range []string{vulndb.Debian, vulndb.Ubuntu} {
			rels, err := Parse("fuzz.csv", d, strings.NewReader(doc))
			if err == nil {
				for _, r := range rels {
					if r.Version == "" || r.Series == "" {
						t.Fatalf("bad release %+v", r)
					}
				}
			}
		}
	})
}
