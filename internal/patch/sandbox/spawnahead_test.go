package sandbox

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sandboxChildren lists this process's children that are sandbox
// processes (drydock-sandbox, or the shell waiting to become one).
func sandboxChildren(t *testing.T) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) || f[0] == "Z" {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(filepath.Dir(st), "cmdline"))
		argv0, _, _ := strings.Cut(string(cmd), "\x00")
		if argv0 == initArg0 || argv0 == "sh" {
			out = append(out, filepath.Base(filepath.Dir(st))+" "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return out
}

// TestDiffProcessSpawnedAhead: Open starts the diff's process while the
// commands run; Diff uses that one (none is left running after it), and
// a tree closed without a diff ends it.
func TestDiffProcessSpawnedAhead(t *testing.T) {
	s := newSandbox(t)
	img := bookworm(t)
	for _, diff := range []bool{true, false} {
		cs := newChangeset(t)
		addBytes(t, cs, "etc/drydock-cs", 0, 0, "from the changeset\n")
		tree, err := s.Open(t.Context(), img, cs)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := tree.Run(t.Context(), nil, "sh", "-c", "echo changed > /etc/motd"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if diff {
			if err := tree.Diff(cs, testMtime); err != nil {
				t.Fatal(err)
			}
			if cs.Get("etc/motd") == nil {
				t.Errorf("the diff missed etc/motd: %v", entries(cs))
			}
			if left := sandboxChildren(t); len(left) > 0 {
				t.Errorf("after Diff, sandbox processes still run: %q", left)
			}
		}
		if err := tree.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if left := sandboxChildren(t); len(left) > 0 {
			t.Errorf("diff %v: after Close, sandbox processes still run: %q", diff, left)
		}
	}
}
