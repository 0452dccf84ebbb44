package maintscript

import "testing"

// TestControlMemberName: the control members copied to dpkg's control
// area by a shell command are plain names; anything a shell or a path
// reads specially is refused.
func TestControlMemberName(t *testing.T) {
	for name, want := range map[string]bool{
		"preinst": true, "templates": true, "config": true, "md5sums": true, "shlibs": true, "c++.x_y-z": true,
		"": false, ".": false, "..": false, "a/b": false, "../preinst": false, "a b": false, "a;rm": false,
		"$(x)": false, "a\nb": false, "`x`": false, "a'b": false, "a*": false,
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": false, // 65 bytes
	} {
		if got := controlMemberName(name); got != want {
			t.Errorf("controlMemberName(%q) = %v, want %v", name, got, want)
		}
	}
}
