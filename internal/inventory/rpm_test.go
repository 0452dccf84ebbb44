package inventory

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"
)

// rpmSpec is a tiny package rpmbuild makes at test time: an epoch, a
// release with a dist tag, a sub-package built from the same source.
const rpmSpec = `Name: drydock-hello
Version: 1.2.3
Release: 4.el9
Epoch: 2
Summary: drydock test package
License: MIT
Vendor: drydock tests
BuildArch: noarch
%description
Test package.
%package libs
Summary: drydock test sub-package
%description libs
Test sub-package.
%install
mkdir -p %{buildroot}/usr/share/drydock-hello %{buildroot}/usr/lib/drydock
echo hi > %{buildroot}/usr/share/drydock-hello/README
echo lib > %{buildroot}/usr/lib/drydock/libhello.txt
%files
/usr/share/drydock-hello/README
%files libs
/usr/lib/drydock/libhello.txt
`

// buildRPMDB builds the test packages and records them with `rpm --justdb`
// in a fresh sqlite rpmdb, returning the database directory's files.
// Debian's rpm has only the sqlite backend: ndb and Berkeley DB come from
// go-rpmdb's test data (see rpmdbTestdata).
func buildRPMDB(t *testing.T) map[string][]byte {
	t.Helper()
	rpm := testimage.RequireTool(t, "rpm", "rpm")
	rpmbuild := testimage.RequireTool(t, "rpmbuild", "rpm")
	dir := t.TempDir()
	spec := filepath.Join(dir, "hello.spec")
	if err := os.WriteFile(spec, []byte(rpmSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), name, args...)
		cmd.Env = append(os.Environ(), "HOME="+dir) // no ~/.rpmmacros of the host
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run(rpmbuild, "--define", "_topdir "+filepath.Join(dir, "top"), "-bb", spec)
	rpms, _ := filepath.Glob(filepath.Join(dir, "top/RPMS/noarch/*.rpm"))
	if len(rpms) != 2 {
		t.Fatalf("rpmbuild made %q, want two packages", rpms)
	}
	root := filepath.Join(dir, "root")
	db := []string{"--root", root, "--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite"}
	run(rpm, append(db, "--initdb")...)
	run(rpm, append(append(db, "-i", "--justdb", "--nodeps", "--noscripts", "--ignorearch", "--ignoreos"), rpms...)...)
	files := map[string][]byte{}
	for _, name := range []string{"rpmdb.sqlite", "rpmdb.sqlite-wal"} {
		data, err := os.ReadFile(filepath.Join(root, "var/lib/rpm", name))
		if err == nil {
			files[name] = data
		}
	}
	if files["rpmdb.sqlite"] == nil {
		t.Fatal("rpm made no rpmdb.sqlite")
	}
	return files
}

func TestRPMSQLite(t *testing.T) {
	files := buildRPMDB(t)
	for _, dir := range []string{"var/lib/rpm", "usr/lib/sysimage/rpm"} {
		t.Run(dir, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range files {
				fsys[dir+"/"+name] = &fstest.MapFile{Data: data}
			}
			a, err := NewRPM(WithFiles())
			if err != nil {
				t.Fatal(err)
			}
			res, err := Inventory(context.Background(), fsys, a)
			if err != nil {
				t.Fatal(err)
			}
			db := dir + "/rpmdb.sqlite"
			want := []Package{
				{Name: "drydock-hello", Version: "2:1.2.3-4.el9", Arch: "noarch", SourceName: "drydock-hello", SourceVersion: "2:1.2.3-4.el9",
					Ecosystem: "rpm", Status: "installed", Maintainer: "drydock tests", Files: []string{"/usr/share/drydock-hello/README"}, DBPath: db},
				{Name: "drydock-hello-libs", Version: "2:1.2.3-4.el9", Arch: "noarch", SourceName: "drydock-hello", SourceVersion: "2:1.2.3-4.el9",
					Ecosystem: "rpm", Status: "installed", Maintainer: "drydock tests", Files: []string{"/usr/lib/drydock/libhello.txt"}, DBPath: db},
			}
			if len(res.Packages) != len(want) {
				t.Fatalf("packages = %+v, want %+v", res.Packages, want)
			}
			for i, got := range res.Packages {
				if got.InstalledSize <= 0 {
					t.Errorf("%s: installed size %d", got.Name, got.InstalledSize)
				}
				got.InstalledSize = 0
				if !equalPackage(got, want[i]) {
					t.Errorf("package %d:\n got %+v\nwant %+v", i, got, want[i])
				}
			}
		})
	}
	t.Run("both paths, one database", func(t *testing.T) {
		// var/lib/rpm a copy of (in images: a symlink to) the sysimage one.
		fsys := fstest.MapFS{
			"var/lib/rpm/rpmdb.sqlite":          {Data: files["rpmdb.sqlite"]},
			"usr/lib/sysimage/rpm/rpmdb.sqlite": {Data: files["rpmdb.sqlite"]},
			// A stale Berkeley DB left next to the sqlite one is ignored.
			"var/lib/rpm/Packages": {Data: []byte("not a database")},
		}
		res, err := Inventory(context.Background(), fsys, &RPM{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Packages) != 2 || res.Packages[0].DBPath != "usr/lib/sysimage/rpm/rpmdb.sqlite" {
			t.Errorf("packages = %+v, want the two packages once", res.Packages)
		}
	})
	t.Run("too big", func(t *testing.T) {
		fsys := fstest.MapFS{"var/lib/rpm/rpmdb.sqlite": {Data: files["rpmdb.sqlite"]}}
		a, _ := NewRPM(WithMaxFileSize(1024))
		_, err := a.Analyze(context.Background(), fsys)
		if err == nil || !strings.Contains(err.Error(), "var/lib/rpm/rpmdb.sqlite") {
			t.Fatalf("error = %v, want one naming the file", err)
		}
	})
}

func equalPackage(a, b Package) bool {
	return a.Name == b.Name && a.Version == b.Version && a.Arch == b.Arch && a.SourceName == b.SourceName &&
		a.SourceVersion == b.SourceVersion && a.Ecosystem == b.Ecosystem && a.Status == b.Status &&
		a.Maintainer == b.Maintainer && a.InstalledSize == b.InstalledSize && a.DBPath == b.DBPath &&
		strings.Join(a.Files, "\n") == strings.Join(b.Files, "\n")
}

// rpmdbTestdata returns go-rpmdb's test data directory in the module cache:
// real ndb and Berkeley DB databases from SLE 15 and RHEL 8 images, which
// Debian's rpm cannot write.
func rpmdbTestdata(t *testing.T) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-m", "-f", "{{.Dir}}", "github.com/knqyf263/go-rpmdb").Output()
	dir := filepath.Join(strings.TrimSpace(string(out)), "pkg", "testdata")
	if err != nil || strings.TrimSpace(string(out)) == "" {
		testenv.Missing(t, "go-rpmdb's module directory not found (go list: %v)", err)
	}
	if _, err := os.Stat(dir); err != nil {
		testenv.Missing(t, "go-rpmdb test data: %v", err)
	}
	return dir
}

func TestRPMBackends(t *testing.T) {
	testdata := rpmdbTestdata(t)
	tests := []struct {
		name, file, dbPath string
		check              Package // one package that must be there
		count              int     // packages, as go-rpmdb's rpmdb_testcase_test.go lists them, less gpg-pubkey
	}{
		{
			name: "Berkeley DB (RHEL 8)", file: "libuuid/Packages", dbPath: "var/lib/rpm/Packages", count: 1,
			check: Package{Name: "libuuid", Version: "2.32.1-42.el8_8", Arch: "x86_64", SourceName: "util-linux", SourceVersion: "2.32.1-42.el8_8",
				Ecosystem: "rpm", Status: "installed", Maintainer: "Red Hat, Inc.", InstalledSize: 35104, DBPath: "var/lib/rpm/Packages"},
		},
		{
			name: "ndb (SLE 15 BCI)", file: "sle15-bci/Packages.db", dbPath: "usr/lib/sysimage/rpm/Packages.db", count: 35,
			check: Package{Name: "bash", Version: "4.4-19.6.1", Arch: "x86_64", SourceName: "bash", SourceVersion: "4.4-19.6.1",
				Ecosystem: "rpm", Status: "installed", Maintainer: "SUSE LLC <https://www.suse.com/>", InstalledSize: 1114706, DBPath: "usr/lib/sysimage/rpm/Packages.db"},
		},
		{
			name: "sqlite (Fedora 35)", file: "fedora35/rpmdb.sqlite", dbPath: "var/lib/rpm/rpmdb.sqlite", count: 137,
			check: Package{Name: "alternatives", Version: "1.19-1.fc35", Arch: "x86_64", SourceName: "chkconfig", SourceVersion: "1.19-1.fc35",
				Ecosystem: "rpm", Status: "installed", Maintainer: "Fedora Project", InstalledSize: 63264, DBPath: "var/lib/rpm/rpmdb.sqlite"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(testdata, tc.file))
			if err != nil {
				testenv.Missing(t, "go-rpmdb test data: %v", err)
			}
			fsys := fstest.MapFS{tc.dbPath: {Data: data}}
			res, err := Inventory(context.Background(), fsys, &RPM{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) != tc.count {
				t.Fatalf("%d packages, want %d", len(res.Packages), tc.count)
			}
			found := false
			for _, p := range res.Packages {
				if p.Name == "" || p.Version == "" || p.SourceName == "" || p.SourceVersion == "" || p.DBPath != tc.dbPath || p.Name == "gpg-pubkey" {
					t.Errorf("bad package %+v", p)
				}
				if p.Name == tc.check.Name {
					found = true
					if !equalPackage(p, tc.check) {
						t.Errorf("package:\n got %+v\nwant %+v", p, tc.check)
					}
				}
			}
			if !found {
				t.Errorf("%s not found", tc.check.Name)
			}
		})
	}
}

func TestRPMCorrupt(t *testing.T) {
	tests := map[string][]byte{
		"empty":          {},
		"text":           []byte("not a database"),
		"sqlite header":  []byte("SQLite format 3\x00garbage"),
		"truncated page": make([]byte, 4096),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			for _, file := range rpmDBFiles {
				fsys := fstest.MapFS{"var/lib/rpm/" + file: {Data: data}}
				_, err := (&RPM{}).Analyze(context.Background(), fsys)
				if err == nil || !strings.Contains(err.Error(), "var/lib/rpm/"+file) {
					t.Errorf("%s: error = %v, want one naming the file", file, err)
				}
			}
		})
	}
}

func TestSplitSourceRPM(t *testing.T) {
	tests := []struct {
		file, name, ver, rel string
		bad                  bool
	}{
		{file: "util-linux-2.32.1-42.el8_8.src.rpm", name: "util-linux", ver: "2.32.1", rel: "42.el8_8"},
		{file: "openssl-3.0.7-27.el9.src.rpm", name: "openssl", ver: "3.0.7", rel: "27.el9"},
		{file: "python3.11-3.11.5-1.el9_3.nosrc.rpm", name: "python3.11", ver: "3.11.5", rel: "1.el9_3"},
		{file: "a-b-c-1-2.src.rpm", name: "a-b-c", ver: "1", rel: "2"},
		{file: "noversion.src.rpm", bad: true},
		{file: "a-1.src.rpm", bad: true},
		{file: "-1-2.src.rpm", bad: true},
		{file: "a-1-2.src", bad: true},
		{file: "a-1-2rpm", bad: true},
		{file: "a-1 x-2.src.rpm", bad: true},
	}
	for _, tc := range tests {
		name, ver, rel, err := splitSourceRPM(tc.file)
		if tc.bad {
			if err == nil {
				t.Errorf("splitSourceRPM(%q) = %q %q %q, want an error", tc.file, name, ver, rel)
			}
			continue
		}
		if err != nil || name != tc.name || ver != tc.ver || rel != tc.rel {
			t.Errorf("splitSourceRPM(%q) = %q %q %q %v, want %q %q %q", tc.file, name, ver, rel, err, tc.name, tc.ver, tc.rel)
		}
	}
}

func TestRPMAbsent(t *testing.T) {
	pkgs, err := (&RPM{}).Analyze(context.Background(), fstest.MapFS{"var/lib/rpm/Name": {}})
	if err != nil || pkgs != nil {
		t.Fatalf("Analyze = %v, %v; want nothing", pkgs, err)
	}
}
