package osinfo

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// maxOSReleaseSize bounds what ParseOSRelease reads: real files are < 1 KiB.
const maxOSReleaseSize = 64 << 10

// ParseOSRelease parses os-release(5) text: KEY=VALUE lines, "#" comment
// lines and blank lines. Values follow the shell quoting the format allows:
// double quotes (where \" \\ \$ \` escape), single quotes (no escapes), and
// backslash escapes outside quotes; adjacent quoted parts concatenate. A
// line that is not an assignment, has an invalid key or an unterminated
// quote is ignored, as systemd ignores it. Only read errors are returned.
// At most 64 KiB are read.
func ParseOSRelease(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(r, maxOSReleaseSize))
	sc.Buffer(make([]byte, 0, 4096), maxOSReleaseSize)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok || !validKey(key) {
			continue
		}
		val, ok := unquote(raw)
		if !ok {
			continue
		}
		out[key] = val
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading os-release: %w", err)
	}
	return out, nil
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// unquote evaluates a shell word. Unquoted whitespace ends the value (what
// follows, such as a trailing comment, is ignored).
func unquote(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return "", false
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return "", false
			}
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case ' ', '\t':
			return b.String(), true
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}
