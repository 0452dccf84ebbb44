package version

import "testing"

// fuzzComparer checks that Compare never panics, agrees with Valid, and is
// reflexive and antisymmetric on valid input.
func fuzzComparer(f *testing.F, c Comparer, seeds ...string) {
	for _, a := range seeds {
		for _, b := range seeds {
			f.Add(a, b)
		}
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, errAB := c.Compare(a, b)
		ba, errBA := c.Compare(b, a)
		valid := c.Valid(a) && c.Valid(b)
		if (errAB == nil) != valid || (errBA == nil) != valid {
			t.Fatalf("Compare(%q, %q) errors %v / %v disagree with Valid = %v", a, b, errAB, errBA, valid)
		}
		if !valid {
			return
		}
		if ab != -ba {
			t.Fatalf("not antisymmetric: Compare(%q, %q) = %d, Compare(%q, %q) = %d", a, b, ab, b, a, ba)
		}
		if ab < -1 || ab > 1 {
			t.Fatalf("Compare(%q, %q) = %d, not in -1..1", a, b, ab)
		}
		if aa, err := c.Compare(a, a); err != nil || aa != 0 {
			t.Fatalf("Compare(%q, %q) = %d, %v, want 0", a, a, aa, err)
		}
	})
}

func FuzzDeb(f *testing.F) {
	fuzzComparer(f, Deb{}, "1.0", "1:1.0-1", "1.0~rc1", "1.0+b1", "2.36-9+deb12u10", "1.2.3-4-5", "a", "")
}

func FuzzAPK(f *testing.F) {
	fuzzComparer(f, APK{}, "1.0", "1.2.3-r0", "1.2.3_rc1-r4", "1.2.3_p1", "1.0a", "1.0_bogus", "")
}

func FuzzRPM(f *testing.F) {
	fuzzComparer(f, RPM{}, "1.0", "1:1.0-1.el9", "1.0~rc1^git2-3", "1.0^git1", "x:1", "")
}
