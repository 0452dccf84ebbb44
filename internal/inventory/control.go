package inventory

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Bounds of the control-file (RFC 822 style) parser. Real dpkg databases
// stay far below them: the longest lines are Description and Conffiles
// entries of a few KiB, the largest stanzas a few hundred KiB.
const (
	maxLineLen      = 1 << 20 // bytes in one line
	maxStanzaLen    = 8 << 20 // bytes in one stanza; a larger one is skipped
	maxStanzaFields = 1024    // fields in one stanza; more and it is skipped
)

// field is one "Name: value" field of a stanza. Continuation lines are
// joined to the value with "\n", their leading space removed.
type field struct {
	name  string
	value []byte // appended to in place: no quadratic joins
}

// stanza is one paragraph of a control file.
type stanza struct {
	line   int // line number of its first line, from 1
	fields []field
}

// get returns the value of a field, its name matched case-insensitively as
// dpkg does, and whether the field is present.
func (s *stanza) get(name string) (string, bool) {
	for _, f := range s.fields {
		if strings.EqualFold(f.name, name) {
			return string(f.value), true
		}
	}
	return "", false
}

// has reports whether the stanza has a field, by case-insensitive name.
func (s *stanza) has(name []byte) bool {
	for _, f := range s.fields {
		if bytes.EqualFold([]byte(f.name), name) {
			return true
		}
	}
	return false
}

// stanzaError is a malformed stanza: the parser skips it, and the callback
// decides whether that is fatal.
type stanzaError struct {
	line int
	err  error
}

func (e *stanzaError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *stanzaError) Unwrap() error { return e.err }

// errLineTooLong is returned for a line longer than maxLineLen.
var errLineTooLong = errors.New("line too long")

// parseStanzas reads the paragraphs of a dpkg control file (a status file,
// a status.d entry) from r and calls fn for each, in order: with the stanza,
// or with a *stanzaError for a malformed one (a line that is neither a field
// nor a continuation, a duplicate field, too many fields or bytes). Lines
// holding only spaces and tabs separate stanzas too. An error from fn stops
// the parse and is returned as is; other errors are reading errors and a
// line longer than maxLineLen (errLineTooLong). The stanza passed to fn is
// reused afterwards: fn must copy what it keeps.
func parseStanzas(r io.Reader, fn func(*stanza, *stanzaError) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineLen)
	var (
		cur    stanza
		size   int
		bad    *stanzaError // set once the current stanza is known malformed
		lineNo int
	)
	flush := func() error {
		defer func() { cur.fields, cur.line, size, bad = cur.fields[:0], 0, 0, nil }()
		switch {
		case bad != nil:
			return fn(nil, bad)
		case len(cur.fields) > 0:
			return fn(&cur, nil)
		}
		return nil
	}
	for sc.Scan() {
		lineNo++
		line := sc.Bytes()
		if len(bytes.Trim(line, " \t\r")) == 0 {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		if cur.line == 0 {
			cur.line = lineNo
		}
		if bad != nil {
			continue // skip the rest of a malformed stanza
		}
		size += len(line) + 1
		switch {
		case size > maxStanzaLen:
			bad = &stanzaError{line: cur.line, err: fmt.Errorf("stanza longer than %d bytes", maxStanzaLen)}
		case line[0] == ' ' || line[0] == '\t':
			if len(cur.fields) == 0 {
				bad = &stanzaError{line: lineNo, err: errors.New("continuation line before any field")}
				continue
			}
			f := &cur.fields[len(cur.fields)-1]
			f.value = append(append(f.value, '\n'), bytes.TrimRight(line[1:], "\r")...)
		default:
			name, value, ok := bytes.Cut(line, []byte{':'})
			name = bytes.TrimRight(name, " \t")
			if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
				bad = &stanzaError{line: lineNo, err: fmt.Errorf("malformed field line %q", truncate(string(line), 80))}
				continue
			}
			if cur.has(name) {
				bad = &stanzaError{line: lineNo, err: fmt.Errorf("duplicate field %q", name)}
				continue
			}
			if len(cur.fields) >= maxStanzaFields {
				bad = &stanzaError{line: cur.line, err: fmt.Errorf("more than %d fields", maxStanzaFields)}
				continue
			}
			cur.fields = append(cur.fields, field{name: string(name), value: bytes.Clone(bytes.Trim(value, " \t\r"))})
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d: %w (more than %d bytes)", lineNo+1, errLineTooLong, maxLineLen)
		}
		return fmt.Errorf("line %d: %w", lineNo, err)
	}
	return flush()
}

// truncate shortens s to at most n bytes for an error message, keeping it
// valid UTF-8.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
