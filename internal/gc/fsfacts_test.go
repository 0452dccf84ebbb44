package gc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fsFacts describes the filesystem holding dir from what /proc says: its
// type and device and, for ext4, whether it has a journal and whether it
// discards freed blocks. These decide what the latency of writes during a
// collection means: ext4 without a journal makes every file creation skip
// the inodes deleted in the last minute, one buffer-cache lookup each (see
// BenchmarkPushDuringGC), and a discard mount sends the device a discard
// for each freed block. It also returns the name of the block device
// ("" when none, as for tmpfs), for diskStats.
func fsFacts(dir string) (string, string) {
	abs, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "unknown filesystem: " + err.Error(), ""
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "unknown filesystem: " + err.Error(), ""
	}
	m, ok := mountOf(string(mi), abs)
	if !ok {
		return "unknown filesystem: no mount holds " + abs, ""
	}
	s := fmt.Sprintf("%s on %s (%s, mounted at %s)", abs, m.fstype, m.source, m.point)
	name := blockDevice(m.devno)
	if m.fstype != "ext4" {
		return s, name
	}
	if name == "" {
		return s + ": device not in /proc/partitions, journal unknown", ""
	}
	var facts []string
	// jbd2 lists one directory per journal, named DEVICE-INODE.
	if js, _ := filepath.Glob("/proc/fs/jbd2/" + name + "-*"); len(js) > 0 {
		facts = append(facts, "journal")
	} else {
		facts = append(facts, "NO journal: creations skip recently deleted inodes")
	}
	if opts, err := os.ReadFile("/proc/fs/ext4/" + name + "/options"); err == nil {
		for o := range strings.Lines(string(opts)) {
			if o = strings.TrimSpace(o); o == "discard" {
				facts = append(facts, "discard")
			}
		}
	}
	return s + ": " + strings.Join(facts, ", "), name
}

// diskStats is a block device's counters from /proc/diskstats: requests
// completed and the milliseconds the device was busy.
type diskStats struct {
	writes, discards, flushes, busyMs int64
}

// readDiskStats returns dev's counters (zero when unknown; discards and
// flushes stay zero on kernels that do not count them).
func readDiskStats(dev string) diskStats {
	data, err := os.ReadFile("/proc/diskstats")
	if err != nil || dev == "" {
		return diskStats{}
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 14 || f[2] != dev {
			continue
		}
		n := func(i int) int64 {
			if i >= len(f) {
				return 0
			}
			v, _ := strconv.ParseInt(f[i], 10, 64)
			return v
		}
		return diskStats{writes: n(7), discards: n(14), flushes: n(18), busyMs: n(12)}
	}
	return diskStats{}
}

func (d diskStats) sub(o diskStats) diskStats {
	return diskStats{d.writes - o.writes, d.discards - o.discards, d.flushes - o.flushes, d.busyMs - o.busyMs}
}

func (d diskStats) String() string {
	return fmt.Sprintf("%d writes, %d discards, %d flushes, busy %d ms", d.writes, d.discards, d.flushes, d.busyMs)
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	devno, point, fstype, source string
}

// mountOf returns the mount of mountinfo that holds path: the last one
// (mounts stack) with the longest mount point that is path or one of its
// parents.
func mountOf(mountinfo, path string) (mount, bool) {
	var best mount
	found := false
	for line := range strings.Lines(mountinfo) {
		// ID PARENT MAJOR:MINOR ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
		pre, post, ok := strings.Cut(strings.TrimSpace(line), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 2 {
			continue
		}
		point := unescapeMount(f[4])
		if point != "/" && path != point && !strings.HasPrefix(path, point+"/") {
			continue
		}
		if !found || len(point) >= len(best.point) {
			best, found = mount{devno: f[2], point: point, fstype: g[0], source: unescapeMount(g[1])}, true
		}
	}
	return best, found
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// blockDevice returns the name of the block device MAJOR:MINOR from
// /proc/partitions ("" when it is not one, as for tmpfs).
func blockDevice(devno string) string {
	data, err := os.ReadFile("/proc/partitions")
	if err != nil {
		return ""
	}
	major, minor, _ := strings.Cut(devno, ":")
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == major && f[1] == minor {
			return f[3]
		}
	}
	return ""
}

func TestMountOf(t *testing.T) {
	const mi = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
30 22 0:26 / /dev/shm rw,nosuid,nodev shared:5 - tmpfs tmpfs rw
40 22 7:0 / /work/jfs rw,relatime shared:9 - ext4 /dev/loop0 rw
41 22 7:1 / /work/j\040s rw,relatime - ext4 /dev/loop1 rw
`
	for _, tc := range []struct{ path, point, devno, fstype string }{
		{"/tmp/x", "/", "254:0", "ext4"},
		{"/work/jfs/a/b", "/work/jfs", "7:0", "ext4"},
		{"/work/jfs", "/work/jfs", "7:0", "ext4"},
		{"/work/jfsx/a", "/", "254:0", "ext4"},
		{"/dev/shm/d", "/dev/shm", "0:26", "tmpfs"},
		{"/work/j s/d", "/work/j s", "7:1", "ext4"},
	} {
		m, ok := mountOf(mi, tc.path)
		if !ok || m.point != tc.point || m.devno != tc.devno || m.fstype != tc.fstype {
			t.Errorf("mountOf(%q) = %+v, %v; want %s %s %s", tc.path, m, ok, tc.point, tc.devno, tc.fstype)
		}
	}
}
