package store

import (
	"strings"
	"testing"
)

// TestValidDigest: sha256 and sha512 digests in lower-case hex are
// accepted, anything else is refused (a mutant of the algorithm check
// survived make mutate: see test/mutation/SURVIVORS.md).
func TestValidDigest(t *testing.T) {
	h64, h128 := strings.Repeat("ab", 32), strings.Repeat("cd", 64)
	for d, ok := range map[string]bool{
		"sha256:" + h64:                  true,
		"sha512:" + h128:                 true,
		"md5:" + h64:                     false,
		"sha1:" + h64:                    false,
		"sha256:" + h64[:63]:             false,
		"sha256:" + strings.ToUpper(h64): false,
		"sha256:" + h64[:62] + "zz":      false,
		h64:                              false,
		"":                               false,
		"sha256:":                        false,
	} {
		if err := validDigest(d); (err == nil) != ok {
			t.Errorf("validDigest(%q) = %v, want ok %v", d, err, ok)
		}
	}
}
