package imgref

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

var (
	d256 = "sha256:" + strings.Repeat("ab", 32)
	d512 = "sha512:" + strings.Repeat("cd", 64)
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Reference
		wantErr string // substring; "" = success
	}{
		{in: "quarantine/app:1", want: Reference{Repository: "quarantine/app", Tag: "1"}},
		{in: "quarantine/a/b:1.2-rc", want: Reference{Repository: "quarantine/a/b", Tag: "1.2-rc"}},
		{in: "quarantine/app", want: Reference{Repository: "quarantine/app"}},
		{in: "  quarantine/app:1\t", want: Reference{Repository: "quarantine/app", Tag: "1"}},
		{in: "quarantine/app@" + d256, want: Reference{Repository: "quarantine/app", Digest: d(d256)}},
		{in: "live/a/b@" + d512, want: Reference{Repository: "live/a/b", Digest: d(d512)}},
		{in: "quarantine/app:1@" + d256, want: Reference{Repository: "quarantine/app", Tag: "1", Digest: d(d256)}},
		{in: "live", want: Reference{Repository: "live"}},
		{in: "a__b/c---d.e_f:_T.9", want: Reference{Repository: "a__b/c---d.e_f", Tag: "_T.9"}},
		{in: "x:" + strings.Repeat("t", 128), want: Reference{Repository: "x", Tag: strings.Repeat("t", 128)}},

		{in: "", wantErr: `invalid repository name "": empty`},
		{in: ":1", wantErr: `invalid repository name "": empty`},
		{in: "@" + d256, wantErr: `invalid repository name "": empty`},
		{in: "quarantine/app:", wantErr: `tag ""`},
		{in: "quarantine/app@", wantErr: `digest ""`},
		{in: "quarantine/app@sha256:abc", wantErr: "digest"},
		{in: "quarantine/app@md5:" + strings.Repeat("a", 32), wantErr: "digest"},
		{in: "quarantine/app@sha384:" + strings.Repeat("a", 96), wantErr: "unsupported algorithm"},
		{in: "host:5000/app", wantErr: "registry host or port"},
		{in: "host:5000/app:1", wantErr: `component "host:5000"`},
		{in: "Quarantine/app:1", wantErr: `component "Quarantine"`},
		{in: "quarantine//app", wantErr: `component ""`},
		{in: "quarantine/app/", wantErr: `component ""`},
		{in: "/quarantine/app", wantErr: `component ""`},
		{in: "quarantine/../live/app", wantErr: `component ".."`},
		{in: "quarantine/./app", wantErr: `component "."`},
		{in: "quarantine/_app", wantErr: `component "_app"`},
		{in: "quarantine/app:-1", wantErr: `tag "-1"`},
		{in: "quarantine/app:.1", wantErr: `tag ".1"`},
		{in: "x:" + strings.Repeat("t", 129), wantErr: "tag"},
		{in: strings.Repeat("a", 256), wantErr: "longer than 255"},
		{in: "quarantine/app:1:2", wantErr: "component"},
		{in: "quarantine/app@" + d256 + "@" + d256, wantErr: "digest"},
		{in: "quarantine/a%2Fb:1", wantErr: "component"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %+v; want an error", tt.in, got)
				}
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Parse(%q) error %q: want ErrInvalid mentioning %q", tt.in, err, tt.wantErr)
				}
				if got != (Reference{}) {
					t.Errorf("Parse(%q) returned %+v with its error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			again, err := Parse(got.String())
			if err != nil || again != got {
				t.Errorf("Parse(String()) = %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

func TestReferenceRef(t *testing.T) {
	for _, tt := range []struct {
		r    Reference
		want string
	}{
		{Reference{Repository: "a", Tag: "1"}, "1"},
		{Reference{Repository: "a", Digest: d(d256)}, d256},
		{Reference{Repository: "a", Tag: "1", Digest: d(d256)}, d256},
		{Reference{Repository: "a"}, "latest"},
	} {
		if got := tt.r.Ref(); got != tt.want {
			t.Errorf("%+v.Ref() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestCheckRepository(t *testing.T) {
	for _, name := range []string{"a", "live", "a/b/c", "a.b", "a_b", "a__b", "a-b", "a---b", "0", strings.Repeat("a", 255)} {
		if err := CheckRepository(name); err != nil || !ValidRepository(name) {
			t.Errorf("CheckRepository(%q) = %v, want valid", name, err)
		}
	}
	for _, name := range []string{"", "A", "a/", "/a", "a//b", ".", "..", "a/../b", "_a", "a_", "a___b", "a.", ".a", "a-", "-a",
		"a..b", "a._b", "a/_manifests", "a--", "a b", "a:b", "a@b", "a%2fb", "é", strings.Repeat("a", 256)} {
		if err := CheckRepository(name); !errors.Is(err, ErrInvalid) || ValidRepository(name) {
			t.Errorf("CheckRepository(%q) = %v, want ErrInvalid", name, err)
		}
	}
}

func TestValidTag(t *testing.T) {
	for _, tag := range []string{"1", "latest", "_x", "A.b-C_9", strings.Repeat("x", 128)} {
		if !ValidTag(tag) {
			t.Errorf("ValidTag(%q) = false", tag)
		}
	}
	for _, tag := range []string{"", ".x", "-x", "a/b", "a:b", "a@b", "a b", strings.Repeat("x", 129)} {
		if ValidTag(tag) {
			t.Errorf("ValidTag(%q) = true", tag)
		}
	}
}

// FuzzParse: Parse never panics; whatever it accepts is made only of
// valid parts and reads back the same from its String form.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"quarantine/app:1", "live", "a/b@" + d256, "a:1@" + d512, "host:5000/a", "a//b", "", "@", ":", "a:b:c",
		"quarantine/../live/x", "LIVE/x:1", "a%2Fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if !ValidRepository(r.Repository) {
			t.Fatalf("Parse(%q) accepted repository %q", s, r.Repository)
		}
		if r.Tag != "" && !ValidTag(r.Tag) {
			t.Fatalf("Parse(%q) accepted tag %q", s, r.Tag)
		}
		if r.Digest != "" {
			if _, err := ParseDigest(r.Digest.String()); err != nil {
				t.Fatalf("Parse(%q) accepted digest %q: %v", s, r.Digest, err)
			}
		}
		again, err := Parse(r.String())
		if err != nil || again != r {
			t.Fatalf("Parse(%q) = %+v, but Parse(%q) = %+v, %v", s, r, r.String(), again, err)
		}
		if Namespace(r.Repository) == "" || strings.Contains(Namespace(r.Repository), "/") {
			t.Fatalf("Namespace(%q) = %q", r.Repository, Namespace(r.Repository))
		}
	})
}

func d(s string) digest.Digest { return digest.Digest(s) }
