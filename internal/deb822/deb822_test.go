package deb822

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// collect parses src into field maps (names as written) and error lines.
func collect(t *testing.T, src string) (stanzas []map[string]string, lines []int, errLines []int) {
	t.Helper()
	err := Parse(strings.NewReader(src), func(s *Paragraph, serr *ParseError) error {
		if serr != nil {
			errLines = append(errLines, serr.Line)
			return nil
		}
		m := map[string]string{}
		for _, f := range s.fields {
			m[f.name] = string(s.buf[f.start:f.end])
		}
		stanzas = append(stanzas, m)
		lines = append(lines, s.Line)
		return nil
	})
	if err != nil {
		t.Fatalf("parseStanzas: %v", err)
	}
	return stanzas, lines, errLines
}

func TestParseStanzas(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		want     []map[string]string
		lines    []int
		errLines []int
	}{
		{name: "empty", src: ""},
		{name: "blank lines only", src: "\n\n \t\n"},
		{
			name:  "two stanzas",
			src:   "Package: a\nVersion: 1\n\nPackage: b\nVersion: 2\n",
			want:  []map[string]string{{"Package": "a", "Version": "1"}, {"Package": "b", "Version": "2"}},
			lines: []int{1, 4},
		},
		{
			name:  "no trailing newline, extra separators, CRLF",
			src:   "\n\nPackage: a\r\nVersion:1\r\n\r\n  \n\nPackage: b",
			want:  []map[string]string{{"Package": "a", "Version": "1"}, {"Package": "b"}},
			lines: []int{3, 8},
		},
		{
			name:  "continuation lines",
			src:   "Package: a\nDescription: short\n long one\n .\n\tmore\nConffiles:\n /etc/a 0123\n",
			want:  []map[string]string{{"Package": "a", "Description": "short\nlong one\n.\nmore", "Conffiles": "\n/etc/a 0123"}},
			lines: []int{1},
		},
		{
			name:  "value with colons and spaces",
			src:   "Package:a\nDepends: libc6 (>= 2:1.0), x:any\nEmpty:\n",
			want:  []map[string]string{{"Package": "a", "Depends": "libc6 (>= 2:1.0), x:any", "Empty": ""}},
			lines: []int{1},
		},
		{
			name:     "malformed line skips its stanza only",
			src:      "Package: a\nthis is not a field\nVersion: 1\n\nPackage: b\n",
			want:     []map[string]string{{"Package": "b"}},
			lines:    []int{5},
			errLines: []int{2},
		},
		{
			name:     "continuation first",
			src:      " orphan\nPackage: a\n\nPackage: b\n",
			want:     []map[string]string{{"Package": "b"}},
			lines:    []int{4},
			errLines: []int{1},
		},
		{
			name:     "duplicate field, any case",
			src:      "Package: a\npackage: b\n\nPackage: c\n",
			want:     []map[string]string{{"Package": "c"}},
			lines:    []int{4},
			errLines: []int{2},
		},
		{
			name:     "field name with space",
			src:      "Pack age: a\n",
			errLines: []int{1},
		},
		{
			name:     "empty field name",
			src:      ": a\n",
			errLines: []int{1},
		},
		{
			name:  "bad UTF-8 is kept as bytes",
			src:   "Package: a\nMaintainer: \xff\xfe\n",
			want:  []map[string]string{{"Package": "a", "Maintainer": "\xff\xfe"}},
			lines: []int{1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, lines, errLines := collect(t, tc.src)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d stanzas %v, want %d %v", len(got), got, len(tc.want), tc.want)
			}
			for i := range got {
				if len(got[i]) != len(tc.want[i]) {
					t.Errorf("stanza %d = %q, want %q", i, got[i], tc.want[i])
				}
				for k, v := range tc.want[i] {
					if got[i][k] != v {
						t.Errorf("stanza %d field %s = %q, want %q", i, k, got[i][k], v)
					}
				}
				if lines[i] != tc.lines[i] {
					t.Errorf("stanza %d at line %d, want %d", i, lines[i], tc.lines[i])
				}
			}
			if len(errLines) != len(tc.errLines) {
				t.Fatalf("errors at lines %v, want %v", errLines, tc.errLines)
			}
			for i := range errLines {
				if errLines[i] != tc.errLines[i] {
					t.Errorf("errors at lines %v, want %v", errLines, tc.errLines)
				}
			}
		})
	}
}

func TestParseStanzasBounds(t *testing.T) {
	t.Run("line too long fails", func(t *testing.T) {
		src := "Package: a\nDescription: " + strings.Repeat("x", MaxLineLen+1) + "\n"
		err := Parse(strings.NewReader(src), func(*Paragraph, *ParseError) error { return nil })
		if !errors.Is(err, ErrLineTooLong) {
			t.Fatalf("error = %v, want ErrLineTooLong", err)
		}
	})
	t.Run("stanza too long is skipped", func(t *testing.T) {
		line := " " + strings.Repeat("x", 1000) + "\n"
		src := "Package: a\nDescription: d\n" + strings.Repeat(line, MaxParagraphLen/len(line)+1) + "\nPackage: b\n"
		got, _, errLines := collect(t, src)
		if len(got) != 1 || got[0]["Package"] != "b" || len(errLines) != 1 {
			t.Fatalf("got %d stanzas, errors at %v; want b only and one error", len(got), errLines)
		}
	})
	t.Run("too many fields is skipped", func(t *testing.T) {
		var b strings.Builder
		for i := range MaxParagraphFields + 1 {
			b.WriteString("F" + strconv.Itoa(i) + ": v\n")
		}
		got, _, errLines := collect(t, b.String())
		if len(got) != 0 || len(errLines) != 1 {
			t.Fatalf("got %d stanzas, errors at %v; want none and one error", len(got), errLines)
		}
	})
	t.Run("callback error stops", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := Parse(strings.NewReader("A: 1\n\nA: 2\n"), func(*Paragraph, *ParseError) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Fatalf("error = %v after %d calls, want stop after 1", err, n)
		}
	})
}

func FuzzParseStanzas(f *testing.F) {
	f.Add("Package: a\nVersion: 1\n\nPackage: b\n")
	f.Add("Package: a\nDescription: x\n y\n .\n")
	f.Add(" orphan\n: x\nA:\nA:\n\n\r\n")
	f.Add("Package: libssl3\nStatus: install ok installed\nSource: openssl (3.0.15-1~deb12u1)\nVersion: 3.0.15-1~deb12u1\nArchitecture: amd64\nInstalled-Size: 6320\n")
	f.Fuzz(func(t *testing.T, src string) {
		var stanzas int
		err := Parse(strings.NewReader(src), func(s *Paragraph, serr *ParseError) error {
			if (s == nil) == (serr == nil) {
				t.Fatalf("callback got stanza %v and error %v", s, serr)
			}
			if s != nil {
				stanzas++
				if len(s.fields) == 0 || s.Line < 1 {
					t.Fatalf("empty stanza or bad line %d", s.Line)
				}
				for _, fl := range s.fields {
					if fl.name == "" || strings.ContainsAny(fl.name, " \t\n") {
						t.Fatalf("bad field name %q", fl.name)
					}
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrLineTooLong) {
			t.Fatalf("parseStanzas: %v", err)
		}
		if stanzas > strings.Count(src, "\n")+1 {
			t.Fatalf("%d stanzas from %d lines", stanzas, strings.Count(src, "\n")+1)
		}
	})
}

func TestOptions(t *testing.T) {
	src := "# comment\nSigned-By:\n -----BEGIN\n .\n key\n"
	var got []string
	err := Parse(strings.NewReader(src), func(p *Paragraph, perr *ParseError) error {
		if perr != nil {
			return perr
		}
		got = append(got, p.Value("Signed-By"))
		return nil
	}, WithComments(), WithDotLines())
	if err != nil || len(got) != 1 || got[0] != "\n-----BEGIN\n\nkey" {
		t.Fatalf("with options: %q, %v", got, err)
	}
	// Without WithComments a '#' line is a malformed field line.
	var bad int
	_ = Parse(strings.NewReader(src), func(_ *Paragraph, perr *ParseError) error {
		if perr != nil {
			bad++
		}
		return nil
	})
	if bad != 1 {
		t.Errorf("without WithComments: %d malformed paragraphs, want 1", bad)
	}
}
