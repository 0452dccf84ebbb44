package version

import (
	"errors"
	"testing"
)

func TestFor(t *testing.T) {
	for _, eco := range []string{"deb", "apk", "rpm"} {
		c, err := For(eco)
		if err != nil || c == nil {
			t.Errorf("For(%q) = %v, %v", eco, c, err)
		}
	}
	for _, eco := range []string{"", "DEB", "pypi"} {
		if _, err := For(eco); !errors.Is(err, ErrUnsupportedEcosystem) {
			t.Errorf("For(%q) error = %v, want ErrUnsupportedEcosystem", eco, err)
		}
	}
}

type cmpCase struct {
	a, b string
	want int
}

// checkCases runs a table against a Comparer, both ways round.
func checkCases(t *testing.T, c Comparer, cases []cmpCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.a+"_vs_"+tc.b, func(t *testing.T) {
			got, err := c.Compare(tc.a, tc.b)
			if err != nil {
				t.Fatalf("Compare(%q, %q): %v", tc.a, tc.b, err)
			}
			if got != tc.want {
				t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			rev, err := c.Compare(tc.b, tc.a)
			if err != nil || rev != -tc.want {
				t.Errorf("Compare(%q, %q) = %d, %v, want %d", tc.b, tc.a, rev, err, -tc.want)
			}
		})
	}
}

func TestDebCompare(t *testing.T) {
	checkCases(t, Deb{}, []cmpCase{
		{"1.0", "1.0", 0},
		{"1.0-1", "1.0-1", 0},
		{"0:1.0-1", "1.0-1", 0},                         // a missing epoch is 0
		{"1:1.0", "2.0", 1},                             // epoch wins
		{"1.0~rc1", "1.0", -1},                          // ~ before the end
		{"1.0~~", "1.0~", -1},                           // ~~ before ~
		{"1.0~rc1-1", "1.0-1", -1},                      // ...also with a revision
		{"1.0+b1", "1.0", 1},                            // + after the end
		{"1.0-1+deb12u1", "1.0-1", 1},                   // stable update
		{"1.0-1+deb12u1", "1.0-1+deb12u2", -1},          //
		{"3.0.15-1~deb12u1", "3.0.15-1", -1},            // backport-style ~
		{"3.0.11-1~deb12u2", "3.0.15-1~deb12u1", -1},    // real libssl3
		{"1.22.1-9+deb12u1", "1.22.1-9", 1},             // real nginx
		{"2.36-9+deb12u10", "2.36-9+deb12u9", 1},        // numeric, not lexical
		{"1.0a", "1.0", 1},                              // letters after the end
		{"1.0a", "1.0+", -1},                            // letters sort before non-letters
		{"1.0-1", "1.0", 1},                             // empty revision is lowest
		{"1.2.3-4-5", "1.2.3-4-4", 1},                   // last hyphen splits the revision
		{"10", "9", 1},                                  //
		{"1.01", "1.1", 0},                              // numeric value, not text
		{"2:1.0", "1:9.9", 1},                           //
		{"7.88.1-10+deb12u5", "7.74.0-1.3+deb11u14", 1}, // curl bookworm vs bullseye
	})
}

func TestAPKCompare(t *testing.T) {
	checkCases(t, APK{}, []cmpCase{
		{"1.2.3-r0", "1.2.3-r0", 0},
		{"1.2.3-r1", "1.2.3-r0", 1},
		{"1.2.3-r10", "1.2.3-r9", 1},
		{"1.2.3", "1.2.3-r0", -1}, // apk-tools: any revision sorts after none
		{"1.2.3_rc1-r0", "1.2.3-r0", -1},
		{"1.2.3_alpha", "1.2.3_beta", -1},
		{"1.2.3_beta", "1.2.3_pre", -1},
		{"1.2.3_pre", "1.2.3_rc", -1},
		{"1.2.3_rc2", "1.2.3_rc10", -1},
		{"1.2.3_p1", "1.2.3", 1}, // patch after release
		{"1.2.3a", "1.2.3", 1},
		{"1.2.10", "1.2.9", 1},
		{"3.0.8-r0", "3.0.12-r0", -1},
		{"1.36.1-r15", "1.36.1-r2", 1},
		{"2.40_git20230101-r0", "2.40-r0", 1},
	})
}

func TestRPMCompare(t *testing.T) {
	checkCases(t, RPM{}, []cmpCase{
		{"1.0-1", "1.0-1", 0},
		{"0:1.0-1", "1.0-1", 0},
		{"1:1.0-1", "2.0-1", 1},
		{"1.0-2.el8", "1.0-10.el8", -1},
		{"1.0~rc1-1", "1.0-1", -1},     // tilde: pre-release
		{"1.0~rc1", "1.0~rc2", -1},     //
		{"1.0^git1", "1.0", 1},         // caret: post-release snapshot
		{"1.0^git1", "1.0.1", -1},      // ...but before the next version
		{"1.0~rc1^git1", "1.0~rc1", 1}, //
		{"1.0~rc1^git1", "1.0", -1},    //
		{"1.0a", "1.0", 1},
		{"1.0", "1.0.0", -1},
		{"1.10", "1.9", 1},
		{"1.0_1", "1.0.1", 0}, // separators are all alike
		{"3.0.7-27.el9", "3.0.7-25.el9_3", 1},
		{"2.28-225.el9", "2.28-225.el9_3.1", -1},
	})
}

func TestInvalid(t *testing.T) {
	cases := []struct {
		eco string
		v   string
	}{
		{"deb", ""},
		{"deb", "a1.0"},
		{"deb", "x:1.0"},
		{"deb", "-1:1.0"},
		{"deb", " 1.0"},
		{"deb", "1.0 "},
		{"deb", "1.0-1 2"},
		{"deb", "1.0-ä"},
		{"deb", "1.0-1/2"},
		{"apk", ""},
		{"apk", "abc"},
		{"apk", "1.0-rx"},
		{"apk", "1.0_bogus"},
		{"apk", "1.0 "},
		{"rpm", ""},
		{"rpm", ":1.0"},
		{"rpm", "x:1.0"},
		{"rpm", "1:"},
		{"rpm", "1.0-"},
		{"rpm", "1.0-1-2"},
		{"rpm", "1.0 1"},
		{"rpm", "1.0/1"},
		{"rpm", "99999999999:1.0"},
	}
	for _, tc := range cases {
		t.Run(tc.eco+"/"+tc.v, func(t *testing.T) {
			c, err := For(tc.eco)
			if err != nil {
				t.Fatal(err)
			}
			if c.Valid(tc.v) {
				t.Errorf("Valid(%q) = true", tc.v)
			}
			for _, args := range [][2]string{{tc.v, "1.0"}, {"1.0", tc.v}} {
				_, err := c.Compare(args[0], args[1])
				var ive *InvalidVersionError
				if !errors.As(err, &ive) {
					t.Fatalf("Compare(%q, %q) error = %v, want *InvalidVersionError", args[0], args[1], err)
				}
				if ive.Version != tc.v || ive.Ecosystem != tc.eco {
					t.Errorf("error names %s %q, want %s %q", ive.Ecosystem, ive.Version, tc.eco, tc.v)
				}
			}
		})
	}
}

func TestValid(t *testing.T) {
	valid := map[string][]string{
		"deb": {"1.0", "1:1.0-1", "1.0~rc1+dfsg-1~deb12u1", "2.36-9+deb12u10", "0", "1.2.3-4-5"},
		"apk": {"1.0", "1.2.3-r0", "1.2.3_rc1-r4", "1.2.3_p1", "2.40_git20230101-r0", "1.0a"},
		"rpm": {"1.0", "1:1.0-1.el9", "1.0~rc1^git2-3", "0:2.28-225.el9_3.1", "1.0_1"},
	}
	for eco, vs := range valid {
		c, _ := For(eco)
		for _, v := range vs {
			if !c.Valid(v) {
				t.Errorf("%s: Valid(%q) = false", eco, v)
			}
		}
	}
}
