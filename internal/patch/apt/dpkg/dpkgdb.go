package dpkg

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// Paths of the dpkg database inside an image.
const (
	DpkgStatus  = "var/lib/dpkg/status"
	DpkgStatusD = "var/lib/dpkg/status.d"
	DpkgInfo    = "var/lib/dpkg/info"
)

// rawField is one field of a control stanza as written: its name and its
// value text (first line without the "Name:" and following space, then
// continuation lines each with their leading space), without the final
// newline.
type rawField struct {
	name  string
	value string
}

// parseStanza splits one control stanza into its fields, in order. It
// accepts what dpkg writes and what a .deb's control file holds: "Name:
// value" lines and continuation lines starting with a space or tab.
func parseStanza(text string) ([]rawField, error) {
	var out []rawField
	for i, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		switch {
		case line == "":
			return nil, fmt.Errorf("line %d: empty line inside a stanza", i+1)
		case line[0] == ' ' || line[0] == '\t':
			if len(out) == 0 {
				return nil, fmt.Errorf("line %d: continuation line before the first field", i+1)
			}
			out[len(out)-1].value += "\n" + line
		case line[0] == '#':
			continue
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return nil, fmt.Errorf("line %d: %q is not a field", i+1, truncate(line, 60))
			}
			out = append(out, rawField{name: name, value: strings.TrimLeft(value, " \t")})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty stanza")
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func fieldValue(fields []rawField, name string) string {
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			return strings.TrimSpace(f.value)
		}
	}
	return ""
}

// dpkgFieldOrder is the order in which dpkg writes the fields it knows in
// the status file (lib/dpkg/parse.c's field table); other fields follow
// in the order of the package's control file.
var dpkgFieldOrder = []string{
	"Package", "Essential", "Protected", "Status", "Priority", "Section", "Installed-Size", "Origin",
	"Maintainer", "Bugs", "Architecture", "Multi-Arch", "Source", "Version", "Config-Version",
	"Replaces", "Provides", "Depends", "Pre-Depends", "Recommends", "Suggests", "Breaks",
	"Conflicts", "Enhances", "Conffiles", "Filename", "Size", "MD5sum", "MSDOS-Filename",
	"Description", "Triggers-Pending", "Triggers-Awaited",
}

// Conffile is one entry of a status stanza's Conffiles field.
type Conffile struct {
	Path     string // absolute, as dpkg records it
	MD5      string // of the version the package shipped
	Obsolete bool
}

// statusStanza is the status entry dpkg writes for an installed package:
// the control fields of the .deb in dpkg's order, with Status and
// Conffiles. When distroless is set, the entry is written the way
// distroless images write status.d files: the control file as is, with
// Status after Package.
func statusStanza(control []rawField, conffiles []Conffile, distroless bool) string {
	fields := slices.DeleteFunc(slices.Clone(control), func(f rawField) bool {
		return strings.EqualFold(f.name, "Status") || strings.EqualFold(f.name, "Conffiles")
	})
	status := rawField{name: "Status", value: "install ok installed"}
	var b strings.Builder
	if distroless {
		for _, f := range fields {
			writeField(&b, f)
			if strings.EqualFold(f.name, "Package") {
				writeField(&b, status)
			}
		}
		return b.String()
	}
	fields = append(fields, status)
	if len(conffiles) > 0 {
		var v strings.Builder
		for _, c := range conffiles {
			v.WriteString("\n " + c.Path + " " + c.MD5)
			if c.Obsolete {
				v.WriteString(" obsolete")
			}
		}
		fields = append(fields, rawField{name: "Conffiles", value: v.String()})
	}
	rank := func(name string) int {
		i := slices.IndexFunc(dpkgFieldOrder, func(k string) bool { return strings.EqualFold(k, name) })
		if i < 0 {
			return len(dpkgFieldOrder)
		}
		return i
	}
	slices.SortStableFunc(fields, func(a, b rawField) int { return cmp.Compare(rank(a.name), rank(b.name)) })
	for _, f := range fields {
		writeField(&b, f)
	}
	return b.String()
}

func writeField(b *strings.Builder, f rawField) {
	b.WriteString(f.name)
	b.WriteString(":")
	if f.value != "" && !strings.HasPrefix(f.value, "\n") {
		b.WriteString(" ")
	}
	b.WriteString(f.value)
	b.WriteString("\n")
}

// statusFile is a dpkg status file split into its stanzas, so that the
// stanzas of packages a patch does not touch are written back byte for
// byte.
type statusFile struct {
	stanzas []statusEntry
}

type statusEntry struct {
	name, arch string
	text       string // the stanza, ending in "\n"
}

func parseStatusFile(data []byte) (*statusFile, error) {
	sf := &statusFile{}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	for chunk := range strings.SplitSeq(text, "\n\n") {
		chunk = strings.Trim(chunk, "\n")
		if chunk == "" {
			continue
		}
		fields, err := parseStanza(chunk)
		if err != nil {
			return nil, fmt.Errorf("%s: stanza %d: %w", DpkgStatus, len(sf.stanzas)+1, err)
		}
		sf.stanzas = append(sf.stanzas, statusEntry{
			name: fieldValue(fields, "Package"), arch: fieldValue(fields, "Architecture"), text: chunk + "\n",
		})
	}
	return sf, nil
}

// find returns the stanza of an installed package, its architecture
// matched as dpkg matches it ("all" and the native arch are one namespace
// unless the package is Multi-Arch: same, which is never "all").
func (sf *statusFile) find(name, arch string) int {
	return slices.IndexFunc(sf.stanzas, func(e statusEntry) bool {
		return e.name == name && (e.arch == arch || e.arch == "all" || arch == "all")
	})
}

// set replaces (or adds) the stanza of a package.
func (sf *statusFile) set(name, arch, stanza string) {
	e := statusEntry{name: name, arch: arch, text: stanza}
	if i := sf.find(name, arch); i >= 0 {
		sf.stanzas[i] = e
		return
	}
	sf.stanzas = append(sf.stanzas, e)
}

// bytes writes the status file. dpkg keeps it sorted by package name and
// architecture; an image whose file was sorted stays sorted, one that was
// not keeps its order with new packages at the end.
func (sf *statusFile) bytes(sorted bool) []byte {
	entries := slices.Clone(sf.stanzas)
	if sorted {
		slices.SortStableFunc(entries, func(a, b statusEntry) int {
			return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.arch, b.arch))
		})
	}
	var buf bytes.Buffer
	for _, e := range entries {
		buf.WriteString(e.text)
		buf.WriteString("\n")
	}
	return buf.Bytes()
}

func (sf *statusFile) isSorted() bool {
	return slices.IsSortedFunc(sf.stanzas, func(a, b statusEntry) int {
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.arch, b.arch))
	})
}

// parseConffiles reads the Conffiles field of an installed package's
// stanza.
func parseConffiles(stanza string) []Conffile {
	fields, err := parseStanza(stanza)
	if err != nil {
		return nil
	}
	var out []Conffile
	for f := range strings.SplitSeq(fieldValue(fields, "Conffiles"), "\n") {
		// "PATH HASH [obsolete] [remove-on-upgrade]": PATH may hold spaces,
		// so words are taken from the end, as dpkg does.
		line := strings.TrimSpace(f)
		obsolete := false
		for {
			head, last, ok := cutLast(line)
			if !ok || (last != "obsolete" && last != "remove-on-upgrade") {
				break
			}
			obsolete = obsolete || last == "obsolete"
			line = head
		}
		path, hash, ok := cutLast(line)
		if !ok || !strings.HasPrefix(path, "/") {
			continue
		}
		out = append(out, Conffile{Path: path, MD5: hash, Obsolete: obsolete})
	}
	return out
}

// cutLast splits s at its last run of spaces.
func cutLast(s string) (head, last string, ok bool) {
	i := strings.LastIndexAny(s, " \t")
	if i < 0 {
		return "", s, false
	}
	return strings.TrimRight(s[:i], " \t"), s[i+1:], true
}

// InfoName is the base name of a package's files under var/lib/dpkg/info:
// "name:arch" for Multi-Arch: same packages, "name" otherwise.
func InfoName(name, arch, multiArch string) string {
	if multiArch == "same" {
		return name + ":" + arch
	}
	return name
}

// parseList reads an info/*.list file (one absolute path a line) into
// paths relative to the root, without the root itself.
func parseList(data []byte) []string {
	var out []string
	for l := range strings.SplitSeq(string(data), "\n") {
		if l = strings.TrimPrefix(strings.TrimSpace(l), "/"); l != "" && l != "." {
			out = append(out, l)
		}
	}
	return out
}

// parseMD5sums reads a md5sums control file ("hash  path" lines, paths
// relative to the root) into a map keyed by the path as given.
func parseMD5sums(data []byte) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(string(data), "\n") {
		sum, p, ok := strings.Cut(strings.TrimRight(line, "\r"), " ")
		if !ok || len(sum) != 32 {
			continue
		}
		p = strings.TrimLeft(strings.TrimLeft(p, " *"), "/")
		if p != "" {
			out[p] = sum
		}
	}
	return out
}

// ReadOptional reads a file of the image, nil when it does not exist.
func ReadOptional(fsys fs.FS, name string) ([]byte, error) {
	data, err := fs.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// InstalledVersion returns the version of package name (of Debian
// architecture arch, or "all") that the image's status file records, ""
// when it has none.
func InstalledVersion(fsys fs.FS, name, arch string) string {
	data, err := ReadOptional(fsys, DpkgStatus)
	if err != nil || data == nil {
		return ""
	}
	sf, err := parseStatusFile(data)
	if err != nil {
		return ""
	}
	i := sf.find(name, arch)
	if i < 0 {
		return ""
	}
	f, err := parseStanza(sf.stanzas[i].text)
	if err != nil {
		return ""
	}
	return fieldValue(f, "Version")
}
