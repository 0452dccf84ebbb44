package archive

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

const releaseText = `Origin: Debian
Label: Debian
Suite: oldstable
Version: 12.11
Codename: bookworm
Date: Sat, 17 May 2025 09:05:14 UTC
Valid-Until: Sat, 24 May 2025 09:05:14 +0000
Acquire-By-Hash: yes
No-Support-for-Architecture-all: Packages
Architectures: all amd64 arm64
Components: main contrib
Description: Debian 12.11 Released 17 May 2025
SHA256:
 0ed6d4c8891eb86358b94bb35d9e4da1a0f4b2c2ed0d0f2b5ba2a0ac7e0a4b6a   738242 contrib/Contents-all
 E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855        0 main/binary-amd64/Packages
`

func TestParseRelease(t *testing.T) {
	r, err := ParseRelease([]byte(releaseText))
	if err != nil {
		t.Fatal(err)
	}
	if r.Suite != "oldstable" || r.Codename != "bookworm" || r.Version != "12.11" || !r.AcquireByHash || !r.ArchAllInArchIndexes || r.NotAutomatic {
		t.Errorf("fields: %+v", r)
	}
	if !r.Date.Equal(time.Date(2025, 5, 17, 9, 5, 14, 0, time.UTC)) || !r.ValidUntil.Equal(time.Date(2025, 5, 24, 9, 5, 14, 0, time.UTC)) {
		t.Errorf("dates: %v %v", r.Date, r.ValidUntil)
	}
	if strings.Join(r.Architectures, " ") != "all amd64 arm64" || strings.Join(r.Components, " ") != "main contrib" {
		t.Errorf("lists: %v %v", r.Architectures, r.Components)
	}
	fh := r.SHA256["main/binary-amd64/Packages"]
	if len(r.SHA256) != 2 || fh.Size != 0 || fh.SHA256 != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("SHA256: %+v", r.SHA256)
	}
	if err := checkValid(r, r.ValidUntil.Add(time.Second)); !errors.Is(err, ErrExpired) {
		t.Errorf("after Valid-Until: %v", err)
	}
	if err := checkValid(r, r.ValidUntil); err != nil {
		t.Errorf("at Valid-Until: %v", err)
	}

	for name, in := range map[string]string{
		"empty":      "",
		"no hashes":  "Suite: x\n",
		"bad hash":   "Suite: x\nSHA256:\n abc 1 main/x\n",
		"bad size":   "Suite: x\nSHA256:\n " + strings.Repeat("a", 64) + " -1 main/x\n",
		"bad date":   "Date: yesterday\nSHA256:\n " + strings.Repeat("a", 64) + " 1 main/x\n",
		"two stanza": "Suite: x\n\nSuite: y\n",
	} {
		if _, err := ParseRelease([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestVerifyInRelease(t *testing.T) {
	key, other := newKey(t, "archive"), newKey(t, "other")
	keys := openpgp.EntityList{key}
	signed := clearsignWith(t, key, releaseText)

	plain, signer, err := VerifyInRelease(signed, keys, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != strings.TrimSuffix(releaseText, "\n") && string(plain) != releaseText {
		t.Errorf("plaintext differs:\n%s", plain)
	}
	if signer == "" {
		t.Error("no signer")
	}
	// Keys read back from a serialized keyring (as from an image) work too.
	for _, armored := range []bool{false, true} {
		el, err := ParseKeyring(publicKeyring(t, armored, other, key), "k")
		if err != nil || len(el) != 2 {
			t.Fatalf("ParseKeyring(armored=%v): %v, %d keys", armored, err, len(el))
		}
		if _, _, err := VerifyInRelease(signed, el, testNow); err != nil {
			t.Errorf("with a parsed keyring (armored=%v): %v", armored, err)
		}
	}

	tampered := bytes.Replace(signed, []byte("Codename: bookworm"), []byte("Codename: bookwarm"), 1)
	trailing := append(append([]byte{}, signed...), []byte("Suite: injected\n")...)
	tests := map[string]struct {
		data []byte
		keys openpgp.EntityList
		now  time.Time
		want error
	}{
		"unsigned":           {data: []byte(releaseText), keys: keys, now: testNow, want: ErrUnsigned},
		"tampered":           {data: tampered, keys: keys, now: testNow, want: ErrBadSignature},
		"wrong key":          {data: signed, keys: openpgp.EntityList{other}, now: testNow, want: ErrBadSignature},
		"no keys":            {data: signed, keys: nil, now: testNow, want: ErrBadSignature},
		"text after message": {data: trailing, keys: keys, now: testNow, want: ErrBadSignature},
		"key not yet made":   {data: signed, keys: keys, now: testNow.Add(-48 * time.Hour), want: ErrBadSignature},
	}
	for name, tt := range tests {
		if _, _, err := VerifyInRelease(tt.data, tt.keys, tt.now); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", name, err, tt.want)
		}
	}
}

func TestVerifyDetached(t *testing.T) {
	key, other := newKey(t, "archive"), newKey(t, "other")
	rel := []byte(releaseText)
	sig := detachSign(t, key, rel)
	if _, err := VerifyDetached(rel, sig, openpgp.EntityList{key}, testNow); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyDetached(rel, nil, openpgp.EntityList{key}, testNow); !errors.Is(err, ErrUnsigned) {
		t.Errorf("no signature: %v", err)
	}
	if _, err := VerifyDetached(append(rel, ' '), sig, openpgp.EntityList{key}, testNow); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered: %v", err)
	}
	if _, err := VerifyDetached(rel, sig, openpgp.EntityList{other}, testNow); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong key: %v", err)
	}
}

func TestParseKeyringRefuses(t *testing.T) {
	kbx := append(make([]byte, 8), []byte("KBXf....")...)
	for name, data := range map[string][]byte{
		"garbage": []byte("not a key"),
		"keybox":  kbx,
		"empty":   nil,
		"huge":    make([]byte, maxKeyringFile+1),
	} {
		if _, err := ParseKeyring(data, "/etc/apt/trusted.gpg"); err == nil || !strings.Contains(err.Error(), "/etc/apt/trusted.gpg") {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
}

func FuzzParseRelease(f *testing.F) {
	f.Add(releaseText)
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ParseRelease([]byte(in))
		if err != nil {
			return
		}
		for p, fh := range r.SHA256 {
			if p != fh.Path || fh.Size < 0 || len(fh.SHA256) != 64 {
				t.Fatalf("bad entry %+v", fh)
			}
		}
	})
}
