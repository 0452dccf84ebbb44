package archive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/drydock-project/drydock/internal/deb822"
)

// Paths of the apt configuration inside an image, as fs.FS paths.
const (
	sourcesList = "etc/apt/sources.list"
	sourcesDir  = "etc/apt/sources.list.d"
)

// Bounds on reading the image's apt configuration.
const (
	maxSourcesFile  = 1 << 20 // bytes of one sources file
	maxSourcesFiles = 256     // files in sources.list.d
	maxSources      = 4096    // (URI, suite) entries in all
)

// Source is one (archive, suite) pair apt would fetch: a "deb" line, or one
// URI × suite of a deb822 stanza.
type Source struct {
	URI        string   // archive root without a trailing slash, e.g. "http://mirror/debian"
	Suite      string   // "bookworm", "bookworm-security", or an exact path ending in "/"
	Components []string // "main", ...; empty for a flat repository
	// SignedBy names the keyring files the suite must be signed with
	// (absolute paths in the image), or fingerprints apt accepts there.
	SignedBy []string `json:",omitempty"`
	// SignedByKey is an armored public key block given inline in a deb822
	// Signed-By field.
	SignedByKey string   `json:",omitempty"`
	Arch        []string `json:",omitempty"` // arch= option; empty means the native one
	// Origin is where the entry came from: "file:line", or "added" for
	// suites CompleteSuites added.
	Origin string
}

// String is "URI SUITE COMPONENTS...".
func (s Source) String() string {
	return strings.TrimSpace(s.URI + " " + s.Suite + " " + strings.Join(s.Components, " "))
}

// ParseSourcesList parses one-line apt sources ("deb [opt=v ...] URI SUITE
// [COMPONENT...]"), as in sources.list and sources.list.d/*.list. Only "deb"
// lines are returned; "deb-src" and comments are skipped. name is used in
// errors and in Origin.
func ParseSourcesList(r io.Reader, name string) ([]Source, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxSourcesFile+1))
	sc.Buffer(make([]byte, 0, 4096), maxSourcesFile)
	var out []Source
	n, total := 0, 0
	for sc.Scan() {
		n++
		total += len(sc.Bytes()) + 1
		if total > maxSourcesFile {
			return nil, fmt.Errorf("apt sources %s: larger than %d bytes", name, maxSourcesFile)
		}
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "deb" {
			continue
		}
		fields = fields[1:]
		var opts []string
		if len(fields) > 0 && strings.HasPrefix(fields[0], "[") {
			// Options run from "[" to the first field ending in "]";
			// "[ a=b ]" and "[a=b]" both occur.
			closed := false
			for len(fields) > 0 && !closed {
				f := fields[0]
				fields = fields[1:]
				closed = strings.HasSuffix(f, "]")
				f = strings.TrimSuffix(strings.TrimPrefix(f, "["), "]")
				if f != "" {
					opts = append(opts, f)
				}
			}
			if !closed {
				return nil, fmt.Errorf("apt sources %s:%d: unterminated [options]", name, n)
			}
		}
		if len(fields) < 2 {
			return nil, fmt.Errorf("apt sources %s:%d: want URI and suite, got %q", name, n, deb822.Truncate(strings.TrimSpace(line), 80))
		}
		src := Source{URI: strings.TrimRight(fields[0], "/"), Suite: fields[1], Components: fields[2:], Origin: fmt.Sprintf("%s:%d", name, n)}
		if len(src.Components) == 0 {
			src.Components = nil
		}
		for _, o := range opts {
			k, v, ok := strings.Cut(o, "=")
			if !ok {
				return nil, fmt.Errorf("apt sources %s:%d: malformed option %q", name, n, o)
			}
			switch strings.TrimSuffix(strings.TrimSuffix(k, "+"), "-") {
			case "signed-by":
				src.SignedBy = splitList(v, ",")
			case "arch":
				src.Arch = splitList(v, ",")
			}
		}
		if err := checkSource(src); err != nil {
			return nil, fmt.Errorf("apt sources %s:%d: %w", name, n, err)
		}
		out = append(out, src)
		if len(out) > maxSources {
			return nil, fmt.Errorf("apt sources %s: more than %d entries", name, maxSources)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("apt sources %s:%d: %w", name, n+1, err)
	}
	return out, nil
}

// ParseDeb822Sources parses deb822 apt sources (sources.list.d/*.sources):
// stanzas with Types, URIs, Suites, Components, Signed-By (keyring paths or
// an inline armored key block), Architectures and Enabled. Only stanzas whose
// Types include "deb" and that are not "Enabled: no" are returned, one Source
// per URI × suite.
func ParseDeb822Sources(r io.Reader, name string) ([]Source, error) {
	lr := &io.LimitedReader{R: r, N: maxSourcesFile + 1}
	var out []Source
	err := parseStanzas(lr, func(st *deb822.Paragraph) error {
		if !slices.Contains(strings.Fields(st.Value("Types")), "deb") {
			return nil
		}
		if strings.EqualFold(strings.TrimSpace(st.Value("Enabled")), "no") {
			return nil
		}
		origin := fmt.Sprintf("%s:%d", name, st.Line)
		uris, suites := strings.Fields(st.Value("URIs")), strings.Fields(st.Value("Suites"))
		if len(uris) == 0 || len(suites) == 0 {
			return fmt.Errorf("stanza at line %d: no URIs or no Suites", st.Line)
		}
		base := Source{Components: strings.Fields(st.Value("Components")), Origin: origin}
		if len(base.Components) == 0 {
			base.Components = nil
		}
		if a := strings.Fields(st.Value("Architectures")); len(a) > 0 {
			base.Arch = a
		}
		signed := strings.TrimSpace(st.Value("Signed-By"))
		if strings.Contains(signed, "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
			base.SignedByKey = signed + "\n"
		} else if signed != "" {
			base.SignedBy = splitList(signed, ", ")
		}
		for _, u := range uris {
			for _, s := range suites {
				src := base
				src.URI, src.Suite = strings.TrimRight(u, "/"), s
				src.Components = slices.Clone(base.Components)
				if err := checkSource(src); err != nil {
					return fmt.Errorf("stanza at line %d: %w", st.Line, err)
				}
				out = append(out, src)
				if len(out) > maxSources {
					return fmt.Errorf("more than %d entries", maxSources)
				}
			}
		}
		return nil
	})
	if err == nil && lr.N <= 0 {
		err = fmt.Errorf("larger than %d bytes", maxSourcesFile)
	}
	if err != nil {
		return nil, fmt.Errorf("apt sources %s: %w", name, err)
	}
	return out, nil
}

// checkSource rejects entries drydock cannot or must not fetch: a URI that is
// not http(s) (file:, cdrom: and mirror+ name nothing on the network), or
// path elements that would climb out of the archive.
func checkSource(s Source) error {
	if !strings.HasPrefix(s.URI, "http://") && !strings.HasPrefix(s.URI, "https://") {
		return fmt.Errorf("unsupported URI %q (only http and https)", deb822.Truncate(s.URI, 80))
	}
	for _, p := range append([]string{s.Suite}, s.Components...) {
		if p == "" || strings.Contains(p, "..") || strings.ContainsAny(p, "?#\\") {
			return fmt.Errorf("invalid suite or component %q", deb822.Truncate(p, 80))
		}
	}
	return nil
}

// splitList splits on any of the separator characters, dropping empties.
func splitList(s, seps string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(seps, r) || r == '\n' })
}

// ReadSources reads every apt source of an image: etc/apt/sources.list, then
// sources.list.d/*.list and *.sources in name order, as apt does. Missing
// files are not errors; an image with no source gives an empty list.
func ReadSources(ctx context.Context, fsys fs.FS) ([]Source, error) {
	var out []Source
	data, err := readBounded(fsys, sourcesList, maxSourcesFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		s, err := ParseSourcesList(bytes.NewReader(data), sourcesList)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	entries, err := fs.ReadDir(fsys, sourcesDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", sourcesDir, err)
	}
	if len(entries) > maxSourcesFiles {
		return nil, fmt.Errorf("reading %s: more than %d files", sourcesDir, maxSourcesFiles)
	}
	for _, e := range entries { // fs.ReadDir sorts by name
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := path.Join(sourcesDir, e.Name())
		ext := path.Ext(e.Name())
		if ext != ".list" && ext != ".sources" {
			continue
		}
		data, err := readBounded(fsys, name, maxSourcesFile)
		if err != nil {
			return nil, err
		}
		var s []Source
		if ext == ".list" {
			s, err = ParseSourcesList(bytes.NewReader(data), name)
		} else {
			s, err = ParseDeb822Sources(bytes.NewReader(data), name)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
		if len(out) > maxSources {
			return nil, fmt.Errorf("reading apt sources: more than %d entries", maxSources)
		}
	}
	return out, nil
}

// readBounded reads a regular file of fsys, refusing one larger than limit.
func readBounded(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("reading %s: not a regular file", name)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("reading %s: %d bytes, more than the limit of %d", name, st.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("reading %s: more than the limit of %d bytes", name, limit)
	}
	return data, nil
}
