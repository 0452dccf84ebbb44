package dpkg

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// arHeader formats one ar member header.
func arHeader(name string, mtime int64, size int) string {
	return fmt.Sprintf("%-16s%-12d%-6s%-6s%-8s%-10d`\n", name, mtime, "0", "0", "100644", size)
}

// arFile builds a .deb-like ar archive with members of the given mtimes
// and contents.
func arFile(members ...struct {
	mtime int64
	data  string
}) string {
	var b strings.Builder
	b.WriteString("!<arch>\n")
	for i, m := range members {
		b.WriteString(arHeader(fmt.Sprintf("m%d/", i), m.mtime, len(m.data)))
		b.WriteString(m.data)
		if len(m.data)%2 == 1 {
			b.WriteString("\n")
		}
	}
	return b.String()
}

type member = struct {
	mtime int64
	data  string
}

func writeTemp(t testing.TB, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.deb")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDebMtime(t *testing.T) {
	tests := []struct {
		name string
		data string
		want int64
		err  string
	}{
		{"real-like", arFile(member{1700000000, "2.0\n"}, member{1700000005, "control"}, member{1700000003, "data.tar.xz content"}), 1700000005, ""},
		{"odd sizes padded", arFile(member{10, "a"}, member{30, "bcd"}, member{20, "e"}), 30, ""},
		{"one member", arFile(member{42, "2.0\n"}), 42, ""},
		{"no members", "!<arch>\n", 0, "empty ar archive"},
		{"not ar", "PK\x03\x04 a zip", 0, "not an ar archive"},
		{"empty", "", 0, "not an ar archive"},
		{"truncated header", "!<arch>\n" + arHeader("debian-binary", 1, 4)[:30], 0, "ar header"},
		{"truncated member", "!<arch>\n" + arHeader("debian-binary", 7, 400) + "2.0\n", 0, "debian-binary"},
		{"bad magic in header", "!<arch>\n" + strings.Replace(arHeader("a", 1, 0), "`\n", "xx", 1), 0, "terminator"},
		{"bad mtime", "!<arch>\n" + strings.Replace(arHeader("a", 1, 0), "1           ", "x1          ", 1), 0, "modification time"},
		{"negative size", "!<arch>\n" + arHeader("a", 1, -5), 0, "bad size"},
		{"huge size", "!<arch>\n" + fmt.Sprintf("%-16s%-12d%-6s%-6s%-8s%-10d`\n", "a", 5, "0", "0", "100644", int64(9999999999)), 0, "\"a\""},
		{"negative mtime", arFile(member{-100, "x"}), 0, "modification time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DebMtime(writeTemp(t, tt.data))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("DebMtime error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DebMtime: %v", err)
			}
			if want := time.Unix(tt.want, 0).UTC(); !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("DebMtime = %v, want %v", got, want)
			}
		})
	}
	t.Run("reads every member", func(t *testing.T) {
		var ms []member
		for i := range 9 {
			ms = append(ms, member{int64(i + 1), "x"})
		}
		got, err := DebMtime(writeTemp(t, arFile(ms...)))
		if err != nil || got.Unix() != 9 {
			t.Errorf("DebMtime = %v, %v; want 9", got.Unix(), err)
		}
	})
	if _, err := DebMtime(filepath.Join(t.TempDir(), "missing.deb")); !os.IsNotExist(err) {
		t.Errorf("DebMtime(missing) error %v", err)
	}
}

// FuzzDebMtime checks that DebMtime never panics on any file.
func FuzzDebMtime(f *testing.F) {
	f.Add([]byte(arFile(member{1700000000, "2.0\n"}, member{1700000005, "control"})))
	f.Add([]byte("!<arch>\n"))
	f.Add([]byte("!<arch>\n" + arHeader("a", 1, -5)))
	f.Add([]byte("!<arch>\n" + fmt.Sprintf("%-16s%-12d%-6s%-6s%-8s%-10d`\n", "a", 5, "0", "0", "100644", int64(9999999999))))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.deb")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := DebMtime(p)
		if err == nil && got.Location() != time.UTC {
			t.Fatalf("DebMtime = %v, not UTC", got)
		}
	})
}
