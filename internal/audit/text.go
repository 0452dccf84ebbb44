package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// shortDetail is how many runes of detail WriteText prints.
const shortDetail = 80

// WriteText writes e as one line for humans:
//
//	time seq actor action outcome repository[:reference][@digest] detail
//
// Fields with spaces, quotes or control characters are quoted and the detail
// is printed as compact JSON, so an entry never spans lines; the detail is
// cut to 80 characters.
func WriteText(w io.Writer, e *Entry) error {
	target := e.Repository
	if e.Reference != "" && e.Reference != e.Digest {
		target += ":" + e.Reference
	}
	if e.Digest != "" {
		target += "@" + e.Digest
	}
	detail := "-"
	if len(e.Detail) > 0 {
		var b bytes.Buffer
		if json.Compact(&b, e.Detail) == nil {
			detail = b.String() // compact JSON has no line breaks
		} else {
			detail = strconv.Quote(string(e.Detail))
		}
	}
	if r := []rune(detail); len(r) > shortDetail {
		detail = string(r[:shortDetail-1]) + "…"
	}
	_, err := fmt.Fprintf(w, "%s %6d %s %s %s %s %s\n",
		e.Time.UTC().Format(time.RFC3339Nano), e.Seq, field(e.Actor), field(string(e.Action)),
		field(e.Outcome), field(target), detail)
	if err != nil {
		return fmt.Errorf("writing audit entry %d: %w", e.Seq, err)
	}
	return nil
}

// field prints "-" for empty text and quotes text that would break the line
// into more or fewer fields.
func field(s string) string {
	if s == "" {
		return "-"
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"' }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// WriteJSON writes e as one line of JSON (JSON Lines), with the field names
// of Entry's json tags.
func WriteJSON(w io.Writer, e *Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding audit entry %d: %w", e.Seq, err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing audit entry %d: %w", e.Seq, err)
	}
	return nil
}
