package archive

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseSourcesList(t *testing.T) {
	tests := []struct {
		name, in string
		want     []Source
		wantErr  string
	}{
		{name: "plain", in: "deb http://m/debian bookworm main contrib\n",
			want: []Source{{URI: "http://m/debian", Suite: "bookworm", Components: []string{"main", "contrib"}, Origin: "f:1"}}},
		{name: "comments, deb-src, blank", in: "# c\n\ndeb-src http://m/debian bookworm main\ndeb http://m/debian/ bookworm main # trailing\n",
			want: []Source{{URI: "http://m/debian", Suite: "bookworm", Components: []string{"main"}, Origin: "f:4"}}},
		{name: "options", in: "deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/k.gpg] https://m/d bookworm-security main\n",
			want: []Source{{URI: "https://m/d", Suite: "bookworm-security", Components: []string{"main"}, SignedBy: []string{"/usr/share/keyrings/k.gpg"}, Arch: []string{"amd64", "arm64"}, Origin: "f:1"}}},
		{name: "spaced options", in: "deb [ signed-by=/k.asc trusted=yes ] http://m/d ./\n",
			want: []Source{{URI: "http://m/d", Suite: "./", SignedBy: []string{"/k.asc"}, Origin: "f:1"}}},
		{name: "unterminated options", in: "deb [arch=amd64 http://m/d bookworm main\n", wantErr: "unterminated"},
		{name: "no suite", in: "deb http://m/d\n", wantErr: "want URI and suite"},
		{name: "file URI", in: "deb file:/srv/repo bookworm main\n", wantErr: "unsupported URI"},
		{name: "climbing suite", in: "deb http://m/d ../../etc main\n", wantErr: "invalid suite"},
		{name: "bad option", in: "deb [arch] http://m/d bookworm main\n", wantErr: "malformed option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSourcesList(strings.NewReader(tt.in), "f")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "f:") {
					t.Fatalf("error %v, want one naming the file and %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

const inlineKey = `Types: deb
URIs: http://m/debian
Suites: bookworm
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEZ...
 -----END PGP PUBLIC KEY BLOCK-----
`

func TestParseDeb822Sources(t *testing.T) {
	in := `# official
Types: deb deb-src
URIs: http://m/debian https://n/debian/
Suites: bookworm bookworm-updates
Components: main non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://m/debian-security
Suites: bookworm-security
Components: main
Enabled: no

Types: deb-src
URIs: http://m/debian
Suites: trixie
Components: main

types: deb
uris: http://m/extra
suites: stable
components: main
architectures: arm64
`
	got, err := ParseDeb822Sources(strings.NewReader(in), "d.sources")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, g := range got {
		s = append(s, g.String()+" @"+g.Origin+" "+strings.Join(g.SignedBy, ",")+" "+strings.Join(g.Arch, ","))
	}
	want := []string{
		"http://m/debian bookworm main non-free-firmware @d.sources:2 /usr/share/keyrings/debian-archive-keyring.gpg ",
		"http://m/debian bookworm-updates main non-free-firmware @d.sources:2 /usr/share/keyrings/debian-archive-keyring.gpg ",
		"https://n/debian bookworm main non-free-firmware @d.sources:2 /usr/share/keyrings/debian-archive-keyring.gpg ",
		"https://n/debian bookworm-updates main non-free-firmware @d.sources:2 /usr/share/keyrings/debian-archive-keyring.gpg ",
		"http://m/extra stable main @d.sources:19  arm64",
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(s, "\n"), strings.Join(want, "\n"))
	}

	got, err = ParseDeb822Sources(strings.NewReader(inlineKey), "k.sources")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].SignedBy != nil || !strings.HasPrefix(got[0].SignedByKey, "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ...\n-----END") {
		t.Errorf("inline key: %+v", got)
	}

	for name, in := range map[string]string{
		"no suites":   "Types: deb\nURIs: http://m/d\n",
		"bad line":    "Types: deb\nnot a field\n",
		"cdrom":       "Types: deb\nURIs: cdrom:[x]/\nSuites: a\n",
		"orphan":      " continuation\n",
		"long stanza": "Types: deb\nX-Pad:\n" + strings.Repeat(" "+strings.Repeat("a", 1000)+"\n", 1100),
	} {
		if _, err := ParseDeb822Sources(strings.NewReader(in), "bad.sources"); err == nil || !strings.Contains(err.Error(), "bad.sources") {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
}

func TestReadSources(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/apt/sources.list":                   {Data: []byte("deb http://m/debian bookworm main\n")},
		"etc/apt/sources.list.d/b.sources":       {Data: []byte("Types: deb\nURIs: http://m/debian-security\nSuites: bookworm-security\nComponents: main\n")},
		"etc/apt/sources.list.d/a.list":          {Data: []byte("deb http://x/y stable main\n")},
		"etc/apt/sources.list.d/ignored.save":    {Data: []byte("deb http://z/ stable main\n")},
		"etc/apt/sources.list.d/c.list.disabled": {Data: []byte("deb http://z/ stable main\n")},
	}
	got, err := ReadSources(t.Context(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, g := range got {
		s = append(s, g.String())
	}
	want := []string{"http://m/debian bookworm main", "http://x/y stable main", "http://m/debian-security bookworm-security main"}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %q, want %q", s, want)
	}
	if got, err := ReadSources(t.Context(), fstest.MapFS{}); err != nil || len(got) != 0 {
		t.Errorf("empty image: %v, %v", got, err)
	}
	big := fstest.MapFS{"etc/apt/sources.list": {Data: make([]byte, maxSourcesFile+1)}}
	if _, err := ReadSources(t.Context(), big); err == nil || !strings.Contains(err.Error(), "etc/apt/sources.list") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestCompleteSuites(t *testing.T) {
	base := []Source{{URI: "http://m/debian", Suite: "bookworm", Components: []string{"main"}, SignedBy: []string{"/k.gpg"}}}
	tests := []struct {
		name string
		in   []Source
		a    Archives
		want []string
		err  error
	}{
		{name: "adds updates and security sibling", in: base,
			want: []string{"http://m/debian bookworm main", "http://m/debian bookworm-updates main", "http://m/debian-security bookworm-security main"}},
		{name: "explicit security mirror", in: base, a: Archives{SecurityMirror: "http://s/sec"},
			want: []string{"http://m/debian bookworm main", "http://m/debian bookworm-updates main", "http://s/sec bookworm-security main"}},
		{name: "ubuntu keeps security in the archive", in: []Source{{URI: "http://u/ubuntu", Suite: "bookworm", Components: []string{"main"}}}, a: Archives{SameArchiveSecurity: true},
			want: []string{"http://u/ubuntu bookworm main", "http://u/ubuntu bookworm-updates main", "http://u/ubuntu bookworm-security main"}},
		{name: "mirror override", a: Archives{Mirror: "http://local/debian"},
			in:   []Source{base[0], {URI: "http://m/debian-security", Suite: "bookworm-security", Components: []string{"main"}}, {URI: "http://x/y", Suite: "stable", Components: []string{"main"}}},
			want: []string{"http://local/debian bookworm main", "http://local/debian-security bookworm-security main", "http://x/y stable main", "http://local/debian bookworm-updates main"}},
		{name: "old security suite name", in: []Source{base[0], {URI: "http://s/debian-security", Suite: "bookworm/updates", Components: []string{"main"}}},
			want: []string{"http://m/debian bookworm main", "http://s/debian-security bookworm/updates main", "http://m/debian bookworm-updates main"}},
		{name: "distroless with mirror", a: Archives{Mirror: "http://local/debian"},
			want: []string{"http://local/debian bookworm main", "http://local/debian bookworm-updates main", "http://local/debian-security bookworm-security main"}},
		{name: "distroless without mirror", err: ErrNoSources},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CompleteSuites(tt.in, "bookworm", tt.a)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			var s []string
			for _, g := range got {
				s = append(s, g.String())
				if g.Origin == "added" && g.Suite != "bookworm" && len(tt.in) > 0 && !reflect.DeepEqual(g.SignedBy, tt.in[0].SignedBy) {
					t.Errorf("added %s without the base's Signed-By", g)
				}
			}
			if !reflect.DeepEqual(s, tt.want) {
				t.Errorf("got  %q\nwant %q", s, tt.want)
			}
		})
	}
}

func FuzzParseSourcesList(f *testing.F) {
	f.Add("deb [arch=amd64 signed-by=/k.gpg] http://m/d bookworm main\n# c\ndeb-src x y z\n")
	f.Add("deb [ a=b ] http://m/d ./\n")
	f.Fuzz(func(t *testing.T, in string) {
		srcs, err := ParseSourcesList(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		for _, s := range srcs {
			if checkSource(s) != nil {
				t.Fatalf("returned an invalid source %+v", s)
			}
		}
	})
}

func FuzzParseDeb822Sources(f *testing.F) {
	f.Add("Types: deb\nURIs: http://m/d\nSuites: bookworm\nComponents: main\nSigned-By: /k.gpg\n")
	f.Add(inlineKey)
	f.Add("Types: deb\nURIs: http://m/d\nSuites: a b\nEnabled: no\n\nTypes: deb\nURIs: https://x\nSuites: c/\n")
	f.Fuzz(func(t *testing.T, in string) {
		srcs, err := ParseDeb822Sources(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		for _, s := range srcs {
			if checkSource(s) != nil {
				t.Fatalf("returned an invalid source %+v", s)
			}
		}
	})
}
