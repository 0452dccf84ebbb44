package osinfo

import (
	"errors"
	"io/fs"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/drydock-project/drydock/internal/refusal"
	"github.com/drydock-project/drydock/internal/rootfs"
	"github.com/drydock-project/drydock/internal/testimage"
)

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"debian", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
			map[string]string{"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "NAME": "Debian GNU/Linux", "VERSION_ID": "12", "ID": "debian"}},
		{"comments and blanks", "# a comment\n\n  # indented comment\nID=alpine\n", map[string]string{"ID": "alpine"}},
		{"single quotes keep backslashes", `NAME='a \"b\" $c'`, map[string]string{"NAME": `a \"b\" $c`}},
		{"double-quote escapes", `NAME="say \"hi\" \\ \$HOME \` + "`" + `x\` + "`" + ` \n"`,
			map[string]string{"NAME": "say \"hi\" \\ $HOME `x` \\n"}},
		{"unquoted escapes", `NAME=a\ b\"c`, map[string]string{"NAME": `a b"c`}},
		{"concatenation", `NAME="a"'b'c`, map[string]string{"NAME": "abc"}},
		{"trailing comment after space", `ID=debian # the id`, map[string]string{"ID": "debian"}},
		{"empty value", "VERSION_ID=\nID=\"\"", map[string]string{"VERSION_ID": "", "ID": ""}},
		{"unterminated quote skipped", "NAME=\"broken\nID=ok", map[string]string{"ID": "ok"}},
		{"invalid keys skipped", "1ID=x\nA-B=y\n=z\nnot an assignment\nOK_1=v", map[string]string{"OK_1": "v"}},
		{"CRLF and spaces", "ID=debian\r\n  VERSION_ID=\"12\"  \r\n", map[string]string{"ID": "debian", "VERSION_ID": "12"}},
		{"later wins", "ID=a\nID=b", map[string]string{"ID": "b"}},
		{"equals in value", `X="a=b"`, map[string]string{"X": "a=b"}},
		{"utf-8", `PRETTY_NAME="Débian ✓"`, map[string]string{"PRETTY_NAME": "Débian ✓"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOSRelease(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add("ID=debian\nVERSION_ID=\"12\"\n")
	f.Add(`NAME='x'"y"\z # c`)
	f.Add("A=\"\\")
	f.Add("A='")
	f.Fuzz(func(t *testing.T, in string) {
		kv, err := ParseOSRelease(strings.NewReader(in))
		if err != nil {
			return
		}
		for k := range kv {
			if !validKey(k) {
				t.Fatalf("invalid key %q", k)
			}
		}
		fsys := fstest.MapFS{"etc/os-release": {Data: []byte(in)}}
		o, err := Detect(fsys)
		if err == nil && o.Family == FamilyUnknown {
			t.Fatal("unknown family without an error")
		}
		_ = o.ReleaseKey()
	})
}

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for p, body := range files {
		if strings.HasPrefix(body, "->") {
			m[p] = &fstest.MapFile{Data: []byte(strings.TrimPrefix(body, "->")), Mode: fs.ModeSymlink}
			continue
		}
		if body == "/" {
			m[p] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
			continue
		}
		m[p] = &fstest.MapFile{Data: []byte(body)}
	}
	return m
}

func TestDetect(t *testing.T) {
	const ubuntu = `PRETTY_NAME="Ubuntu 22.04.5 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.5 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
`
	tests := []struct {
		name   string
		files  map[string]string
		want   OS
		key    string
		errIs  error
		errHas string
	}{
		{
			name:  "ubuntu",
			files: map[string]string{"etc/os-release": ubuntu, "etc/debian_version": "bookworm/sid\n", "bin/sh": "", "var/lib/dpkg/status": ""},
			want: OS{ID: "ubuntu", IDLike: []string{"debian"}, Name: "Ubuntu", PrettyName: "Ubuntu 22.04.5 LTS", VersionID: "22.04",
				VersionCodename: "jammy", Family: FamilyDebian, DebianVersion: "bookworm/sid", Source: "etc/os-release"},
			key: "22.04",
		},
		{
			name:  "os-release symlink into usr/lib",
			files: map[string]string{"etc/os-release": "->../usr/lib/os-release", "usr/lib/os-release": "ID=debian\nVERSION_ID=\"12\"\n", "etc/debian_version": "12.8"},
			want:  OS{ID: "debian", VersionID: "12", Family: FamilyDebian, DebianVersion: "12.8", Source: "etc/os-release"},
			key:   "12",
		},
		{
			name:  "only usr/lib/os-release",
			files: map[string]string{"usr/lib/os-release": "ID=debian\nVERSION_ID=11\n"},
			want:  OS{ID: "debian", VersionID: "11", Family: FamilyDebian, Source: "usr/lib/os-release"},
			key:   "11",
		},
		{
			name:  "debian testing: codename from debian_version",
			files: map[string]string{"etc/os-release": "PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\nID=debian\nVERSION_CODENAME=trixie\n", "etc/debian_version": "trixie/sid\n"},
			want:  OS{ID: "debian", PrettyName: "Debian GNU/Linux trixie/sid", VersionCodename: "trixie", Family: FamilyDebian, DebianVersion: "trixie/sid", Source: "etc/os-release"},
			key:   "trixie",
		},
		{
			name:  "debian_version only",
			files: map[string]string{"etc/debian_version": "10.13\n"},
			want:  OS{ID: "debian", Name: "Debian GNU/Linux", PrettyName: "Debian GNU/Linux 10.13", VersionID: "10", Family: FamilyDebian, DebianVersion: "10.13", Source: "etc/debian_version"},
			key:   "10",
		},
		{
			name: "alpine",
			files: map[string]string{"etc/os-release": "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.21.2\nPRETTY_NAME=\"Alpine Linux v3.21\"\n",
				"etc/alpine-release": "3.21.2\n"},
			want: OS{ID: "alpine", Name: "Alpine Linux", PrettyName: "Alpine Linux v3.21", VersionID: "3.21.2", Family: FamilyAlpine, Source: "etc/os-release"},
			key:  "3.21",
		},
		{
			name:  "alpine edge",
			files: map[string]string{"etc/os-release": "ID=alpine\nVERSION_ID=3.22.0_alpha20250108\n"},
			want:  OS{ID: "alpine", VersionID: "3.22.0_alpha20250108", Family: FamilyAlpine, Source: "etc/os-release"},
			key:   "edge",
		},
		{
			name:  "alpine-release only",
			files: map[string]string{"etc/alpine-release": "3.19.1\n"},
			want:  OS{ID: "alpine", Name: "Alpine Linux", PrettyName: "Alpine Linux v3.19.1", VersionID: "3.19.1", Family: FamilyAlpine, Source: "etc/alpine-release"},
			key:   "3.19",
		},
		{
			name:  "rocky via ID_LIKE",
			files: map[string]string{"etc/os-release": "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.5\"\n"},
			want:  OS{ID: "rocky", IDLike: []string{"rhel", "centos", "fedora"}, VersionID: "9.5", Family: FamilyRHEL, Source: "etc/os-release"},
			key:   "9",
		},
		{
			name:  "derivative via ID_LIKE",
			files: map[string]string{"etc/os-release": "ID=linuxmint\nID_LIKE=\"ubuntu debian\"\nVERSION_ID=21.3\n"},
			want:  OS{ID: "linuxmint", IDLike: []string{"ubuntu", "debian"}, VersionID: "21.3", Family: FamilyDebian, Source: "etc/os-release"},
			key:   "21.3",
		},
		{
			name:  "centos-release only",
			files: map[string]string{"etc/centos-release": "CentOS Linux release 7.9.2009 (Core)\n", "etc/redhat-release": "->centos-release"},
			want:  OS{ID: "centos", IDLike: []string{"rhel", "fedora"}, Name: "CentOS Linux", PrettyName: "CentOS Linux release 7.9.2009 (Core)", VersionID: "7", Family: FamilyRHEL, Source: "etc/centos-release"},
			key:   "7",
		},
		{
			name:  "redhat-release only",
			files: map[string]string{"etc/redhat-release": "Red Hat Enterprise Linux Server release 7.9 (Maipo)\n"},
			want:  OS{ID: "rhel", IDLike: []string{"fedora"}, Name: "Red Hat Enterprise Linux Server", PrettyName: "Red Hat Enterprise Linux Server release 7.9 (Maipo)", VersionID: "7.9", Family: FamilyRHEL, Source: "etc/redhat-release"},
			key:   "7",
		},
		{
			name:  "distroless",
			files: map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n", "etc/debian_version": "12.8", "var/lib/dpkg/status.d/libc6": "Package: libc6\n"},
			want:  OS{ID: "debian", VersionID: "12", Family: FamilyDebian, DebianVersion: "12.8", Distroless: true, Source: "etc/os-release"},
			key:   "12",
		},
		{
			name:  "status.d but a shell: not distroless",
			files: map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n", "var/lib/dpkg/status.d/libc6": "x", "bin/sh": "->busybox", "bin/busybox": ""},
			want:  OS{ID: "debian", VersionID: "12", Family: FamilyDebian, Source: "etc/os-release"},
			key:   "12",
		},
		{
			name:  "status.d and status: not distroless",
			files: map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n", "var/lib/dpkg/status.d": "/", "var/lib/dpkg/status": ""},
			want:  OS{ID: "debian", VersionID: "12", Family: FamilyDebian, Source: "etc/os-release"},
			key:   "12",
		},
		{name: "empty image", files: map[string]string{"bin/true": ""}, errIs: ErrUnsupportedOS, errHas: "no os-release"},
		{
			name:   "unknown distro",
			files:  map[string]string{"etc/os-release": "ID=opensuse-leap\nID_LIKE=\"suse opensuse\"\nVERSION_ID=15.6\nPRETTY_NAME=\"openSUSE Leap 15.6\"\n"},
			want:   OS{ID: "opensuse-leap", IDLike: []string{"suse", "opensuse"}, VersionID: "15.6", PrettyName: "openSUSE Leap 15.6", Family: FamilyUnknown, Source: "etc/os-release"},
			key:    "15.6",
			errIs:  ErrUnsupportedOS,
			errHas: "openSUSE Leap 15.6",
		},
		{
			name:  "os-release without ID",
			files: map[string]string{"etc/os-release": "NAME=Something\n"},
			want:  OS{ID: "linux", Name: "Something", Family: FamilyUnknown, Source: "etc/os-release"},
			errIs: ErrUnsupportedOS,
		},
		{name: "os-release is a directory", files: map[string]string{"etc/os-release": "/"}, errHas: "read os-release etc/os-release"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect(mapFS(tt.files))
			if tt.errIs != nil && !errors.Is(err, tt.errIs) || tt.errHas != "" && (err == nil || !strings.Contains(err.Error(), tt.errHas)) {
				t.Fatalf("err = %v; want %v containing %q", err, tt.errIs, tt.errHas)
			}
			if tt.errIs == nil && tt.errHas == "" && err != nil {
				t.Fatal(err)
			}
			if errors.Is(err, ErrUnsupportedOS) {
				// The gate must not retry: same image, same refusal.
				if k, ok := refusal.KindOf(err); !ok || k != refusal.Unsupported || !refusal.IsPermanent(err) {
					t.Errorf("err = %v: kind %q, permanent %v; want a permanent unsupported refusal", err, k, refusal.IsPermanent(err))
				}
			}
			if !equalOS(got, tt.want) {
				t.Errorf("Detect =\n %+v\nwant\n %+v", got, tt.want)
			}
			if k := got.ReleaseKey(); k != tt.key {
				t.Errorf("ReleaseKey = %q, want %q", k, tt.key)
			}
		})
	}
}

func equalOS(a, b OS) bool {
	if !slices.Equal(a.IDLike, b.IDLike) {
		return false
	}
	a.IDLike, b.IDLike = nil, nil
	return reflect.DeepEqual(a, b)
}

func TestDetectTestImages(t *testing.T) {
	tests := []struct {
		spec       testimage.Spec
		key        string
		codename   string
		distroless bool
	}{
		{testimage.Bookworm, "12", "bookworm", false},
		{testimage.BullseyeNginxCurl, "11", "bullseye", false},
		{testimage.Trixie, "13", "trixie", false},
		{testimage.DistrolessBookworm, "12", "bookworm", true},
	}
	for _, tt := range tests {
		t.Run(tt.spec.Name, func(t *testing.T) {
			ti := testimage.Require(t, tt.spec)
			img, err := ti.Open()
			if err != nil {
				t.Fatal(err)
			}
			fsys, err := rootfs.New(t.Context(), img, rootfs.WithContents(func(p string) bool {
				return strings.HasSuffix(p, "os-release") || p == "etc/debian_version"
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer fsys.Close()
			o, err := Detect(fsys)
			if err != nil {
				t.Fatal(err)
			}
			if o.ID != "debian" || o.Family != FamilyDebian || o.ReleaseKey() != tt.key ||
				o.VersionCodename != tt.codename || o.Distroless != tt.distroless {
				t.Errorf("Detect = %+v (key %q); want debian %s %s distroless=%v", o, o.ReleaseKey(), tt.key, tt.codename, tt.distroless)
			}
			t.Logf("%s: %+v", tt.spec.Name, o)
		})
	}
}
