package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/drydock-project/drydock/internal/refusal"
)

// stanzas returns n installed dpkg packages built from the source openssl.
func stanzas(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Package: fake%d\nStatus: install ok installed\nVersion: 1.0-%d\nArchitecture: amd64\nSource: openssl\n\n", i, i)
	}
	return b.String()
}

func apkStanzas(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "P:fake%d\nV:1.0-r%d\nA:x86_64\no:openssl\n\n", i, i)
	}
	return b.String()
}

func TestLimits(t *testing.T) {
	statusD := fstest.MapFS{}
	for i := range 30 {
		statusD[fmt.Sprintf("var/lib/dpkg/status.d/p%d", i)] = &fstest.MapFile{Data: []byte(stanzas(1))}
	}
	tests := []struct {
		name     string
		analyzer func(...Option) (Analyzer, error)
		fsys     fstest.MapFS
		opts     []Option
		wantErr  string // "" for success
		wantPkgs int
	}{
		{name: "dpkg within the package limit", analyzer: dpkgAnalyzer,
			fsys: fstest.MapFS{dpkgStatus: {Data: []byte(stanzas(10))}}, opts: []Option{WithMaxPackages(10)}, wantPkgs: 10},
		{name: "dpkg status over the package limit", analyzer: dpkgAnalyzer,
			fsys: fstest.MapFS{dpkgStatus: {Data: []byte(stanzas(11))}}, opts: []Option{WithMaxPackages(10)},
			wantErr: "over the package limit: more than 10 installed packages (reading var/lib/dpkg/status), limit 10"},
		{name: "dpkg status and status.d together over the package limit", analyzer: dpkgAnalyzer,
			fsys: merge(statusD, fstest.MapFS{dpkgStatus: {Data: []byte(stanzas(5))}}), opts: []Option{WithMaxPackages(20)},
			wantErr: "over the package limit: more than 20 installed packages (reading var/lib/dpkg/status.d/"},
		{name: "dpkg status over the database bytes", analyzer: dpkgAnalyzer,
			fsys: fstest.MapFS{dpkgStatus: {Data: []byte(stanzas(100))}}, opts: []Option{WithMaxDatabaseBytes(1000)},
			wantErr: "over the package database limit: var/lib/dpkg/status makes"},
		{name: "dpkg status.d over the database bytes in all, each file small", analyzer: dpkgAnalyzer,
			fsys: statusD, opts: []Option{WithMaxDatabaseBytes(1000), WithMaxFileSize(500)},
			wantErr: "over the package database limit: var/lib/dpkg/status.d makes"},
		{name: "dpkg one file over the file size", analyzer: dpkgAnalyzer,
			fsys: fstest.MapFS{dpkgStatus: {Data: []byte(stanzas(100))}}, opts: []Option{WithMaxFileSize(1000)},
			wantErr: "over the package database limit: var/lib/dpkg/status is"},
		{name: "apk over the package limit", analyzer: apkAnalyzer,
			fsys: fstest.MapFS{apkInstalled: {Data: []byte(apkStanzas(11))}}, opts: []Option{WithMaxPackages(10)},
			wantErr: "over the package limit: more than 10 installed packages (reading lib/apk/db/installed), limit 10"},
		{name: "apk over the last stanza without a blank line", analyzer: apkAnalyzer,
			fsys: fstest.MapFS{apkInstalled: {Data: []byte(strings.TrimSpace(apkStanzas(11)))}}, opts: []Option{WithMaxPackages(10)},
			wantErr: "over the package limit"},
		{name: "apk within", analyzer: apkAnalyzer,
			fsys: fstest.MapFS{apkInstalled: {Data: []byte(apkStanzas(10))}}, opts: []Option{WithMaxPackages(10)}, wantPkgs: 10},
		{name: "apk over the database bytes", analyzer: apkAnalyzer,
			fsys: fstest.MapFS{apkInstalled: {Data: []byte(apkStanzas(100))}}, opts: []Option{WithMaxDatabaseBytes(100)},
			wantErr: "over the package database limit: lib/apk/db/installed makes"},
		{name: "rpm over the database bytes", analyzer: rpmAnalyzer,
			fsys: fstest.MapFS{"var/lib/rpm/rpmdb.sqlite": {Data: make([]byte, 2000)}}, opts: []Option{WithMaxDatabaseBytes(1000)},
			wantErr: "over the package database limit: var/lib/rpm/rpmdb.sqlite makes 2000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tt.analyzer(tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			pkgs, err := a.Analyze(t.Context(), tt.fsys)
			if tt.wantErr == "" {
				if err != nil || len(pkgs) != tt.wantPkgs {
					t.Fatalf("Analyze = %d packages, %v; want %d", len(pkgs), err, tt.wantPkgs)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Analyze = %d packages, %v; want an error containing %q", len(pkgs), err, tt.wantErr)
			}
			if k, _ := refusal.KindOf(err); k != refusal.OverLimit || !refusal.IsPermanent(err) {
				t.Errorf("error %v: kind %q; want a permanent over-limit refusal", err, k)
			}
		})
	}
	for _, opt := range []Option{WithMaxPackages(0), WithMaxDatabaseBytes(-1)} {
		if _, err := NewDpkg(opt); err == nil {
			t.Error("invalid limit accepted")
		}
	}
}

func dpkgAnalyzer(o ...Option) (Analyzer, error) { return NewDpkg(o...) }
func apkAnalyzer(o ...Option) (Analyzer, error)  { return NewAPK(o...) }
func rpmAnalyzer(o ...Option) (Analyzer, error)  { return NewRPM(o...) }

func merge(a, b fstest.MapFS) fstest.MapFS {
	out := fstest.MapFS{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// stanzaSource is an endless dpkg status; it counts what was read.
type stanzaSource struct {
	n, read int
	buf     []byte
}

func (s *stanzaSource) Read(p []byte) (int, error) {
	if len(s.buf) == 0 {
		s.buf = fmt.Appendf(nil, "Package: fake%d\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nSource: openssl\n\n", s.n)
		s.n++
	}
	k := copy(p, s.buf)
	s.buf = s.buf[k:]
	s.read += k
	return k, nil
}

// TestPackageLimitStopsEarly: a database of endless packages is refused
// after reading just past the limit, not after reading it all.
func TestPackageLimitStopsEarly(t *testing.T) {
	src := &stanzaSource{}
	b := options{maxPackages: 1000}.budget()
	var partial PartialError
	_, err := parseDpkgStatus(context.Background(), io.LimitReader(src, 1<<40), "var/lib/dpkg/status", &partial, b)
	var r *refusal.Error
	if !errors.As(err, &r) || r.Kind != refusal.OverLimit {
		t.Fatalf("parse = %v; want an over-limit refusal", err)
	}
	if src.n > 1100 {
		t.Errorf("read %d stanzas (%d bytes) for a limit of 1000", src.n, src.read)
	}
	// The apk source fails past 5000 stanzas: reaching it is reading on.
	_, err = parseAPKInstalled(context.Background(), &apkSource{}, apkInstalled, false, &partial, options{maxPackages: 1000}.budget())
	if !errors.As(err, &r) || r.Kind != refusal.OverLimit {
		t.Fatalf("apk parse = %v; want an over-limit refusal", err)
	}
}

type apkSource struct {
	n   int
	buf []byte
}

func (s *apkSource) Read(p []byte) (int, error) {
	if s.n > 5000 {
		return 0, errors.New("read past the limit")
	}
	if len(s.buf) == 0 {
		s.buf = fmt.Appendf(nil, "P:fake%d\nV:1.0-r0\nA:x86_64\no:openssl\n\n", s.n)
		s.n++
	}
	k := copy(p, s.buf)
	s.buf = s.buf[k:]
	return k, nil
}
