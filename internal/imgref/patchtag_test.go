package imgref

import "testing"

func TestPatchTag(t *testing.T) {
	for _, tc := range []struct {
		tag, orig string
		n         int
		ok        bool
	}{
		{"1.25-1", "1.25", 1, true},
		{"1.25-999", "1.25", 999, true},
		{"1.25-1000", "", 0, false},
		{"1.25-0", "", 0, false},
		{"1.25-01", "", 0, false},
		{"1.25-patched", "1.25", 0, true},
		{"bookworm-3-patched", "bookworm-3", 0, true},
		{"bookworm-3-2", "bookworm-3", 2, true},
		{"latest", "", 0, false},
		{"-1", "", 0, false},
		{"-patched", "", 0, false},
	} {
		orig, n, ok := PatchTag(tc.tag)
		if orig != tc.orig || n != tc.n || ok != tc.ok {
			t.Errorf("PatchTag(%q) = %q, %d, %v; want %q, %d, %v", tc.tag, orig, n, ok, tc.orig, tc.n, tc.ok)
		}
	}
}
