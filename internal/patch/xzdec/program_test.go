package xzdec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/testenv"
)

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// settled polls f until it returns want or a second has passed, and
// returns its last value: goroutines take a moment to end.
func settled(want int, f func() int) int {
	n := f()
	for deadline := time.Now().Add(time.Second); n != want && time.Now().Before(deadline); n = f() {
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// TestProgramReaped: however a reader of the xz program ends (read to
// the end, stopped early, never read, failed, refused by the guard), Close
// leaves no process (not even a zombie), no descriptor and no goroutine
// behind.
func TestProgramReaped(t *testing.T) {
	path := testenv.RequireTool(t, "xz", "xz-utils")
	big := xzProgram(t, sample(2<<20), "-0")
	good := xzProgram(t, []byte("x"))
	fds, goroutines := countFDs(t), runtime.NumGoroutine()
	for _, tc := range []struct {
		name string
		in   []byte
		read int64 // bytes to read before Close, -1: all
	}{
		{"to the end", big, -1},
		{"stopped early", big, 100 << 10},
		{"never read", big, 0},
		{"failed", append(bytes.Clone(good), "junk"...), -1},
		{"refused dictionary", withDict(t, big, 40), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z, err := Program(path).NewReader(bytes.NewReader(tc.in), testMaxDict)
			if err != nil {
				t.Fatal(err)
			}
			pid := z.(*program).cmd.Process.Pid
			if tc.read < 0 {
				_, err = io.Copy(io.Discard, z)
			} else {
				_, err = io.CopyN(io.Discard, z, tc.read)
			}
			t.Logf("read: %v", err)
			if err := z.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("xz process %d is still there after Close (%v)", pid, err)
			}
			if _, err := z.Read(make([]byte, 1)); err == nil || err == io.EOF && tc.read >= 0 {
				t.Errorf("Read after Close: %v", err)
			}
		})
	}
	if n := settled(fds, func() int { return countFDs(t) }); n != fds {
		t.Errorf("%d open descriptors after, %d before", n, fds)
	}
	if n := settled(goroutines, runtime.NumGoroutine); n != goroutines {
		t.Errorf("%d goroutines after, %d before", n, goroutines)
	}
}

// TestProbe: the zero Decoder runs the host's xz only if it is XZ Utils
// (5.2 or later); another program called xz is not trusted with our
// options.
func TestProbe(t *testing.T) {
	path := testenv.RequireTool(t, "xz", "xz-utils")
	if got := probe("xz"); got != path {
		t.Errorf("probe(xz) = %q, want %q", got, path)
	}
	dir := t.TempDir()
	for name, version := range map[string]string{
		"busybox": "BusyBox v1.36.1 (2024-06-01) multi-call binary.",
		"old":     "xz (XZ Utils) 5.0.8\nliblzma 5.0.8",
		"newer":   "xz (XZ Utils) 6.0.0\nliblzma 6.0.0",
	} {
		script := fmt.Sprintf("#!/bin/sh\nprintf '%s\\n'\n", version)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	for name, want := range map[string]string{"busybox": "", "old": "", "newer": filepath.Join(dir, "newer")} {
		if got := probe(name); got != want {
			t.Errorf("probe(%s) = %q, want %q", name, got, want)
		}
	}
}
