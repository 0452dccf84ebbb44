package kube

import (
	"errors"
	"strings"
	"testing"
)

const d64 = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseImage(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // normalised; "" means an error
		ns   string
	}{
		{"nginx", "docker.io/library/nginx:latest", "library"},
		{"live/nginx:1.27.1", "docker.io/live/nginx:1.27.1", "live"},
		{"docker.io/nginx", "docker.io/library/nginx:latest", "library"},
		{"index.docker.io/live/nginx", "docker.io/live/nginx:latest", "live"},
		{"drydock.example.com/live/nginx:1.27.1-1", "drydock.example.com/live/nginx:1.27.1-1", "live"},
		{"Drydock.Example.COM/live/nginx", "drydock.example.com/live/nginx:latest", "live"},
		{"drydock.example.com:5000/live/a/b/c:v", "drydock.example.com:5000/live/a/b/c:v", "live"},
		{"localhost/live/x", "localhost/live/x:latest", "live"},
		{"localhost:5000/live/x@" + d64, "localhost:5000/live/x@" + d64, "live"},
		{"d.io/live/x:1.2@" + d64, "d.io/live/x:1.2@" + d64, "live"},
		{"[::1]:5000/live/x", "[::1]:5000/live/x:latest", "live"},
		{"[0:0::1]/live/x", "[::1]/live/x:latest", "live"},
		{"10.0.0.5:5000/live/x", "10.0.0.5:5000/live/x:latest", "live"},
		{"evil.io/drydock.example.com/live/x", "evil.io/drydock.example.com/live/x:latest", "drydock.example.com"},
		{"drydock.example.com.evil.io/live/x", "drydock.example.com.evil.io/live/x:latest", "live"},
		{"d.io/live__x/y", "d.io/live__x/y:latest", "live__x"},
		// Outside the grammar.
		{"", "", ""},
		{"d.io//live/x", "", ""},
		{"d.io/live/../x", "", ""},
		{"d.io/Live/x", "", ""},
		{"d.io/live/x:", "", ""},
		{"d.io/live/x@sha256:abc", "", ""},
		{"d.io/live/x@md5:" + strings.Repeat("a", 32), "", ""},
		{" d.io/live/x", "", ""},
		{"d.io/live/x ", "", ""},
		{"d.io/live/x:" + strings.Repeat("a", 129), "", ""},
		{"d.io:/live/x", "", ""},
		{"d.io:http/live/x", "", ""},
		{"-d.io/live/x", "", ""},
		{"[::1/live/x", "", ""},
		{"[1.2.3.4]/live/x", "", ""},
		{"d.io/live/x\x00", "", ""},
		{"d.io/live/-x", "", ""},
		{"d.io/live/x.", "", ""},
	} {
		got, err := ParseImage(tc.in)
		if tc.want == "" {
			if err == nil || !errors.Is(err, ErrInvalidImage) {
				t.Errorf("ParseImage(%q) = %v, %v; want an ErrInvalidImage", tc.in, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseImage(%q): %v", tc.in, err)
			continue
		}
		if got.String() != tc.want || got.Namespace() != tc.ns {
			t.Errorf("ParseImage(%q) = %s (namespace %q), want %s (%q)", tc.in, got, got.Namespace(), tc.want, tc.ns)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"Drydock.Example.com": "drydock.example.com",
		" d.io:5000 ":         "d.io:5000",
		"127.0.0.1:5000":      "127.0.0.1:5000",
		"https://d.io":        "",
		"d.io/live":           "",
		"":                    "",
	} {
		got, err := NormalizeHost(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func FuzzParseImage(f *testing.F) {
	for _, s := range []string{"nginx", "d.io/live/x:1@" + d64, "[::1]:5000/live/x", "localhost/live/x", "a.io//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseImage(s)
		if err != nil {
			return
		}
		// A parsed reference prints to a form that parses to itself
		// (except a host recognised only by its capitals, which it
		// prints in lowercase).
		again, err := ParseImage(ref.String())
		if hostLike := strings.ContainsAny(ref.Host, ".:") || ref.Host == "localhost"; hostLike && (err != nil || again != ref) {
			t.Fatalf("%q -> %s -> %v, %v", s, ref, again, err)
		}
		if ref.Host == "" || ref.Repository == "" || (ref.Tag == "" && ref.Digest == "") {
			t.Fatalf("%q: incomplete %+v", s, ref)
		}
		if strings.Contains(ref.Repository, "..") || strings.Contains(ref.Repository, "//") {
			t.Fatalf("%q: repository %q", s, ref.Repository)
		}
	})
}
