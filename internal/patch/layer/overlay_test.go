package layer

import "testing"

func TestConfine(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "."},
		{".", "."},
		{"/", "."},
		{"..", "."},
		{"../..", "."},
		{"/../..", "."},
		{"../x", "x"},
		{"/../../etc", "etc"},
		{"/../../etc/passwd", "etc/passwd"},
		{"a/../../b", "b"},
		{"a/../b", "b"},
		{"a/b/../../../../c/d", "c/d"},
		{"/usr//lib/./x/", "usr/lib/x"},
		{"usr/lib", "usr/lib"},
		{"..foo", "..foo"},
		{"../..foo", "..foo"},
		{"/etc/..", "."},
	} {
		if got := Confine(tt.in); got != tt.want {
			t.Errorf("Confine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
