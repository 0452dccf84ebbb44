package inventory

import (
	"context"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// fakeAnalyzer returns fixed packages and error.
type fakeAnalyzer struct {
	typ  string
	pkgs []Package
	err  error
}

func (f *fakeAnalyzer) Type() string         { return f.typ }
func (f *fakeAnalyzer) Version() int         { return 7 }
func (f *fakeAnalyzer) Required(string) bool { return false }
func (f *fakeAnalyzer) Analyze(context.Context, fs.FS) ([]Package, error) {
	return append([]Package(nil), f.pkgs...), f.err
}

func TestInventoryMerge(t *testing.T) {
	p := func(name, ver, arch, eco, db string) Package {
		return Package{Name: name, Version: ver, Arch: arch, Ecosystem: eco, DBPath: db}
	}
	skipped := func(n int) *PartialError {
		e := &PartialError{}
		for range n {
			e.add(&EntryError{Path: "db", Err: errors.New("bad")})
		}
		return e
	}
	tests := []struct {
		name      string
		analyzers []Analyzer
		want      []Package
		skipped   int
		kept      int
		wantErr   string
	}{
		{
			name: "sorted by name, version, arch, then db path; exact duplicates once",
			analyzers: []Analyzer{
				&fakeAnalyzer{typ: "z", pkgs: []Package{p("b", "1", "amd64", "deb", "s2"), p("a", "2", "amd64", "deb", "s"), p("a", "10", "amd64", "deb", "s")}},
				&fakeAnalyzer{typ: "y", pkgs: []Package{p("b", "1", "amd64", "deb", "s1"), p("a", "2", "i386", "deb", "s"), p("b", "1", "amd64", "rpm", "r")}},
			},
			want: []Package{
				p("a", "10", "amd64", "deb", "s"), p("a", "2", "amd64", "deb", "s"), p("a", "2", "i386", "deb", "s"),
				p("b", "1", "amd64", "deb", "s1"), p("b", "1", "amd64", "rpm", "r"),
			},
		},
		{
			name: "partial errors are merged and capped",
			analyzers: []Analyzer{
				&fakeAnalyzer{typ: "a", pkgs: []Package{p("x", "1", "", "apk", "db")}, err: skipped(MaxSkipped + 5)},
				&fakeAnalyzer{typ: "b", err: skipped(3)},
			},
			want:    []Package{p("x", "1", "", "apk", "db")},
			skipped: MaxSkipped + 8,
			kept:    MaxSkipped,
		},
		{
			name:      "other errors fail, naming the analyzer",
			analyzers: []Analyzer{&fakeAnalyzer{typ: "boom", err: errors.New("disk on fire")}},
			wantErr:   "boom analyzer: disk on fire",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Inventory(context.Background(), fstest.MapFS{}, tc.analyzers...)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Packages, tc.want) {
				t.Errorf("packages:\n got %v\nwant %v", res.Packages, tc.want)
			}
			if res.SkippedTotal != tc.skipped || len(res.Skipped) != tc.kept {
				t.Errorf("skipped %d (%d kept), want %d (%d)", res.SkippedTotal, len(res.Skipped), tc.skipped, tc.kept)
			}
			if len(res.Analyzers) != len(tc.analyzers) {
				t.Errorf("analyzers = %v", res.Analyzers)
			}
			for i := 1; i < len(res.Analyzers); i++ {
				if res.Analyzers[i-1].Type > res.Analyzers[i].Type {
					t.Errorf("analyzers not sorted: %v", res.Analyzers)
				}
			}
		})
	}
}

func TestInventoryDefaults(t *testing.T) {
	fsys := fstest.MapFS{
		"var/lib/dpkg/status":  {Data: []byte("Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n")},
		"lib/apk/db/installed": {Data: []byte("P:b\nV:1-r0\nA:x86_64\n")},
	}
	res, err := Inventory(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	want := []AnalyzerInfo{{"apk", 1}, {"dpkg", 1}, {"rpm", 1}}
	if !reflect.DeepEqual(res.Analyzers, want) {
		t.Errorf("analyzers = %v, want %v", res.Analyzers, want)
	}
	if len(res.Packages) != 2 || res.Packages[0].Ecosystem != "deb" || res.Packages[1].Ecosystem != "apk" {
		t.Errorf("packages = %+v", res.Packages)
	}

	// Fresh values on every call.
	a, _ := Analyzers()
	b, _ := Analyzers()
	for i := range a {
		if a[i] == b[i] {
			t.Errorf("Analyzers()[%d] shared between calls", i)
		}
	}
}

func TestInventoryCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Inventory(ctx, fstest.MapFS{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

func TestOptions(t *testing.T) {
	for _, n := range []int64{0, -1} {
		if _, err := NewDpkg(WithMaxFileSize(n)); err == nil || !strings.Contains(err.Error(), "dpkg analyzer") {
			t.Errorf("NewDpkg(WithMaxFileSize(%d)) error = %v", n, err)
		}
		if _, err := NewAPK(WithMaxFileSize(n)); err == nil {
			t.Errorf("NewAPK(WithMaxFileSize(%d)) succeeded", n)
		}
		if _, err := NewRPM(WithMaxFileSize(n)); err == nil {
			t.Errorf("NewRPM(WithMaxFileSize(%d)) succeeded", n)
		}
	}
}

func TestErrorStrings(t *testing.T) {
	e := &EntryError{Path: "var/lib/dpkg/status", Line: 12, Name: "libc6", Err: errors.New("invalid Version")}
	if got, want := e.Error(), `var/lib/dpkg/status:12: package "libc6": invalid Version`; got != want {
		t.Errorf("EntryError = %q, want %q", got, want)
	}
	p := &PartialError{}
	if p.errOrNil() != nil {
		t.Error("empty PartialError is a non-nil error")
	}
	p.add(e)
	if got := p.Error(); !strings.Contains(got, "skipped 1 malformed") || !strings.Contains(got, "status:12") {
		t.Errorf("PartialError = %q", got)
	}
}
