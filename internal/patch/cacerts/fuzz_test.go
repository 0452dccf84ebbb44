package cacerts

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCanonicalName: no panics; errors are refusals; canonicalization is
// idempotent on names it produced from UTF8Strings.
func FuzzCanonicalName(f *testing.F) {
	f.Add([]byte{0x30, 0x00})
	f.Add(appendTLV(nil, 0x30, appendTLV(nil, 0x31, appendTLV(nil, 0x30,
		append([]byte{0x06, 0x03, 0x55, 0x04, 0x03}, appendTLV(nil, tagBMP, []byte{0, 'A', 0, ' ', 0, ' ', 0, 'b'})...)))))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := CanonicalName(data)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error not wrapping ErrUnsupported: %v", err)
			}
			return
		}
		if _, err := SubjectHash(data); err != nil {
			t.Fatal(err)
		}
		// The canonical form, wrapped in a SEQUENCE, is its own canonical form.
		again, err := CanonicalName(appendTLV(nil, 0x30, c))
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("not idempotent: %x -> %x (%v)", c, again, err)
		}
	})
}

// FuzzReadPEM: no panics; errors are refusals.
func FuzzReadPEM(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("x\n-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n-----BEGIN"))
	if files, _ := filepath.Glob("/usr/share/ca-certificates/mozilla/*.crt"); len(files) > 0 {
		if b, err := os.ReadFile(files[0]); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := readPEM(data); err != nil && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("error not wrapping ErrUnsupported: %v", err)
		}
		_, _, _, _, _ = parseHashLink(string(data))
	})
}
