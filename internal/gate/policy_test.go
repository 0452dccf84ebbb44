package gate

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/vulndb"
)

const goodPolicy = `version: v1
maxSeverity: HIGH
fixableOnly: true
ignoreStatuses: [will_not_fix, no-dsa]
allowedSources: ['^docker\.io/library/', '^ghcr\.io/acme/']
maxScanAge: 24h
autoPromote: true
graceWindow: 72h
`

func TestLoadPolicy(t *testing.T) {
	p, err := LoadPolicy(strings.NewReader(goodPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxSeverity != vulndb.SeverityHigh || !p.FixableOnly || !p.AutoPromote ||
		p.MaxScanAge != 24*time.Hour || p.GraceWindow != 72*time.Hour ||
		!reflect.DeepEqual(p.IgnoreStatuses, []vulndb.Status{vulndb.StatusWillNotFix, vulndb.StatusNoDSA}) || len(p.AllowedSources) != 2 {
		t.Errorf("LoadPolicy = %+v", p)
	}
	if !p.BlockEndOfLife {
		t.Error("blockEndOfLife should default to true")
	}
	if !p.sourceAllowed("docker.io/library/nginx:1.25") || p.sourceAllowed("quay.io/x/y") {
		t.Error("allowedSources not applied")
	}
	p, err = LoadPolicy(strings.NewReader("version: v1\nmaxSeverity: LOW\nblockEndOfLife: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.BlockEndOfLife {
		t.Error("blockEndOfLife: false ignored")
	}
}

func TestLoadPolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error, each must appear
	}{
		{"empty", "", []string{"policy is empty"}},
		{"typo", "version: v1\nmaxSeverity: HIGH\nmaxSeverty: LOW\n", []string{"line 3", "maxSeverty"}},
		{"missing version", "maxSeverity: HIGH\n", []string{"version: required"}},
		{"bad version", "version: v2\nmaxSeverity: HIGH\n", []string{"line 1: version", `"v2"`}},
		{"missing severity", "version: v1\n", []string{"maxSeverity: required"}},
		{"bad severity", "version: v1\nmaxSeverity: SEVERE\n", []string{"line 2: maxSeverity", `"SEVERE"`}},
		{"bad status", "version: v1\nmaxSeverity: HIGH\nignoreStatuses: [wontfix]\n", []string{"line 3: ignoreStatuses[0]", `"wontfix"`}},
		{"dup status", "version: v1\nmaxSeverity: HIGH\nignoreStatuses: [no_dsa, no_dsa]\n", []string{"ignoreStatuses[1]", "duplicate"}},
		{"bad regex", "version: v1\nmaxSeverity: HIGH\nallowedSources: ['ok', '(unclosed']\n", []string{"line 3: allowedSources[1]", `"(unclosed"`}},
		{"bad duration", "version: v1\nmaxSeverity: HIGH\nmaxScanAge: 1 day\n", []string{"line 3: maxScanAge", `"1 day"`}},
		{"negative grace", "version: v1\nmaxSeverity: HIGH\ngraceWindow: -1h\n", []string{"line 3: graceWindow", "negative"}},
		{"wrong type", "version: v1\nmaxSeverity: HIGH\nfixableOnly: maybe\n", []string{"line 3", "maybe"}},
		{"two documents", "version: v1\nmaxSeverity: HIGH\n---\nversion: v1\n", []string{"more than one YAML document"}},
		{"syntax", "version: v1\n  maxSeverity: [\n", []string{"line"}},
		{"all at once", "version: v9\nmaxSeverity: NOPE\nallowedSources: ['[']\ngraceWindow: soon\n",
			[]string{"version", "maxSeverity", "allowedSources[0]", "graceWindow"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadPolicy(strings.NewReader(tt.in))
			if err == nil {
				t.Fatal("no error")
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *PolicyError: %v", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidatePolicyAllProblems(t *testing.T) {
	probs, err := ValidatePolicy(strings.NewReader("version: v9\nmaxSeverity: NOPE\nallowedSources: ['[']\ngraceWindow: soon\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"version", "maxSeverity", "allowedSources[0]", "graceWindow"}
	if len(probs) != len(want) {
		t.Fatalf("problems = %v, want %d", probs, len(want))
	}
	for i, w := range want {
		if probs[i].Field != w || probs[i].Line != i+1 {
			t.Errorf("problem %d = %+v, want field %s line %d", i, probs[i], w, i+1)
		}
	}
	if probs, err := ValidatePolicy(strings.NewReader(goodPolicy)); err != nil || probs != nil {
		t.Errorf("good policy: %v, %v", probs, err)
	}
}

func TestPolicyValidate(t *testing.T) {
	p := &Policy{Version: "v1", MaxSeverity: vulndb.SeverityHigh, AllowedSources: []string{"^a", "("}}
	err := p.Validate()
	if err == nil || !strings.Contains(err.Error(), "allowedSources[1]") {
		t.Fatalf("Validate = %v", err)
	}
	p.AllowedSources = []string{"^a"}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

func FuzzLoadPolicy(f *testing.F) {
	f.Add(goodPolicy)
	f.Add("version: v1\nmaxSeverity: HIGH\nmaxSeverty: x\n")
	f.Add("version: v1\nmaxSeverity: HIGH\nallowedSources: ['(']\n")
	f.Add("- a\n- b\n")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := LoadPolicy(strings.NewReader(in))
		if (p == nil) == (err == nil) {
			t.Fatalf("LoadPolicy returned %v, %v", p, err)
		}
		if err == nil {
			if verr := p.Validate(); verr != nil {
				t.Fatalf("loaded policy does not validate: %v", verr)
			}
		}
	})
}

func TestPolicyFollowersAndSignatures(t *testing.T) {
	tests := []struct {
		name, yaml string
		problems   []string // fields
		follows    map[string]bool
	}{
		{"absent: everything follows", "version: v1\nmaxSeverity: HIGH\n", nil,
			map[string]bool{"signature": true, "sbom": true, "artifact": true}},
		{"only signatures", "version: v1\nmaxSeverity: HIGH\nfollowers: [signature]\n", nil,
			map[string]bool{"signature": true, "attestation": false, "scan-report": false}},
		{"empty: nothing follows", "version: v1\nmaxSeverity: HIGH\nfollowers: []\n", nil,
			map[string]bool{"signature": false}},
		{"unknown class", "version: v1\nmaxSeverity: HIGH\nfollowers: [signature, images]\n", []string{"followers[1]"}, nil},
		{"empty key path", "version: v1\nmaxSeverity: HIGH\nrequireSignedBy: ['', k.pub]\n", []string{"requireSignedBy[0]"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probs, err := ValidatePolicy(strings.NewReader(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			var fields []string
			for _, p := range probs {
				fields = append(fields, p.Field)
				if p.Line == 0 {
					t.Errorf("problem %v has no line", p)
				}
			}
			if !slices.Equal(fields, tt.problems) {
				t.Fatalf("problems %v, want fields %v", probs, tt.problems)
			}
			if tt.problems != nil {
				return
			}
			p, err := LoadPolicy(strings.NewReader(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			for class, want := range tt.follows {
				if got := p.Follows(class); got != want {
					t.Errorf("Follows(%q) = %v, want %v", class, got, want)
				}
			}
		})
	}
}
