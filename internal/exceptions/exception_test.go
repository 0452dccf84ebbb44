package exceptions_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/exceptions/exceptionstest"
	"github.com/drydock-project/drydock/internal/gate"
)

var now = time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*exceptions.Exception)
		want string // "" = valid; else every field that must be named
	}{
		{"valid digest", func(e *exceptions.Exception) {}, ""},
		{"valid repository", func(e *exceptions.Exception) {
			e.Scope, e.Digest, e.Repository = exceptions.ScopeRepository, "", "quarantine/team/nginx"
		}, ""},
		{"valid global package", func(e *exceptions.Exception) {
			e.Scope, e.Digest, e.CVE, e.Package = exceptions.ScopeGlobal, "", "", "libc6"
		}, ""},
		{"no scope", func(e *exceptions.Exception) { e.Scope = "" }, "scope:"},
		{"bad scope", func(e *exceptions.Exception) { e.Scope = "cluster" }, "scope:"},
		{"bad digest", func(e *exceptions.Exception) { e.Digest = "sha256:abc" }, "digest:"},
		{"live repository", func(e *exceptions.Exception) {
			e.Scope, e.Digest, e.Repository = exceptions.ScopeRepository, "", "live/nginx"
		}, "repository:"},
		{"bad repository", func(e *exceptions.Exception) {
			e.Scope, e.Digest, e.Repository = exceptions.ScopeRepository, "", "quarantine/../x"
		}, "repository:"},
		{"digest scope with a repository", func(e *exceptions.Exception) { e.Repository = "quarantine/x" }, "repository:"},
		{"global with a digest", func(e *exceptions.Exception) { e.Scope = exceptions.ScopeGlobal }, "scope:"},
		{"neither cve nor package", func(e *exceptions.Exception) { e.CVE = "" }, "cve:"},
		{"bad cve", func(e *exceptions.Exception) { e.CVE = "<script>" }, "cve:"},
		{"bad package", func(e *exceptions.Exception) { e.Package = "a b" }, "package:"},
		{"no justification", func(e *exceptions.Exception) { e.Justification = "" }, "justification:"},
		{"bad justification", func(e *exceptions.Exception) { e.Justification = "trust_me" }, "justification:"},
		{"no reason", func(e *exceptions.Exception) { e.Reason = "  " }, "reason:"},
		{"long reason", func(e *exceptions.Exception) { e.Reason = strings.Repeat("x", exceptions.MaxReason+1) }, "reason:"},
		{"no author", func(e *exceptions.Exception) { e.Author = "" }, "author:"},
		{"no expiry", func(e *exceptions.Exception) { e.Expires = time.Time{} }, "expires:"},
		{"expired", func(e *exceptions.Exception) { e.Expires = now }, "expires:"},
		{"several", func(e *exceptions.Exception) { e.CVE, e.Reason = "bad", "" }, "cve:|reason:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := exceptionstest.Valid("CVE-2024-6387")
			tt.mod(&e)
			err := e.Validate(now)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("valid, want an error")
			}
			for _, f := range strings.Split(tt.want, "|") {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
		})
	}
}

// TestExportRoundTrip: an export read back by the exceptions directory's
// loader covers exactly what the records cover.
func TestExportRoundTrip(t *testing.T) {
	mk := func(id int64, mod func(*exceptions.Exception)) exceptions.Exception {
		e := exceptionstest.Valid("CVE-2024-1")
		e.ID, e.Created = id, now.Add(-time.Hour)
		mod(&e)
		return e
	}
	const digA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	const digC = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	recs := []exceptions.Exception{
		mk(1, func(e *exceptions.Exception) {}),
		mk(2, func(e *exceptions.Exception) {
			e.Scope, e.Digest, e.Repository, e.CVE = exceptions.ScopeRepository, "", "quarantine/nginx", "CVE-2024-2"
		}),
		mk(3, func(e *exceptions.Exception) {
			e.Scope, e.Digest, e.CVE, e.Package = exceptions.ScopeGlobal, "", "", "libc6"
		}),
		mk(4, func(e *exceptions.Exception) { e.CVE, e.Package = "CVE-2024-4", "zlib1g" }),
	}
	doc, err := exceptions.Export(recs, "drydock", now)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := gate.LoadExceptions(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("the export does not load: %v\n%s", err, doc)
	}
	if len(loaded) != len(recs) {
		t.Fatalf("%d statements loaded, want %d", len(loaded), len(recs))
	}
	subjects := []gate.Subject{
		{CVE: "CVE-2024-1", Package: "bash"}, {CVE: "CVE-2024-2", Package: "bash"},
		{CVE: "CVE-2024-9", Package: "libc6"}, {CVE: "CVE-2024-9", Package: "libc-bin", Source: "glibc"},
		{CVE: "CVE-2024-4", Package: "zlib1g"}, {CVE: "CVE-2024-4", Package: "bash"},
	}
	covered := 0
	for i, rec := range recs {
		for _, s := range subjects {
			for _, img := range [][2]string{{digA, "quarantine/nginx"}, {digC, "quarantine/nginx"}, {digA, "quarantine/other"}, {digC, "quarantine/other"}, {digC, "quarantine/team/app"}} {
				for _, at := range []time.Time{now, rec.Expires, now.Add(-2 * time.Hour)} {
					want, wantExp := rec.Gate().Covers(s, img[0], img[1], at)
					got, gotExp := loaded[i].Covers(s, img[0], img[1], at)
					if got != want || gotExp != wantExp {
						t.Errorf("exception %d on %v %v at %s: exported covers=%v expired=%v, record %v %v", rec.ID, s, img, at, got, gotExp, want, wantExp)
					}
					if want {
						covered++
					}
				}
			}
		}
	}
	if covered < 6 {
		t.Fatalf("only %d coverings: the comparison is vacuous", covered)
	}
	again, _ := exceptions.Export(recs, "drydock", now)
	if !bytes.Equal(doc, again) {
		t.Fatal("two exports of the same exceptions differ")
	}
}

func TestGateCovers(t *testing.T) {
	const digA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	e := exceptionstest.Valid("CVE-2024-1")
	e.ID, e.Created = 7, now.Add(-time.Hour)
	g := e.Gate()
	if g.ID != "exception/7" {
		t.Fatalf("gate ID %q", g.ID)
	}
	if ok, _ := g.Covers(gate.Subject{CVE: "CVE-2024-1", Package: "bash"}, digA, "quarantine/x", now); !ok {
		t.Fatal("does not cover its own CVE in its digest")
	}
	if ok, _ := g.Covers(gate.Subject{CVE: "CVE-2024-2", Package: "bash"}, digA, "quarantine/x", now); ok {
		t.Fatal("covers another CVE")
	}
	e.Scope, e.Digest, e.CVE, e.Package = exceptions.ScopeGlobal, "", "", "glibc"
	g = e.Gate()
	if ok, _ := g.Covers(gate.Subject{CVE: "CVE-2024-9", Package: "libc6", Source: "glibc"}, "sha256:x", "quarantine/y", now); !ok {
		t.Fatal("a global package exception does not cover a finding of its source package")
	}
	if ok, _ := g.Covers(gate.Subject{CVE: "CVE-2024-9", Package: "bash", Source: "bash"}, "sha256:x", "quarantine/y", now); ok {
		t.Fatal("a package exception covers another package")
	}
}
