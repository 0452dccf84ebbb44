package server

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/patch/apt/archive"
)

// TestMemoryLimitDecision: memoryLimit wins, -1 sets none, GOMEMLIMIT is
// left to the runtime, else three quarters of the cgroup's limit (v2's
// memory.max, v1's memory.limit_in_bytes; "max" and v1's huge value are
// none).
func TestMemoryLimitDecision(t *testing.T) {
	cgroup := func(t *testing.T, files map[string]string) string {
		root := t.TempDir()
		for name, text := range files {
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	const gib = 1 << 30
	for _, tc := range []struct {
		name       string
		configured int64
		gomemlimit string
		files      map[string]string
		want       int64
		from       string
	}{
		{name: "configured", configured: 512 << 20, files: map[string]string{"sys/fs/cgroup/memory.max": "1073741824\n"}, want: 512 << 20, from: "memoryLimit"},
		{name: "none", configured: config.NoMemoryLimit, files: map[string]string{"sys/fs/cgroup/memory.max": "1073741824\n"}, from: "none"},
		{name: "GOMEMLIMIT", gomemlimit: "300MiB", files: map[string]string{"sys/fs/cgroup/memory.max": "1073741824\n"}, from: "GOMEMLIMIT=300MiB"},
		{name: "v2 own cgroup", files: map[string]string{"proc/self/cgroup": "0::/system.slice/drydock.service\n",
			"sys/fs/cgroup/system.slice/drydock.service/memory.max": "1073741824\n", "sys/fs/cgroup/memory.max": "max\n"},
			want: gib * 3 / 4, from: "/sys/fs/cgroup/system.slice/drydock.service/memory.max"},
		{name: "v2 namespace root", files: map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "2147483648\n"},
			want: 2 * gib * 3 / 4, from: "/sys/fs/cgroup/memory.max"},
		{name: "v2 max", files: map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "max\n"}, from: "none"},
		{name: "v1", files: map[string]string{"proc/self/cgroup": "4:memory:/docker/abc\n0::/\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "1073741824\n"}, want: gib * 3 / 4, from: "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes"},
		{name: "v1 unlimited", files: map[string]string{"proc/self/cgroup": "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, from: "none"},
		{name: "no cgroup files", from: "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, from := memoryLimit(tc.configured, tc.gomemlimit, cgroup(t, tc.files))
			if got != tc.want || !strings.Contains(from, tc.from) {
				t.Errorf("limit %d (%s), want %d (%s)", got, from, tc.want, tc.from)
			}
		})
	}
}

// TestApplyMemory: the keys reach the process: the parsed-index bound and
// the runtime's soft limit.
func TestApplyMemory(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetMemoryLimit(before)
		archive.SetParsedIndexMemory(archive.DefaultParsedIndexMemory)
	})
	cfg := config.Default()
	cfg.Patch.IndexMemory = 20 << 20
	cfg.MemoryLimit = 900 << 20
	if got, from := ApplyMemory(cfg); got != cfg.MemoryLimit || from != "memoryLimit" {
		t.Errorf("ApplyMemory: %d (%s), want %d (memoryLimit)", got, from, cfg.MemoryLimit)
	}
	if got := debug.SetMemoryLimit(-1); got != cfg.MemoryLimit {
		t.Errorf("runtime's soft limit %d, want %d", got, cfg.MemoryLimit)
	}
	if got := archive.ParsedIndexMemory(); got != cfg.Patch.IndexMemory {
		t.Errorf("parsed-index bound %d, want %d", got, cfg.Patch.IndexMemory)
	}
	cfg.Patch.IndexMemory = 0 // the default: the bound is left as it is
	ApplyMemory(cfg)
	if got := archive.ParsedIndexMemory(); got != 20<<20 {
		t.Errorf("patch.indexMemory 0 changed the bound to %d", got)
	}
}
