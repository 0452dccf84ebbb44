package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
)

// idRange maps Count ids starting at Inside (in the sandbox's user
// namespace) to ids starting at Outside (on the host).
type idRange struct {
	Inside, Outside, Count uint32
}

// idMap is how the sandbox's user namespace maps user and group ids.
type idMap struct {
	// Rootless is true when drydock runs unprivileged: newuidmap and
	// newgidmap write the maps from the user's subordinate ranges.
	Rootless bool
	UIDs     []idRange
	GIDs     []idRange
}

// fingerprint names the map in cache keys: a tree extracted under one map
// has host owners that mean nothing under another.
func (m *idMap) fingerprint() string {
	var b strings.Builder
	for _, set := range [][]idRange{m.UIDs, m.GIDs} {
		for _, r := range set {
			fmt.Fprintf(&b, "%d:%d:%d,", r.Inside, r.Outside, r.Count)
		}
		b.WriteString(";")
	}
	return b.String()
}

// Files and tools of rootless mapping (shadow-utils' uidmap package).
const (
	subuidFile = "/etc/subuid"
	subgidFile = "/etc/subgid"
	maxSubFile = 4 << 20
)

// currentMap returns the map for the running user: as root, every id maps
// to itself; unprivileged, the user is root inside and its subordinate
// ranges follow from id 1. A missing piece is an *UnavailableError that
// says what to configure.
func currentMap() (*idMap, error) {
	uid, gid := os.Geteuid(), os.Getegid()
	if uid == 0 {
		full := []idRange{{0, 0, 1<<32 - 1}}
		return &idMap{UIDs: full, GIDs: full}, nil
	}
	u, err := user.LookupId(strconv.Itoa(uid))
	name := ""
	if err == nil {
		name = u.Username
	}
	who := fmt.Sprintf("user %s (uid %d)", name, uid)
	if name == "" {
		who = fmt.Sprintf("uid %d", uid)
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, unavailable("%s not found: drydock runs as %s and maps the user's subordinate ids into the sandbox with newuidmap and newgidmap; install them (Debian and Ubuntu: apt-get install uidmap; Fedora: dnf install shadow-utils)", tool, who)
		}
	}
	m := &idMap{Rootless: true}
	for _, f := range []struct {
		file string
		id   int
		dst  *[]idRange
		what string
	}{{subuidFile, uid, &m.UIDs, "uid"}, {subgidFile, gid, &m.GIDs, "gid"}} {
		start, count, err := subordinate(f.file, name, f.id)
		if err != nil {
			return nil, unavailable("reading %s: %v", f.file, err)
		}
		if count == 0 {
			return nil, unavailable("%s has no subordinate %s range in %s, so the sandbox cannot give files to the image's system users: add one, as root: usermod --add-sub%ss 100000-165535 %s (or append %q to %s; the same for %s)",
				who, f.what, f.file, f.what, orID(name, f.id), fmt.Sprintf("%s:100000:65536", orID(name, f.id)), f.file, otherFile(f.file))
		}
		*f.dst = []idRange{{0, uint32(f.id), 1}, {1, start, count}}
	}
	return m, nil
}

func orID(name string, id int) string {
	if name != "" {
		return name
	}
	return strconv.Itoa(id)
}

func otherFile(f string) string {
	if f == subuidFile {
		return subgidFile
	}
	return subuidFile
}

// subordinate returns the first range of file (/etc/subuid or
// /etc/subgid) that belongs to the user called name or with id id: its
// start and count (0 when there is none). Like shadow-utils, entries may
// name the user or its numeric id.
func subordinate(file, name string, id int) (start, count uint32, err error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return parseSubordinate(io.LimitReader(f, maxSubFile), name, id)
}

func parseSubordinate(r io.Reader, name string, id int) (start, count uint32, err error) {
	sc := bufio.NewScanner(r)
	ids := strconv.Itoa(id)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || (f[0] != ids && (name == "" || f[0] != name)) {
			continue
		}
		s, err1 := strconv.ParseUint(f[1], 10, 32)
		c, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || c == 0 || s+c > 1<<32-1 {
			continue
		}
		return uint32(s), uint32(c), nil
	}
	return 0, 0, sc.Err()
}

// writeMaps writes m for the process pid, which waits in its new user
// namespace: directly as root, through newuidmap and newgidmap otherwise.
func (m *idMap) writeMaps(pid int) error {
	if !m.Rootless {
		for _, f := range []struct {
			file string
			rs   []idRange
		}{{"uid_map", m.UIDs}, {"gid_map", m.GIDs}} {
			var b strings.Builder
			for _, r := range f.rs {
				fmt.Fprintf(&b, "%d %d %d\n", r.Inside, r.Outside, r.Count)
			}
			if err := os.WriteFile(fmt.Sprintf("/proc/%d/%s", pid, f.file), []byte(b.String()), 0); err != nil {
				return fmt.Errorf("writing the sandbox's %s: %w", f.file, err)
			}
		}
		return nil
	}
	for _, f := range []struct {
		tool string
		rs   []idRange
	}{{"newuidmap", m.UIDs}, {"newgidmap", m.GIDs}} {
		args := []string{strconv.Itoa(pid)}
		for _, r := range f.rs {
			args = append(args, strconv.FormatUint(uint64(r.Inside), 10), strconv.FormatUint(uint64(r.Outside), 10), strconv.FormatUint(uint64(r.Count), 10))
		}
		out, err := exec.Command(f.tool, args...).CombinedOutput()
		if err != nil {
			return unavailable("%s %s: %v: %s (check the user's ranges in %s and %s, and that %s is setuid root)",
				f.tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)), subuidFile, subgidFile, f.tool)
		}
	}
	return nil
}
