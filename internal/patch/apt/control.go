package apt

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Bounds of the control-file parser (deb822 sources, Release and Packages
// files). Real Packages indexes have lines below a few KiB and stanzas below
// a few hundred KiB.
const (
	maxLineLen      = 1 << 20 // bytes in one line
	maxStanzaLen    = 4 << 20 // bytes in one stanza
	maxStanzaFields = 512     // fields in one stanza
)

// stanza is one paragraph of a control file. Field names keep their
// spelling; lookups ignore case, as apt's do.
type stanza struct {
	line   int // line of its first field, from 1
	names  []string
	values []string
}

// get returns a field's value (continuation lines joined with "\n", their
// leading blank removed) and whether it is present.
func (s *stanza) get(name string) (string, bool) {
	for i, n := range s.names {
		if strings.EqualFold(n, name) {
			return s.values[i], true
		}
	}
	return "", false
}

// val returns a field's value, "" when absent.
func (s *stanza) val(name string) string {
	v, _ := s.get(name)
	return v
}

// parseStanzas streams the stanzas of r to fn. Lines starting with "#" are
// comments (deb822). A malformed line, or a line or stanza over the bounds,
// is an error naming its line number.
func parseStanzas(r io.Reader, fn func(*stanza) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineLen)
	var cur *stanza
	size, lineNo := 0, 0
	flush := func() error {
		if cur == nil {
			return nil
		}
		s := cur
		cur, size = nil, 0
		return fn(s)
	}
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			if err := flush(); err != nil {
				return err
			}
			continue
		case line[0] == '#':
			continue
		}
		size += len(line) + 1
		if size > maxStanzaLen {
			return fmt.Errorf("line %d: stanza longer than %d bytes", lineNo, maxStanzaLen)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur == nil {
				return fmt.Errorf("line %d: continuation line without a field", lineNo)
			}
			i := len(cur.values) - 1
			cont := line[1:]
			if cont == "." {
				cont = ""
			}
			cur.values[i] += "\n" + cont
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("line %d: malformed field %q", lineNo, truncate(line, 80))
		}
		if cur == nil {
			cur = &stanza{line: lineNo}
		}
		if len(cur.names) >= maxStanzaFields {
			return fmt.Errorf("line %d: more than %d fields in one stanza", lineNo, maxStanzaFields)
		}
		cur.names = append(cur.names, name)
		cur.values = append(cur.values, strings.TrimSpace(value))
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d: longer than %d bytes", lineNo+1, maxLineLen)
		}
		return err
	}
	return flush()
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
