package gate

import (
	"bytes"
	"strings"
	"testing"
)

// Tests written for mutants of policy.go and vex.go that survived
// `make mutate` (test/mutation/SURVIVORS.md, fourth pass).

// TestYAMLProblemLine: a type error deep in the policy names its line and
// says the message without yaml's "line N:" prefix.
func TestYAMLProblemLine(t *testing.T) {
	probs, err := ValidatePolicy(strings.NewReader("version: 1\nmaxSeverity: high\nfixableOnly: [yes]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) != 1 {
		t.Fatalf("problems: %+v, want one", probs)
	}
	if probs[0].Line != 3 || strings.HasPrefix(probs[0].Message, "line ") || strings.Contains(probs[0].Message, "gate.raw") {
		t.Errorf("problem %+v: want line 3 and a message without yaml's prefix or Go type names", probs[0])
	}
}

// TestSourceAllowedUnvalidated: a Policy built in code, never validated,
// still applies its allowed sources (compiled on the spot), and a bad
// pattern matches nothing.
func TestSourceAllowedUnvalidated(t *testing.T) {
	for _, tc := range []struct {
		sources []string
		ref     string
		want    bool
	}{
		{[]string{`^mirror\.example/`}, "mirror.example/library/nginx:1", true},
		{[]string{`^mirror\.example/`}, "elsewhere.example/nginx:1", false},
		{[]string{`(`}, "mirror.example/nginx:1", false},
		{nil, "anything.example/x:1", true},
	} {
		p := &Policy{AllowedSources: tc.sources}
		if got := p.sourceAllowed(tc.ref); got != tc.want {
			t.Errorf("sources %q, ref %q: allowed = %v, want %v", tc.sources, tc.ref, got, tc.want)
		}
	}
}

// TestExceptionsSizeBoundary: a document of exactly the limit loads; one
// byte more is refused as too large (not as truncated JSON).
func TestExceptionsSizeBoundary(t *testing.T) {
	doc := []byte(`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[]}`)
	exact := append(bytes.Clone(doc), bytes.Repeat([]byte(" "), maxExceptionsSize-len(doc))...)
	if _, err := LoadExceptions(bytes.NewReader(exact)); err != nil {
		t.Errorf("a document of exactly %d bytes: %v", maxExceptionsSize, err)
	}
	over := append(exact, ' ')
	_, err := LoadExceptions(bytes.NewReader(over))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a document one byte over the limit: %v, want a size refusal", err)
	}
}

// TestParseProductForms: the product forms that name a digest only, a
// repository only, neither, and registry hosts stripped from
// repository_url (a host has a dot or a port, or is localhost).
func TestParseProductForms(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	const esc = "sha256%3A0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		id, repo, digest string
		bad              bool
	}{
		{id: "pkg:oci/app@" + esc, digest: d},
		{id: "pkg:oci/app@" + esc + "?repository_url=quarantine/app", repo: "quarantine/app", digest: d},
		{id: "pkg:oci/app", repo: "app"},
		{id: "pkg:oci/app?repository_url=library/nginx", repo: "library/nginx"},
		{id: "pkg:oci/app?repository_url=localhost/team/app", repo: "team/app"},
		{id: "pkg:oci/app?repository_url=registry.example/team/app", repo: "team/app"},
		{id: "pkg:oci/app?repository_url=registry:5000/app", repo: "app"},
		{id: "pkg:oci/", bad: true},
	} {
		p, err := parseProduct(tc.id)
		if tc.bad {
			if err == nil {
				t.Errorf("%s: accepted as %+v", tc.id, p)
			}
			continue
		}
		if err != nil || p.Repo != tc.repo || p.Digest != tc.digest {
			t.Errorf("%s: %+v, %v; want repo %q digest %q", tc.id, p, err, tc.repo, tc.digest)
		}
	}
}

// TestValidDigestCharacters: every lower-case hex digit at the range ends
// is accepted, the characters next to them are not.
func TestValidDigestCharacters(t *testing.T) {
	base := strings.Repeat("1", 63)
	for c := range 128 {
		want := strings.ContainsRune("0123456789abcdef", rune(c))
		if got := validDigest("sha256:" + base + string(rune(c))); got != want {
			t.Errorf("last hex character %q: valid = %v, want %v", rune(c), got, want)
		}
	}
	for _, d := range []string{"sha256:" + base, "sha256:" + base + "11", "sha512:" + base + "1", base + "1"} {
		if validDigest(d) {
			t.Errorf("%q accepted", d)
		}
	}
}
