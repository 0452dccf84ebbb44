// Package deb822 parses Debian control files (RFC 822-style paragraphs):
// dpkg status files and status.d entries, apt's Release and Packages
// indexes, deb822 .sources files. It is the one parser of that format in
// drydock; bounds on lines, paragraphs and fields keep hostile input cheap.
package deb822

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Bounds of the parser. Real files stay far below them: the longest lines
// are Description and Conffiles entries of a few KiB, the largest
// paragraphs (a Release file's hash lists) a few hundred KiB.
const (
	MaxLineLen         = 1 << 20 // bytes in one line; longer is ErrLineTooLong
	MaxParagraphLen    = 8 << 20 // bytes in one paragraph; larger is malformed
	MaxParagraphFields = 1024    // fields in one paragraph; more is malformed
)

// ErrLineTooLong is returned for a line longer than MaxLineLen.
var ErrLineTooLong = errors.New("line too long")

// field is one "Name: value" field: its value is buf[start:end] of its
// paragraph. Continuation lines are joined to the value with "\n", their
// leading space or tab removed.
type field struct {
	name       string
	start, end int
}

// Paragraph is one paragraph (stanza) of a control file.
type Paragraph struct {
	// Line is the line number of its first line, from 1.
	Line   int
	fields []field
	// buf holds the values one after another. Only the last field can
	// grow (a continuation line), and it ends buf: appended to in place,
	// no quadratic joins, and one allocation for a paragraph's values.
	buf []byte
}

// Get returns the value of a field, its name matched case-insensitively as
// dpkg and apt do, and whether the field is present.
func (p *Paragraph) Get(name string) (string, bool) {
	for _, f := range p.fields {
		if strings.EqualFold(f.name, name) {
			return string(p.buf[f.start:f.end]), true
		}
	}
	return "", false
}

// Value returns a field's value, "" when absent.
func (p *Paragraph) Value(name string) string {
	v, _ := p.Get(name)
	return v
}

func (p *Paragraph) has(name []byte) bool {
	for _, f := range p.fields {
		if len(f.name) == len(name) && bytes.EqualFold([]byte(f.name), name) {
			return true
		}
	}
	return false
}

// maxInterned bounds the field names one Parse shares between
// paragraphs; a file of that many distinct names is hostile, and past it
// each name is its own string.
const maxInterned = 4096

// ParseError is a malformed paragraph: the parser skips it and passes it to
// the callback, which decides whether that is fatal.
type ParseError struct {
	Line int
	Err  error
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *ParseError) Unwrap() error { return e.Err }

// Option tunes Parse.
type Option func(*options)

type options struct{ comments, dots bool }

// WithComments treats lines starting with '#' as comments, as deb822
// .sources files allow (dpkg's databases have no comments).
func WithComments() Option { return func(o *options) { o.comments = true } }

// WithDotLines reads a continuation line holding only "." as an empty line
// of a multi-line value, as deb822(5) says (e.g. an armored key inline in a
// .sources file). Without it the "." is kept, as dpkg-query shows it.
func WithDotLines() Option { return func(o *options) { o.dots = true } }

// Parse reads the paragraphs of r and calls fn for each, in order: with the
// paragraph, or with a *ParseError for a malformed one (a line that is
// neither a field nor a continuation, a duplicate field, too many fields or
// bytes). Lines holding only spaces and tabs separate paragraphs too. An
// error from fn stops the parse and is returned as is; other errors are
// reading errors and a line longer than MaxLineLen (ErrLineTooLong). Each
// call of fn gets a paragraph of its own, which it may keep.
func Parse(r io.Reader, fn func(*Paragraph, *ParseError) error, opts ...Option) error {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineLen)
	var (
		cur    = &Paragraph{}
		size   int
		bad    *ParseError // set once the current paragraph is known malformed
		lineNo int
		// Field names repeat in every paragraph: one string each.
		names = map[string]string{}
	)
	flush := func() error {
		p, b := cur, bad
		// The next paragraph is likely about the size of this one: one
		// allocation for its fields and one for its values, mostly.
		cur, size, bad = &Paragraph{fields: make([]field, 0, len(p.fields)+2), buf: make([]byte, 0, len(p.buf)+len(p.buf)/4+64)}, 0, nil
		switch {
		case b != nil:
			return fn(nil, b)
		case len(p.fields) > 0:
			return fn(p, nil)
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
		if o.comments && line[0] == '#' {
			continue
		}
		if cur.Line == 0 {
			cur.Line = lineNo
		}
		if bad != nil {
			continue // skip the rest of a malformed paragraph
		}
		size += len(line) + 1
		switch {
		case size > MaxParagraphLen:
			bad = &ParseError{Line: cur.Line, Err: fmt.Errorf("paragraph longer than %d bytes", MaxParagraphLen)}
		case line[0] == ' ' || line[0] == '\t':
			if len(cur.fields) == 0 {
				bad = &ParseError{Line: lineNo, Err: errors.New("continuation line before any field")}
				continue
			}
			f := &cur.fields[len(cur.fields)-1]
			cont := bytes.TrimRight(line[1:], "\r")
			if o.dots && string(cont) == "." {
				cont = nil
			}
			cur.buf = append(append(cur.buf, '\n'), cont...)
			f.end = len(cur.buf)
		default:
			name, value, ok := bytes.Cut(line, []byte{':'})
			name = bytes.TrimRight(name, " \t")
			if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
				bad = &ParseError{Line: lineNo, Err: fmt.Errorf("malformed field line %q", Truncate(string(line), 80))}
				continue
			}
			if cur.has(name) {
				bad = &ParseError{Line: lineNo, Err: fmt.Errorf("duplicate field %q", name)}
				continue
			}
			if len(cur.fields) >= MaxParagraphFields {
				bad = &ParseError{Line: cur.Line, Err: fmt.Errorf("more than %d fields", MaxParagraphFields)}
				continue
			}
			n, ok := names[string(name)]
			if !ok {
				n = string(name)
				if len(names) < maxInterned {
					names[n] = n
				}
			}
			start := len(cur.buf)
			cur.buf = append(cur.buf, bytes.Trim(value, " \t\r")...)
			cur.fields = append(cur.fields, field{name: n, start: start, end: len(cur.buf)})
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d: %w (more than %d bytes)", lineNo+1, ErrLineTooLong, MaxLineLen)
		}
		return fmt.Errorf("line %d: %w", lineNo, err)
	}
	return flush()
}

// Truncate shortens s to at most n bytes for an error message, keeping it
// valid UTF-8.
func Truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
