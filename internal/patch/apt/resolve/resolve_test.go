package resolve

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/patch/apt/apttest"
	"github.com/drydock-project/drydock/internal/patch/apt/archive"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/version"
)

func TestParseRelations(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: parsed relations re-formatted, elements joined by ", "
	}{
		{"", ""},
		{"libc6 (>= 2.34), libssl3 (>= 3.0.0)", "libc6 (>= 2.34), libssl3 (>= 3.0.0)"},
		{"default-mta | mail-transport-agent", "default-mta | mail-transport-agent"},
		{"perl:any, python3:native (<< 3.12)", "perl:any, python3:native (<< 3.12)"},
		{"a (< 1), b (> 2), c(=1:2.0-1)", "a (<= 1), b (>= 2), c (= 1:2.0-1)"},
		{"a [amd64], b [!amd64], c [i386 arm64] | d, e [linux-any], f [any-amd64]", "a, d, e, f"},
		{"a <!nocheck> <stage1 cross>, b (>= 1) [amd64] <!nodoc>", "a, b (>= 1)"},
		{"a,\n b,\n c,", "a, b, c"},
		{"g++ (>= 4), libstdc++6", "g++ (>= 4), libstdc++6"},
	} {
		got, err := ParseRelations(tc.in, "amd64")
		if err != nil {
			t.Errorf("ParseRelations(%q): %v", tc.in, err)
			continue
		}
		if s := joinRels(got); s != tc.want {
			t.Errorf("ParseRelations(%q) = %q, want %q", tc.in, s, tc.want)
		}
	}
	for _, bad := range []string{
		"a (>= )", "a (1.0)", "a (>= 1", "a [amd64", "a <nocheck", "a b", "(>= 1)", "a | | b",
		"a:", "a:AMD64", "a [amd64 !i386]", "a []", "a (>= 1 2)", "a (>= 1.0$)", "a (>= 1) junk",
	} {
		if got, err := ParseRelations(bad, "amd64"); err == nil {
			t.Errorf("ParseRelations(%q) = %q, want an error", bad, joinRels(got))
		}
	}
}

func joinRels(rels []Alternatives) string {
	parts := make([]string, len(rels))
	for i, a := range rels {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}

// FuzzParseRelations checks that the parser never panics and that what it
// accepts formats to text it parses back to the same relations.
func FuzzParseRelations(f *testing.F) {
	for _, s := range []string{
		"libc6 (>= 2.34), libssl3 (>= 3.0.0)", "a | b:any (<< 1:2~3) [amd64] <!nocheck>",
		"a [!i386], b (> 1)", ",,", "a (= 1)|b", "x [linux-any any-arm64]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rels, err := ParseRelations(s, "amd64")
		if err != nil {
			return
		}
		text := joinRels(rels)
		again, err := ParseRelations(text, "amd64")
		if err != nil {
			t.Fatalf("%q parsed, its formatting %q does not: %v", s, text, err)
		}
		if joinRels(again) != text {
			t.Fatalf("%q -> %q -> %q", s, text, joinRels(again))
		}
		for _, alts := range rels {
			for _, r := range alts {
				if r.Op != "" && !(version.Deb{}).Valid(r.Version) {
					t.Fatalf("%q: invalid version accepted in %v", s, r)
				}
			}
		}
	})
}

// indexOf parses hand-written stanzas through ParsePackages, adding the
// Architecture (amd64), Filename, Size and SHA256 a stanza leaves out.
func indexOf(t *testing.T, text string) []archive.IndexPackage {
	t.Helper()
	var b strings.Builder
	for i, st := range strings.Split(strings.TrimSpace(text), "\n\n") {
		st = strings.TrimSpace(st)
		b.WriteString(st + "\n")
		if !strings.Contains(st, "Architecture:") {
			b.WriteString("Architecture: amd64\n")
		}
		fmt.Fprintf(&b, "Filename: pool/main/x/x%d.deb\nSize: 1\nSHA256: %064x\n\n", i, i)
	}
	idx, err := archive.ParsePackages(strings.NewReader(b.String()), "test")
	if err != nil {
		t.Fatal(err)
	}
	for i := range idx {
		idx[i].Suite = "bookworm"
		if strings.Contains(idx[i].Version, "+sec") {
			idx[i].Suite = "bookworm-security"
		}
	}
	return idx
}

// installedOf makes installed amd64 packages from "name=version" words.
func installedOf(words string) []inventory.Package {
	var out []inventory.Package
	for _, w := range strings.Fields(words) {
		n, v, _ := strings.Cut(w, "=")
		out = append(out, inventory.Package{Name: n, Version: v, Arch: "amd64", Ecosystem: version.EcosystemDeb})
	}
	return out
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name      string
		index     string
		installed string
		want      []string
		steps     []string // "pkg from->to reason"
		err       error    // sentinel the error must wrap
		errText   []string // substrings of the error
	}{
		{
			name:      "simple upgrade",
			index:     "Package: a\nVersion: 1\n\nPackage: a\nVersion: 2+sec\n\nPackage: a\nVersion: 1.5",
			installed: "a=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2+sec requested bookworm-security"},
		},
		{
			name:      "up to date is no step",
			index:     "Package: a\nVersion: 1",
			installed: "a=1",
			want:      []string{"a"},
		},
		{
			name: "needs a newer dependency",
			index: `Package: a
Version: 1
Depends: b (>= 1)

Package: a
Version: 2
Depends: b (>= 2), c

Package: b
Version: 1

Package: b
Version: 2

Package: b
Version: 3

Package: c
Version: 1`,
			installed: "a=1 b=1 c=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested", "b 1->3 dependency of a"},
		},
		{
			name:      "new dependency",
			index:     "Package: a\nVersion: 2\nDepends: c (>= 1), d\n\nPackage: c\nVersion: 1\n\nPackage: c\nVersion: 1.1\nDepends: d\n\nPackage: d\nVersion: 4\nArchitecture: all",
			installed: "a=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested", "c ->1.1 dependency of a", "d ->4 dependency of a"},
		},
		{
			name:      "alternative met by the installed state",
			index:     "Package: a\nVersion: 2\nDepends: x | e\n\nPackage: x\nVersion: 1\n\nPackage: e\nVersion: 1",
			installed: "a=1 e=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested"},
		},
		{
			name:      "alternative: upgrade an installed one before adding a new one",
			index:     "Package: a\nVersion: 2\nDepends: x | b (>= 2)\n\nPackage: x\nVersion: 1\n\nPackage: b\nVersion: 2",
			installed: "a=1 b=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested", "b 1->2 dependency of a"},
		},
		{
			name:      "alternative: first available new one",
			index:     "Package: a\nVersion: 2\nDepends: gone | y (>= 3) | x | z\n\nPackage: y\nVersion: 2\n\nPackage: x\nVersion: 1\n\nPackage: z\nVersion: 1",
			installed: "a=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested", "x ->1 dependency of a"},
		},
		{
			name: "virtual package, unversioned",
			index: `Package: a
Version: 2
Depends: mail-transport-agent

Package: postfix
Version: 1
Provides: mail-transport-agent

Package: exim4
Version: 1
Provides: mail-transport-agent`,
			installed: "a=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested", "exim4 ->1 dependency of a"},
		},
		{
			name:      "virtual package provided by an installed package",
			index:     "Package: a\nVersion: 2\nDepends: mail-transport-agent\n\nPackage: postfix\nVersion: 1\nProvides: mail-transport-agent\n\nPackage: exim4\nVersion: 1\nProvides: mail-transport-agent",
			installed: "a=1 postfix=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested"},
		},
		{
			name: "virtual package, versioned provides",
			index: `Package: a
Version: 2
Depends: libfoo-abi (>= 2)

Package: libfoo
Version: 1
Provides: libfoo-abi (= 1)

Package: libfoo
Version: 2
Provides: libfoo-abi (= 2)

Package: libbar
Version: 9
Provides: libfoo-abi`,
			installed: "a=1 libfoo=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested", "libfoo 1->2 dependency of a"},
		},
		{
			name:      "unversioned provides do not meet a versioned relation",
			index:     "Package: a\nVersion: 2\nDepends: libfoo-abi (>= 2)\n\nPackage: libbar\nVersion: 9\nProvides: libfoo-abi",
			installed: "a=1",
			want:      []string{"a"},
			err:       ErrUnsatisfiable,
			errText:   []string{"wanted a -> needs libfoo-abi (>= 2)", "none available"},
		},
		{
			name:      "pre-depends",
			index:     "Package: a\nVersion: 2\nPre-Depends: dpkg (>= 1.20)\n\nPackage: dpkg\nVersion: 1.19\n\nPackage: dpkg\nVersion: 1.21",
			installed: "a=1 dpkg=1.19",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested", "dpkg 1.19->1.21 dependency of a"},
		},
		{
			name: "any and multi-arch foreign",
			index: `Package: a
Version: 2
Depends: perl:any (>= 5.36), mawk:any, python3:amd64

Package: perl
Version: 5.36
Multi-Arch: allowed

Package: mawk
Version: 1.3
Multi-Arch: foreign

Package: python3
Version: 3.11`,
			installed: "a=1 perl=5.36",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested", "mawk ->1.3 dependency of a", "python3 ->3.11 dependency of a"},
		},
		{
			name:      ":any needs Multi-Arch allowed or foreign",
			index:     "Package: a\nVersion: 2\nDepends: tool:any\n\nPackage: tool\nVersion: 1\nMulti-Arch: same",
			installed: "a=1",
			want:      []string{"a"},
			err:       ErrUnsatisfiable,
			errText:   []string{"needs tool:any"},
		},
		{
			name:      "architecture restrictions",
			index:     "Package: a\nVersion: 2\nDepends: b [amd64], c [!amd64], d [arm64] | e\n\nPackage: b\nVersion: 1\n\nPackage: c\nVersion: 1\n\nPackage: d\nVersion: 1\n\nPackage: e\nVersion: 1\n\nPackage: f\nVersion: 1\nArchitecture: arm64",
			installed: "a=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested", "b ->1 dependency of a", "e ->1 dependency of a"},
		},
		{
			name:      "breaks forces a co-upgrade",
			index:     "Package: a\nVersion: 2\nBreaks: b (<< 2)\n\nPackage: b\nVersion: 1\n\nPackage: b\nVersion: 2\nBreaks: a (<< 1)",
			installed: "a=1 b=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested", "b 1->2 breaks fix for a"},
		},
		{
			name:      "an installed package that breaks the upgrade is upgraded",
			index:     "Package: a\nVersion: 2\n\nPackage: c\nVersion: 1\nBreaks: a (>= 2)\n\nPackage: c\nVersion: 2",
			installed: "a=1 c=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested", "c 1->2 breaks fix for a"},
		},
		{
			name:      "a package that stays and whose dependency changes is upgraded",
			index:     "Package: libfoo\nVersion: 1\n\nPackage: libfoo\nVersion: 2\n\nPackage: libfoo-dev\nVersion: 1\nDepends: libfoo (= 1)\n\nPackage: libfoo-dev\nVersion: 2\nDepends: libfoo (= 2)",
			installed: "libfoo=1 libfoo-dev=1",
			want:      []string{"libfoo"},
			steps:     []string{"libfoo 1->2 requested", "libfoo-dev 1->2 breaks fix for libfoo"},
		},
		{
			name:      "conflicts that cannot be fixed",
			index:     "Package: a\nVersion: 2\nConflicts: b\n\nPackage: b\nVersion: 1",
			installed: "a=1 b=1",
			want:      []string{"a"},
			err:       ErrConflict,
			errText:   []string{"a 2 Conflicts: b", "b 1", "no candidate of b"},
		},
		{
			name:      "breaks between two changed packages",
			index:     "Package: a\nVersion: 2\nDepends: n\n\nPackage: n\nVersion: 1\nBreaks: a (>= 2)",
			installed: "a=1",
			want:      []string{"a"},
			err:       ErrConflict,
			errText:   []string{"n 1 Breaks: a (>= 2)", "wanted a -> needs n"},
		},
		{
			name:      "a package conflicting with what it provides itself",
			index:     "Package: a\nVersion: 2\nProvides: mta\nConflicts: mta",
			installed: "a=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested"},
		},
		{
			name: "unsatisfiable version names the chain",
			index: `Package: a
Version: 2
Depends: b (>= 2)

Package: b
Version: 2
Depends: c (>= 5)

Package: c
Version: 1`,
			installed: "a=1 b=1 c=1",
			want:      []string{"a"},
			err:       ErrUnsatisfiable,
			errText:   []string{"wanted a -> needs b (>= 2) -> needs c (>= 5): Depends of b 2: none available"},
		},
		{
			name:      "cycle terminates",
			index:     "Package: a\nVersion: 2\nDepends: b (>= 2)\n\nPackage: b\nVersion: 2\nPre-Depends: a (>= 2)\n\nPackage: n\nVersion: 1\nDepends: m\n\nPackage: m\nVersion: 1\nDepends: n",
			installed: "a=1 b=1",
			want:      []string{"a", "n"},
			steps:     []string{"a 1->2 requested", "b 1->2 dependency of a", "m ->1 dependency of n", "n ->1 requested"},
		},
		{
			name:      "unknown package",
			index:     "Package: a\nVersion: 2",
			installed: "a=1",
			want:      []string{"nosuch"},
			err:       ErrUnsatisfiable,
			errText:   []string{"wanted nosuch", "not in the index"},
		},
		{
			name:      "a malformed field of a used package",
			index:     "Package: a\nVersion: 2\nDepends: b (>> )",
			installed: "a=1",
			want:      []string{"a"},
			errText:   []string{"package a 2: field Depends", "invalid version"},
		},
		{
			name:      "a package that stays, broken by an upgrade, without a fix",
			index:     "Package: libfoo\nVersion: 2\n\nPackage: libfoo-dev\nVersion: 1\nDepends: libfoo (= 1)",
			installed: "libfoo=1 libfoo-dev=1",
			want:      []string{"libfoo"},
			err:       ErrUnsatisfiable,
			errText:   []string{"wanted libfoo -> keeping libfoo-dev 1", "libfoo-dev 1 Depends: libfoo (= 1)", "no candidate of libfoo-dev"},
		},
		{
			name:      "breaks that the newest version still has",
			index:     "Package: a\nVersion: 2\nBreaks: b (<< 9)\n\nPackage: b\nVersion: 2",
			installed: "a=1 b=1",
			want:      []string{"a"},
			err:       ErrConflict,
			errText:   []string{"a 2 Breaks: b (<< 9), and b 1 is in the result", "no candidate of b"},
		},
		{
			name:      "relations unmet before the upgrade are left alone",
			index:     "Package: a\nVersion: 2\n\nPackage: old\nVersion: 1\nDepends: missing",
			installed: "a=1 old=1",
			want:      []string{"a"},
			steps:     []string{"a 1->2 requested"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Resolve("amd64", installedOf(tc.installed), indexOf(t, tc.index), tc.want)
			if tc.err != nil || tc.errText != nil {
				if err == nil {
					t.Fatalf("no error, plan %v", stepsOf(res))
				}
				var re *ResolveError
				if !errors.As(err, &re) || (tc.err != nil && !errors.Is(err, tc.err)) {
					t.Errorf("error %v (%T), want a ResolveError wrapping %v", err, err, tc.err)
				}
				t.Logf("error: %v", err)
				for _, s := range tc.errText {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := stepsOf(res); !slices.Equal(got, tc.steps) {
				t.Errorf("plan\n  %q\nwant\n  %q", got, tc.steps)
			}
		})
	}
}

// stepsOf formats a plan as "pkg from->to reason [suite unless bookworm]".
func stepsOf(res *Resolution) []string {
	var out []string
	for _, s := range res.Steps {
		line := fmt.Sprintf("%s %s->%s %s", s.Package, s.From, s.To, s.Reason)
		if s.Suite != "bookworm" {
			line += " " + s.Suite
		}
		if s.Candidate.Package != s.Package || s.Candidate.Version != s.To {
			line += " BAD CANDIDATE"
		}
		out = append(out, line)
	}
	return out
}

func TestResolveRelationError(t *testing.T) {
	idx := indexOf(t, "Package: a\nVersion: 2\nDepends: c\n\nPackage: c\nVersion: 1\nPre-Depends: d (>= 1) | e (1)")
	_, err := Resolve("amd64", installedOf("a=1"), idx, []string{"a"})
	var re *RelationError
	if !errors.As(err, &re) || re.Package != "c 1" || re.Field != "Pre-Depends" || re.Value != "d (>= 1) | e (1)" {
		t.Fatalf("error %v, want a RelationError for c's Pre-Depends", err)
	}
	if !strings.Contains(err.Error(), "wanted a -> needs c") {
		t.Errorf("error %q does not name the chain", err)
	}
}

func TestOptions(t *testing.T) {
	if _, err := Resolve("amd64", nil, nil, nil, WithMaxRounds(0)); err == nil {
		t.Error("WithMaxRounds(0) accepted")
	}
	// A chain of 5 upgrades needs more than 2 rounds.
	idx := indexOf(t, "Package: a\nVersion: 2\nDepends: b\n\nPackage: b\nVersion: 1\nDepends: c\n\nPackage: c\nVersion: 1\nDepends: d\n\nPackage: d\nVersion: 1")
	if _, err := Resolve("amd64", installedOf("a=1"), idx, []string{"a"}, WithMaxRounds(2)); !errors.Is(err, ErrUnsatisfiable) {
		t.Errorf("bounded: %v", err)
	}
	res, err := Resolve("amd64", installedOf("a=1"), idx, []string{"a"})
	if err != nil || len(res.Steps) != 4 {
		t.Errorf("unbounded: %v %v", stepsOf(res), err)
	}
}

// TestRealResolveBookwormNginx resolves every candidate of the real
// bookworm-nginx image and checks, independently of the resolver, that the
// final state meets every Depends and Pre-Depends it met before.
func TestRealResolveBookwormNginx(t *testing.T) {
	apttest.RequireMirror(t, testimage.BookwormNginx.Suite)
	ri := apttest.Open(t, testimage.BookwormNginx)
	cache, err := archive.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := archive.Open(t.Context(), ri.FS, ri.OS, ri.Test.Spec.Arch, archive.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, u := range repo.Candidates(ri.Installed) {
		want = append(want, u.Name)
	}
	start := time.Now()
	res, err := ResolveIndex(repo.Arch(), ri.Installed, repo.Index(), want)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d candidates resolved to %d steps in %s", len(want), len(res.Steps), time.Since(start).Round(time.Millisecond))
	for _, s := range res.Steps {
		t.Logf("  %s %s -> %s (%s, %s)", s.Package, s.From, s.To, s.Reason, s.Suite)
	}
	before := finalState(repo, ri.Installed, nil)
	after := finalState(repo, ri.Installed, res.Steps)
	for _, name := range want {
		if after[name] == nil || after[name].Version == before[name].Version {
			t.Errorf("%s not upgraded", name)
		}
	}
	unmetBefore := unmetDepends(t, before, repo.Arch())
	for _, u := range unmetDepends(t, after, repo.Arch()) {
		if !slices.Contains(unmetBefore, u) {
			t.Errorf("after the plan: %s", u)
		}
	}

	// Wanting nginx alone pulls in what its new version needs, and the
	// checker does see a state with nginx upgraded alone as broken.
	res, err = ResolveIndex(repo.Arch(), ri.Installed, repo.Index(), []string{"nginx"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Steps {
		t.Logf("nginx alone: %s %s -> %s (%s)", s.Package, s.From, s.To, s.Reason)
	}
	if len(res.Steps) < 2 {
		t.Errorf("nginx alone: %d steps, want its co-upgrades too", len(res.Steps))
	}
	i := slices.IndexFunc(res.Steps, func(s Step) bool { return s.Package == "nginx" })
	alone := finalState(repo, ri.Installed, res.Steps[i:i+1])
	if len(unmetDepends(t, alone, repo.Arch())) == len(unmetBefore) {
		t.Errorf("the checker finds nothing wrong with upgrading nginx alone")
	}
	after = finalState(repo, ri.Installed, res.Steps)
	for _, u := range unmetDepends(t, after, repo.Arch()) {
		if !slices.Contains(unmetBefore, u) {
			t.Errorf("after the nginx plan: %s", u)
		}
	}
}

// finalState maps each native package to its index stanza after steps.
func finalState(repo *archive.Repo, installed []inventory.Package, steps []Step) map[string]*archive.IndexPackage {
	out := map[string]*archive.IndexPackage{}
	for _, ip := range installed {
		if p, ok := repo.Lookup(ip.Name, ip.Version); ok && (ip.Arch == repo.Arch() || ip.Arch == "all") {
			out[ip.Name] = p
		}
		if out[ip.Name] == nil {
			out[ip.Name] = &archive.IndexPackage{Package: ip.Name, Version: ip.Version, Architecture: ip.Arch}
		}
	}
	for _, s := range steps {
		out[s.Package] = &s.Candidate
	}
	return out
}

// unmetDepends lists the Depends and Pre-Depends elements of state that no
// package of state meets (by name and version, or by Provides), ignoring
// architecture qualifiers: a small checker apart from the resolver.
func unmetDepends(t *testing.T, state map[string]*archive.IndexPackage, arch string) []string {
	t.Helper()
	provided := map[string][]string{} // virtual -> provided versions ("" unversioned)
	for _, p := range state {
		rels, err := ParseRelations(p.Provides, arch)
		if err != nil {
			t.Fatalf("%s Provides: %v", p.Package, err)
		}
		for _, alts := range rels {
			for _, r := range alts {
				provided[r.Name] = append(provided[r.Name], r.Version)
			}
		}
	}
	meets := func(have string, r Relation) bool {
		if r.Op == "" {
			return true
		}
		c, err := version.Deb{}.Compare(have, r.Version)
		if err != nil {
			return false
		}
		return map[string]bool{"<<": c < 0, "<=": c <= 0, "=": c == 0, ">=": c >= 0, ">>": c > 0}[r.Op]
	}
	var out []string
	for _, p := range state {
		rels, err := ParseRelations(p.PreDepends+", "+p.Depends, arch)
		if err != nil {
			t.Fatalf("%s Depends: %v", p.Package, err)
		}
		for _, alts := range rels {
			ok := slices.ContainsFunc(alts, func(r Relation) bool {
				if q := state[r.Name]; q != nil && meets(q.Version, r) {
					return true
				}
				return slices.ContainsFunc(provided[r.Name], func(v string) bool {
					return r.Op == "" || (v != "" && meets(v, r))
				})
			})
			if !ok {
				out = append(out, fmt.Sprintf("%s %s: unmet %s", p.Package, p.Version, alts))
			}
		}
	}
	slices.Sort(out)
	return out
}
