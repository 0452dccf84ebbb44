package server

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/patch/apt/archive"
)

// cgroupShare is the part of a cgroup's memory limit the Go runtime's
// soft limit takes by default: the rest is for what the runtime does not
// count (SQLite's page caches, the executable's pages, the sandboxes'
// processes of patch scripts, which share the cgroup).
const cgroupShare = 0.75

// ApplyMemory sets the process-wide memory bounds of cfg, once, before the
// server starts: the parsed package indexes kept between patches
// (patch.indexMemory) and the Go runtime's soft memory limit
// (memoryLimit). It returns the soft limit set (0: none) and where it
// came from, for the log.
func ApplyMemory(cfg config.Config) (int64, string) {
	if cfg.Patch.IndexMemory > 0 {
		archive.SetParsedIndexMemory(cfg.Patch.IndexMemory)
	}
	limit, from := memoryLimit(cfg.MemoryLimit, os.Getenv("GOMEMLIMIT"), "/")
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	return limit, from
}

// memoryLimit decides the soft memory limit to set (0: leave the
// runtime's) from memoryLimit, $GOMEMLIMIT and the memory limit of the
// process's cgroup under root ("/" but in tests).
func memoryLimit(configured int64, gomemlimit, root string) (int64, string) {
	switch {
	case configured > 0:
		return configured, "memoryLimit"
	case configured == config.NoMemoryLimit:
		return 0, "none (memoryLimit: -1)"
	case gomemlimit != "":
		return 0, "GOMEMLIMIT=" + gomemlimit
	}
	if max, where := cgroupMemoryMax(root); max > 0 {
		return int64(float64(max) * cgroupShare), fmt.Sprintf("%.0f%% of %s (%d bytes)", cgroupShare*100, where, max)
	}
	return 0, "none (no cgroup memory limit)"
}

// cgroupMemoryMax returns the memory limit of the process's cgroup
// (v2's memory.max, else v1's memory.limit_in_bytes) and the file it
// read, or 0 when there is none. In a cgroup namespace the process's own
// cgroup is the mount's root, which is also looked at.
func cgroupMemoryMax(root string) (int64, string) {
	paths := map[string]string{} // hierarchy ("" for v2, "memory" for v1) -> cgroup path
	if b, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.SplitN(sc.Text(), ":", 3)
			if len(f) != 3 {
				continue
			}
			for c := range strings.SplitSeq(f[1], ",") {
				if c == "" || c == "memory" {
					paths[c] = f[2]
				}
			}
		}
	}
	for _, c := range []struct{ dir, hierarchy, file string }{
		{"sys/fs/cgroup", "", "memory.max"},
		{"sys/fs/cgroup/memory", "memory", "memory.limit_in_bytes"},
	} {
		for _, p := range []string{paths[c.hierarchy], "/"} {
			if p == "" {
				continue
			}
			f := filepath.Join(root, c.dir, filepath.Clean("/"+p), c.file)
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			s := strings.TrimSpace(string(b))
			n, err := strconv.ParseInt(s, 10, 64)
			if s == "max" || err != nil || n <= 0 || n >= 1<<60 { // v1 writes about 2^63 for none
				break
			}
			return n, filepath.Join("/", strings.TrimPrefix(f, root))
		}
	}
	return 0, ""
}
