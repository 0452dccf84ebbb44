package sources

import (
	"strings"
	"testing"
)

func TestDefaults(t *testing.T) {
	a, b := Defaults(), Defaults()
	if len(a) != 5 || len(b) != len(a) {
		t.Fatalf("Defaults() = %d sources", len(a))
	}
	names := map[string]bool{}
	for i, s := range a {
		// Stateless sources are zero-size structs whose pointers may
		// compare equal; the others must be fresh values.
		if s.Name() != "distro-info" && s.Name() != "debian-security-support" && s == b[i] {
			t.Errorf("%s: Defaults shares instances between calls", s.Name())
		}
		if names[s.Name()] {
			t.Errorf("duplicate name %s", s.Name())
		}
		names[s.Name()] = true
		urls := s.DefaultURLs()
		if len(urls) == 0 {
			t.Errorf("%s: no default URLs", s.Name())
		}
		for _, u := range urls {
			if !strings.HasPrefix(u, "https://") {
				t.Errorf("%s: URL %q is not https", s.Name(), u)
			}
		}
	}
	for _, n := range []string{"osv", "debian-tracker", "alpine-secdb", "distro-info", "debian-security-support"} {
		if !names[n] {
			t.Errorf("no source %q", n)
		}
	}
}
