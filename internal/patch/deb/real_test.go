package deb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/drydock-project/drydock/internal/patch/xzdec"
	"github.com/drydock-project/drydock/internal/testenv"
)

// realPackages lists packages to test against, each with alternatives for
// releases that renamed it.
var realPackages = [][]string{
	{"base-files"},
	{"libssl3", "libssl3t64"},
	{"ca-certificates"},
	{"nginx-light", "nginx"},
	{"tzdata"},
}

var aptUpdate sync.Once

// realDebs returns paths of real .deb files, downloaded with apt-get into
// ${DRYDOCK_CACHE:-$HOME/.cache/drydock}/debs/ unless already there.
func realDebs(t *testing.T) []string {
	t.Helper()
	testenv.RequireTool(t, "apt-get", "apt")
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	cache := os.Getenv("DRYDOCK_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			testenv.Missing(t, "no cache dir: %v", err)
		}
		cache = filepath.Join(home, ".cache", "drydock")
	}
	dir := filepath.Join(cache, "debs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, alts := range realPackages {
		p, err := fetchDeb(dir, alts)
		if err != nil {
			testenv.Missing(t, "cannot download %s with apt-get: %v", alts[0], err)
		}
		paths = append(paths, p)
	}
	return paths
}

func fetchDeb(dir string, alts []string) (string, error) {
	for _, name := range alts {
		if m, _ := filepath.Glob(filepath.Join(dir, name+"_*.deb")); len(m) > 0 {
			return m[len(m)-1], nil
		}
	}
	var last error
	for try := 0; try < 2; try++ {
		for _, name := range alts {
			cmd := exec.Command("apt-get", "download", "-q", name)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if m, _ := filepath.Glob(filepath.Join(dir, name+"_*.deb")); err == nil && len(m) > 0 {
				return m[len(m)-1], nil
			}
			last = fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		}
		aptUpdate.Do(func() { _ = exec.Command("apt-get", "update", "-q").Run() })
	}
	return "", last
}

// dpkgEntry is one line of dpkg-deb -c.
type dpkgEntry struct {
	typ         byte
	mode        int64
	owner, name string
	size        int64
	link        string
}

func (e dpkgEntry) String() string {
	return fmt.Sprintf("%c %04o %s %d %s -> %s", e.typ, e.mode, e.owner, e.size, e.name, e.link)
}

// parsePerm turns "-rwsr-xr-x" into a type and permission bits.
func parsePerm(s string) (byte, int64) {
	types := map[byte]byte{'-': tar.TypeReg, 'd': tar.TypeDir, 'l': tar.TypeSymlink, 'h': tar.TypeLink}
	var mode int64
	for i, c := range s[1:10] {
		bit := int64(1) << (8 - i)
		switch c {
		case 'r', 'w', 'x':
			mode |= bit
		case 's', 't':
			mode |= bit
			fallthrough
		case 'S', 'T':
			mode |= []int64{04000, 02000, 01000}[i/3]
		}
	}
	return types[s[0]], mode
}

func dpkgContents(t *testing.T, path string) []dpkgEntry {
	out, err := exec.Command("dpkg-deb", "-c", path).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -c %s: %v", path, err)
	}
	var ents []dpkgEntry
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 2)
		rest := strings.Fields(f[1])
		// perm owner size date time name...
		var e dpkgEntry
		e.typ, e.mode = parsePerm(f[0])
		e.owner = rest[0]
		e.size, _ = strconv.ParseInt(rest[1], 10, 64)
		name := strings.Join(rest[4:], " ")
		switch e.typ {
		case tar.TypeSymlink:
			name, e.link, _ = strings.Cut(name, " -> ")
		case tar.TypeLink:
			name, e.link, _ = strings.Cut(name, " link to ")
			e.link = strings.TrimPrefix(e.link, "./")
		}
		if e.typ != tar.TypeReg {
			e.size = 0
		}
		e.name = strings.TrimSuffix(strings.TrimPrefix(name, "./"), "/")
		if e.name != "" {
			ents = append(ents, e)
		}
	}
	return ents
}

// TestNormalizeRealDebs: both xz decoders give byte-identical normalized
// packages (the decompressed control.tar and data.tar) of real .debs, at
// least one of which has an xz member.
func TestNormalizeRealDebs(t *testing.T) {
	xzds := xzDecoders(t)
	xzMembers := 0
	for _, path := range realDebs(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		xzMembers += bytes.Count(data, []byte(".tar.xz "))
		var outs [][]byte
		for _, xzd := range xzds {
			out, err := normalizedWith(t, xzd, data, Limits{})
			if err != nil {
				t.Fatalf("%s, %v: %v", filepath.Base(path), xzd, err)
			}
			outs = append(outs, out)
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("%s: %v gives %d bytes, %v %d bytes, not the same", filepath.Base(path), xzds[0], len(outs[0]), xzds[1], len(outs[1]))
		}
		t.Logf("%s: %d bytes normalized", filepath.Base(path), len(outs[0]))
	}
	if xzMembers == 0 {
		t.Error("no real package has an xz member: nothing compared")
	}
}

func TestReadRealDebs(t *testing.T) {
	for _, xzd := range xzDecoders(t) {
		t.Run(decoderName(xzd), func(t *testing.T) { testReadRealDebs(t, xzd) })
	}
}

func testReadRealDebs(t *testing.T, xzd xzdec.Decoder) {
	for _, path := range realDebs(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var members []string
			if out, err := exec.Command("ar", "t", path).Output(); err == nil {
				members = strings.Fields(string(out))
			}
			t.Logf("ar members: %v", members)

			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var got []dpkgEntry
			sums := map[string]string{}
			var ctrlSeen bool
			ctrl, err := readWith(xzd, f, Limits{}, func(*Control) error { ctrlSeen = true; return nil },
				func(e *Entry, body io.Reader) error {
					if !ctrlSeen {
						t.Error("entry before onControl")
					}
					got = append(got, dpkgEntry{typ: e.Type, mode: e.Mode, owner: e.Uname + "/" + e.Gname,
						size: e.Size, name: e.Name, link: e.Linkname})
					switch e.Type {
					case tar.TypeReg:
						h := md5.New()
						n, err := io.Copy(h, body)
						if err != nil {
							return err
						}
						if n != e.Size {
							t.Errorf("%s: read %d bytes, want %d", e.Name, n, e.Size)
						}
						sums[e.Name] = hex.EncodeToString(h.Sum(nil))
					case tar.TypeLink:
						sums[e.Name] = sums[e.Linkname]
					}
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}

			want := dpkgContents(t, path)
			if len(got) != len(want) {
				t.Errorf("%d entries, dpkg-deb -c lists %d", len(got), len(want))
			}
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Errorf("entry %d:\n got %v\nwant %v", i, got[i], want[i])
				}
			}

			// The package's own md5sums must match what we streamed.
			md5sums := ctrl.Files["md5sums"]
			if md5sums == nil {
				t.Fatal("no md5sums control file")
			}
			checked := 0
			for line := range strings.Lines(string(md5sums)) {
				sum, name, ok := strings.Cut(strings.TrimSpace(line), "  ")
				if !ok {
					t.Errorf("bad md5sums line %q", line)
					continue
				}
				if sums[name] != sum {
					t.Errorf("%s: md5 %s, md5sums says %s", name, sums[name], sum)
				}
				checked++
			}
			t.Logf("%d entries, %d md5sums checked", len(got), checked)

			// Control files as dpkg-deb -e extracts them.
			dir := t.TempDir()
			if out, err := exec.Command("dpkg-deb", "-e", path, dir).CombinedOutput(); err != nil {
				t.Fatalf("dpkg-deb -e: %v: %s", err, out)
			}
			files, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != len(ctrl.Files) {
				t.Errorf("%d control files, dpkg-deb -e extracts %d", len(ctrl.Files), len(files))
			}
			for _, fi := range files {
				b, err := os.ReadFile(filepath.Join(dir, fi.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, ctrl.Files[fi.Name()]) {
					t.Errorf("control file %s differs from dpkg-deb -e", fi.Name())
				}
				if info, _ := fi.Info(); info != nil && int64(info.Mode().Perm())&0o111 != ctrl.Modes[fi.Name()]&0o111 {
					t.Errorf("control file %s: mode %o, dpkg-deb -e gives %v", fi.Name(), ctrl.Modes[fi.Name()], info.Mode())
				}
			}
			for _, field := range []string{"Package", "Version", "Architecture"} {
				out, err := exec.Command("dpkg-deb", "-f", path, field).Output()
				if err != nil {
					t.Fatal(err)
				}
				if v := strings.TrimSpace(string(out)); ctrl.Field(field) != v {
					t.Errorf("Field(%s) = %q, dpkg-deb -f says %q", field, ctrl.Field(field), v)
				}
			}
		})
	}
}
