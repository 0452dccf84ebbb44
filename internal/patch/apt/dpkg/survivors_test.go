package dpkg

import (
	"strings"
	"testing"
)

// Tests added for the mutants that survived `make mutate`
// (test/mutation/SURVIVORS.md, fifth pass); each fails on its mutant,
// planted by hand.

// TestParseStanzaQuotesBadLineUpTo60 checks how a line that is not a field
// is named in the error: whole up to 60 bytes, cut with "..." beyond.
// Mutant: `len(s) <= n` -> `<` in truncate (a 60-byte line cut).
func TestParseStanzaQuotesBadLineUpTo60(t *testing.T) {
	for _, n := range []int{59, 60, 61, 200} {
		line := strings.Repeat("x", n) // no colon: not a field
		_, err := parseStanza("Package: a\n" + line + "\n")
		if err == nil {
			t.Fatalf("%d-byte line accepted", n)
		}
		want := `line 2: "` + line + `" is not a field`
		if n > 60 {
			want = `line 2: "` + line[:60] + `..." is not a field`
		}
		if err.Error() != want {
			t.Errorf("%d-byte line: error %q, want %q", n, err, want)
		}
	}
}
