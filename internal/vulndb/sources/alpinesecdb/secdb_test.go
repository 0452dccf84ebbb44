package alpinesecdb

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/vulndatatest"
)

type recorder struct{ advs []vulndb.Advisory }

func (r *recorder) Advisory(a vulndb.Advisory) error { r.advs = append(r.advs, a); return nil }
func (r *recorder) Release(vulndb.Release) error     { return errors.New("unexpected Release") }
func (r *recorder) PackageSupport(vulndb.PackageSupport) error {
	return errors.New("unexpected PackageSupport")
}

func (r *recorder) find(pkg, id string) (vulndb.Advisory, bool) {
	for _, a := range r.advs {
		if a.Package == pkg && a.ID == id {
			return a, true
		}
	}
	return vulndb.Advisory{}, false
}

func importFile(t *testing.T, file string) *recorder {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var r recorder
	if err := s.Import(context.Background(), "https://secdb.alpinelinux.org/x.json", file, &r); err != nil {
		t.Fatalf("Import: %v", err)
	}
	return &r
}

// independentCount counts distinct (package, CVE) pairs of a secdb file
// with a generic JSON decode, not the importer's types.
func independentCount(t *testing.T, file string) (distroversion string, n int) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^CVE[-_](\d{4}-\d{4,})`)
	pairs := map[string]bool{}
	for _, p := range doc["packages"].([]any) {
		pkg := p.(map[string]any)["pkg"].(map[string]any)
		name := pkg["name"].(string)
		for _, ids := range pkg["secfixes"].(map[string]any) {
			list, _ := ids.([]any)
			for _, s := range list {
				for _, tok := range strings.Fields(s.(string)) {
					if m := re.FindStringSubmatch(tok); m != nil {
						pairs[name+" CVE-"+m[1]] = true
					}
				}
			}
		}
	}
	return doc["distroversion"].(string), len(pairs)
}

func TestImportAllReal(t *testing.T) {
	dir := filepath.Join(vulndatatest.Dir(t), "alpine-secdb")
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil || len(files) != 41 {
		t.Fatalf("found %d secdb files (%v), want 41", len(files), err)
	}
	total := 0
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		t.Run(rel, func(t *testing.T) {
			r := importFile(t, f)
			dv, want := independentCount(t, f)
			if len(r.advs) != want {
				t.Errorf("%d records, want %d (independent count)", len(r.advs), want)
			}
			wantRel := strings.TrimPrefix(dv, "v")
			for _, a := range r.advs {
				if a.Release != wantRel || a.Distro != vulndb.Alpine || a.Source != Name {
					t.Fatalf("bad record %+v", a)
				}
				if (a.Status == vulndb.StatusFixed) != (a.FixedVersion != "") || (a.Status != vulndb.StatusFixed && a.Status != vulndb.StatusNotAffected) {
					t.Fatalf("bad status %+v", a)
				}
			}
			total += len(r.advs)
		})
	}
	t.Logf("%d records from %d files", total, len(files))
}

func TestImportV321Main(t *testing.T) {
	r := importFile(t, filepath.Join(vulndatatest.Dir(t), "alpine-secdb", "v3.21", "main.json"))
	if len(r.advs) == 0 {
		t.Fatal("no records")
	}
	t.Logf("v3.21/main.json: %d records", len(r.advs))
	for _, tc := range []struct {
		pkg, id string
		status  vulndb.Status
		fixed   string
	}{
		{"openssl", "CVE-2024-9143", vulndb.StatusFixed, "3.3.2-r3"},
		{"openssl", "CVE-2024-5535", vulndb.StatusFixed, "3.3.1-r1"},
		{"openssl", "CVE-2022-2274", vulndb.StatusNotAffected, ""},
		{"busybox", "CVE-2021-42373", vulndb.StatusNotAffected, ""},
		{"busybox", "CVE-2023-42364", vulndb.StatusFixed, "1.36.1-r30"},
		{"musl", "CVE-2020-28928", vulndb.StatusFixed, "1.2.2_pre2-r0"},
	} {
		a, ok := r.find(tc.pkg, tc.id)
		if !ok || a.Status != tc.status || a.FixedVersion != tc.fixed || a.Release != "3.21" {
			t.Errorf("%s %s = %+v, %v; want %s %q", tc.pkg, tc.id, a, ok, tc.status, tc.fixed)
		}
	}
}

func TestRsyncSuffixedIDs(t *testing.T) {
	// v3.10/main.json lists rsync's CVE-2017-17434 as "-1" and "-2" parts.
	r := importFile(t, filepath.Join(vulndatatest.Dir(t), "alpine-secdb", "v3.10", "main.json"))
	if a, ok := r.find("rsync", "CVE-2017-17434"); !ok || a.FixedVersion != "3.1.2-r7" {
		t.Errorf("rsync CVE-2017-17434 = %+v, %v", a, ok)
	}
}

// Hand-made documents: parsing edge cases only.
func TestEdgeCases(t *testing.T) {
	doc := `{"distroversion":"v3.99","packages":[
	  {"pkg":{"name":"p","secfixes":{
	    "1.2-r0":["CVE-2099-0001 (+ regression fix)","XSA-1","CVE-????-?????","CVE_2099-0002"],
	    "1.10-r0":["CVE-2099-0001"],
	    "0":["CVE-2099-0003","CVE-2099-0001 CVE-2099-0004"],
	    "1.0-r0": null}}},
	  {"pkg":{"name":"p","secfixes":{"2.0-r0":["CVE-2099-0003"]}}}]}`
	var r recorder
	if err := importReader(context.Background(), "x.json", strings.NewReader(doc), &r); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range r.advs {
		got[a.ID] = string(a.Status) + " " + a.FixedVersion
		if a.Release != "3.99" {
			t.Errorf("release %q", a.Release)
		}
	}
	want := map[string]string{
		"CVE-2099-0001": "fixed 1.10-r0",
		"CVE-2099-0002": "fixed 1.2-r0",
		"CVE-2099-0003": "fixed 2.0-r0",
		"CVE-2099-0004": "not_affected ",
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s = %q, want %q", id, got[id], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
	if !slices.IsSortedFunc(r.advs, func(a, b vulndb.Advisory) int { return strings.Compare(a.ID, b.ID) }) {
		t.Error("records not sorted")
	}

	for _, bad := range []string{
		``, `{`, `[]`, `{"distroversion":"3.21","packages":[]}`,
		`{"distroversion":"v3.21","packages":[{"pkg":{"name":""}}]}`,
		`{"distroversion":"v3.21","packages":[{"pkg":{"name":"p","secfixes":{"1":[1]}}}]}`,
		`{"distroversion":"v3.21","packages":[{"pkg":{"name":"p","secfixes":{" ":["CVE-2099-0001"]}}}]}`,
	} {
		if err := importReader(context.Background(), "bad.json", strings.NewReader(bad), &recorder{}); err == nil || !strings.Contains(err.Error(), "bad.json") {
			t.Errorf("%q: err = %v, want an error naming the file", bad, err)
		}
	}
	if _, err := New(WithBranches("3.21")); err == nil {
		t.Error("WithBranches(3.21) accepted")
	}
	s, _ := New(WithBranches("v3.21"))
	if u := s.DefaultURLs(); len(u) != 2 || u[0] != "https://secdb.alpinelinux.org/v3.21/main.json" {
		t.Errorf("DefaultURLs = %v", u)
	}
}

func FuzzImport(f *testing.F) {
	f.Add(`{"distroversion":"v3.21","packages":[{"pkg":{"name":"p","secfixes":{"1-r0":["CVE-2099-0001 x"],"0":["CVE-2099-2"]}}}]}`)
	f.Add(`{"distroversion":"edge","packages":[{"pkg":{"name":"p","secfixes":{"1-r0":["CVE_2099-00001-1"],"2-r0":["CVE-2099-00001"]}}}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		_ = importReader(context.Background(), "fuzz.json", strings.NewReader(doc), &recorder{})
	})
}
