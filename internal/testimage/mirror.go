package testimage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MirrorInfo names the Debian archives this machine installs from. It is read
// from the machine's own apt sources, never configured in code: tests run
// against whatever mirror the machine is set up with.
type MirrorInfo struct {
	// URI is the main archive (the one serving SUITE and SUITE-updates),
	// without a trailing slash.
	URI string
	// SecurityURI serves SUITE-security. It comes from the machine's sources
	// when they name a security suite, else it is URI's sibling path
	// "debian-security".
	SecurityURI string
	// Keyring is the Signed-By keyring of the main archive entry, if any.
	Keyring string
}

// ErrNoMirror means the machine's apt sources name no Debian archive.
var ErrNoMirror = errors.New("testimage: no Debian mirror in the machine's apt sources")

// DefaultKeyring is the keyring official Debian images name in Signed-By.
const DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// Mirror reads the Debian mirror from the machine's apt sources: deb822 files
// in /etc/apt/sources.list.d/*.sources and one-line entries in
// /etc/apt/sources.list and /etc/apt/sources.list.d/*.list. The environment
// variable DRYDOCK_TEST_MIRROR (and DRYDOCK_TEST_SECURITY_MIRROR) override it.
func Mirror() (MirrorInfo, error) {
	return mirrorFrom("/etc/apt")
}

// sourceEntry is one (URI, suite) pair of an apt source.
type sourceEntry struct {
	uri, suite, keyring string
}

func mirrorFrom(etcApt string) (MirrorInfo, error) {
	if u := os.Getenv("DRYDOCK_TEST_MIRROR"); u != "" {
		mi := MirrorInfo{URI: strings.TrimRight(u, "/"), Keyring: DefaultKeyring}
		mi.SecurityURI = strings.TrimRight(os.Getenv("DRYDOCK_TEST_SECURITY_MIRROR"), "/")
		if mi.SecurityURI == "" {
			mi.SecurityURI = siblingSecurity(mi.URI)
		}
		return mi, nil
	}
	var entries []sourceEntry
	deb822, _ := filepath.Glob(filepath.Join(etcApt, "sources.list.d", "*.sources"))
	sort.Strings(deb822)
	for _, name := range deb822 {
		es, err := readDeb822Sources(name)
		if err != nil {
			return MirrorInfo{}, err
		}
		entries = append(entries, es...)
	}
	lists, _ := filepath.Glob(filepath.Join(etcApt, "sources.list.d", "*.list"))
	sort.Strings(lists)
	lists = append([]string{filepath.Join(etcApt, "sources.list")}, lists...)
	for _, name := range lists {
		es, err := readOneLineSources(name)
		if err != nil {
			return MirrorInfo{}, err
		}
		entries = append(entries, es...)
	}
	var mi MirrorInfo
	for _, e := range entries {
		security := strings.HasSuffix(e.suite, "-security") || strings.HasSuffix(e.suite, "/updates")
		switch {
		case security && mi.SecurityURI == "":
			mi.SecurityURI = e.uri
		case !security && mi.URI == "" && !strings.Contains(e.suite, "-"):
			mi.URI, mi.Keyring = e.uri, e.keyring
		}
	}
	if mi.URI == "" {
		return MirrorInfo{}, ErrNoMirror
	}
	if mi.SecurityURI == "" {
		mi.SecurityURI = siblingSecurity(mi.URI)
	}
	if mi.Keyring == "" {
		mi.Keyring = DefaultKeyring
	}
	return mi, nil
}

// siblingSecurity maps ".../debian" to ".../debian-security", the layout of
// Debian's own archives and of their mirrors.
func siblingSecurity(uri string) string {
	return strings.TrimRight(uri, "/") + "-security"
}

// readDeb822Sources reads the "Types: deb" stanzas of a deb822 sources file.
func readDeb822Sources(name string) ([]sourceEntry, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("reading apt sources %q: %w", name, err)
	}
	defer f.Close()
	stanzas, err := parseControl(f)
	if err != nil {
		return nil, fmt.Errorf("parsing apt sources %q: %w", name, err)
	}
	var out []sourceEntry
	for _, st := range stanzas {
		if !hasWord(st.Get("Types"), "deb") || strings.EqualFold(st.Get("Enabled"), "no") {
			continue
		}
		for _, uri := range strings.Fields(st.Get("URIs")) {
			for _, suite := range strings.Fields(st.Get("Suites")) {
				out = append(out, sourceEntry{uri: strings.TrimRight(uri, "/"), suite: suite, keyring: st.Get("Signed-By")})
			}
		}
	}
	return out, nil
}

// readOneLineSources reads "deb [opts] URI SUITE COMPONENTS..." lines.
func readOneLineSources(name string) ([]sourceEntry, error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading apt sources %q: %w", name, err)
	}
	defer f.Close()
	var out []sourceEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		fields = fields[1:]
		keyring := ""
		if strings.HasPrefix(fields[0], "[") {
			for len(fields) > 0 {
				opt := strings.Trim(fields[0], "[]")
				if k, v, ok := strings.Cut(opt, "="); ok && k == "signed-by" {
					keyring = v
				}
				done := strings.HasSuffix(fields[0], "]")
				fields = fields[1:]
				if done {
					break
				}
			}
		}
		if len(fields) < 2 {
			continue
		}
		out = append(out, sourceEntry{uri: strings.TrimRight(fields[0], "/"), suite: fields[1], keyring: keyring})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading apt sources %q: %w", name, err)
	}
	return out, nil
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// Paragraph is one stanza of a Debian control file (Packages index, dpkg
// status, deb822 sources), with field names in file order.
type Paragraph struct {
	Fields []string          // field names, in order
	Values map[string]string // by field name as written; multi-line values keep their "\n " continuation lines
}

// Get returns a field's value, matching the name case-insensitively.
func (p Paragraph) Get(name string) string {
	if v, ok := p.Values[name]; ok {
		return v
	}
	for k, v := range p.Values {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// parseControl splits a control file into paragraphs.
func parseControl(r io.Reader) ([]Paragraph, error) {
	var out []Paragraph
	err := eachParagraph(r, func(p Paragraph) error { out = append(out, p); return nil })
	return out, err
}

// eachParagraph streams the paragraphs of a control file to fn.
func eachParagraph(r io.Reader, fn func(Paragraph) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	cur := Paragraph{Values: map[string]string{}}
	last := ""
	flush := func() error {
		if len(cur.Fields) == 0 {
			return nil
		}
		err := fn(cur)
		cur, last = Paragraph{Values: map[string]string{}}, ""
		return err
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if err := flush(); err != nil {
				return err
			}
		case strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return fmt.Errorf("continuation line without a field: %q", line)
			}
			cur.Values[last] += "\n" + line
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return fmt.Errorf("malformed control line: %q", line)
			}
			last = k
			if _, dup := cur.Values[k]; !dup {
				cur.Fields = append(cur.Fields, k)
			}
			cur.Values[k] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return flush()
}

// formatParagraph writes a paragraph back in control-file syntax.
func formatParagraph(w io.Writer, p Paragraph) error {
	for _, k := range p.Fields {
		v := p.Values[k]
		sep := " "
		if v == "" || strings.HasPrefix(v, "\n") {
			sep = ""
		}
		if _, err := fmt.Fprintf(w, "%s:%s%s\n", k, sep, v); err != nil {
			return err
		}
	}
	return nil
}
