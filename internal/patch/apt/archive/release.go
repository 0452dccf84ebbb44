package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/drydock-project/drydock/internal/deb822"
)

// Sentinel causes of a *ReleaseError; branch on them with errors.Is.
var (
	// ErrUnsigned: the data carries no OpenPGP signature.
	ErrUnsigned = errors.New("not signed")
	// ErrBadSignature: the signature does not verify with the trusted keys
	// (tampered data, a key not trusted, an expired or revoked key).
	ErrBadSignature = errors.New("bad signature")
	// ErrExpired: the Release file's Valid-Until has passed.
	ErrExpired = errors.New("expired (Valid-Until has passed)")
	// ErrWrongSuite: a Release file names neither the suite nor the
	// codename it was fetched for.
	ErrWrongSuite = errors.New("Release file of another suite")
	// ErrMalformed: the Release file does not parse.
	ErrMalformed = errors.New("malformed Release file")
)

// ReleaseError is a Release file refused: URL names what was fetched, Err
// wraps one of ErrUnsigned, ErrBadSignature, ErrExpired,
// ErrWrongSuite or ErrMalformed.
type ReleaseError struct {
	URL string
	Err error
}

func (e *ReleaseError) Error() string { return "release " + e.URL + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *ReleaseError) Unwrap() error { return e.Err }

// FileHash is one entry of a Release file's SHA256 list.
type FileHash struct {
	Path   string // relative to dists/SUITE, e.g. "main/binary-amd64/Packages.xz"
	Size   int64
	SHA256 string // lower-case hex
}

// Release is a parsed (In)Release file.
type Release struct {
	Origin, Label, Suite, Codename, Version string
	Date, ValidUntil                        time.Time // zero when absent
	Architectures, Components               []string
	AcquireByHash                           bool
	// ArchAllInArchIndexes: arch "all" packages are in every binary-ARCH
	// index ("No-Support-for-Architecture-all: Packages").
	ArchAllInArchIndexes bool
	// NotAutomatic (backports, experimental): apt never upgrades to it
	// by itself.
	NotAutomatic bool
	// SHA256 lists the index files, by Path.
	SHA256 map[string]FileHash
	// Signer is the fingerprint (upper-case hex) of the key whose signature
	// verified, "" when verification was skipped.
	Signer string
}

// Bounds on Release files: Debian's largest (sid, all architectures) is
// under 1 MiB.
const (
	maxReleaseSize  = 16 << 20
	maxReleaseFiles = 1 << 16
)

// releaseTimeLayouts are the date formats Release files use.
var releaseTimeLayouts = []string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"}

// ParseRelease parses the fields of a Release file (the plaintext, already
// verified). It needs a SHA256 list.
func ParseRelease(data []byte) (*Release, error) {
	var (
		rel *Release
		n   int
	)
	err := parseStanzas(bytes.NewReader(data), func(st *deb822.Paragraph) error {
		n++
		if n > 1 {
			return errors.New("more than one stanza")
		}
		r := &Release{
			Origin: st.Value("Origin"), Label: st.Value("Label"), Suite: st.Value("Suite"),
			Codename: st.Value("Codename"), Version: st.Value("Version"),
			Architectures:        strings.Fields(st.Value("Architectures")),
			Components:           strings.Fields(st.Value("Components")),
			AcquireByHash:        strings.EqualFold(st.Value("Acquire-By-Hash"), "yes"),
			ArchAllInArchIndexes: strings.EqualFold(st.Value("No-Support-for-Architecture-all"), "Packages"),
			NotAutomatic:         strings.EqualFold(st.Value("NotAutomatic"), "yes") && !strings.EqualFold(st.Value("ButAutomaticUpgrades"), "yes"),
			SHA256:               map[string]FileHash{},
		}
		var err error
		if r.Date, err = parseReleaseTime(st, "Date"); err != nil {
			return err
		}
		if r.ValidUntil, err = parseReleaseTime(st, "Valid-Until"); err != nil {
			return err
		}
		for _, line := range strings.Split(st.Value("SHA256"), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			if len(f) != 3 || len(f[0]) != 64 || !isHex(f[0]) {
				return fmt.Errorf("SHA256: malformed entry %q", deb822.Truncate(line, 100))
			}
			size, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || size < 0 {
				return fmt.Errorf("SHA256: bad size in %q", deb822.Truncate(line, 100))
			}
			if len(r.SHA256) >= maxReleaseFiles {
				return fmt.Errorf("SHA256: more than %d files", maxReleaseFiles)
			}
			r.SHA256[f[2]] = FileHash{Path: f[2], Size: size, SHA256: strings.ToLower(f[0])}
		}
		if len(r.SHA256) == 0 {
			return errors.New("no SHA256 list")
		}
		rel = r
		return nil
	})
	if err == nil && rel == nil {
		err = errors.New("empty")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return rel, nil
}

func parseReleaseTime(st *deb822.Paragraph, field string) (time.Time, error) {
	v, ok := st.Get(field)
	if !ok || v == "" {
		return time.Time{}, nil
	}
	for _, l := range releaseTimeLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s: unparsable time %q", field, deb822.Truncate(v, 60))
}

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// VerifyInRelease checks a clearsigned InRelease file with keys at time now
// (which judges key and signature expiry) and returns its verified
// plaintext. Text outside the signed block is refused, as apt refuses it.
func VerifyInRelease(data []byte, keys openpgp.EntityList, now time.Time) (plaintext []byte, signer string, err error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP SIGNED MESSAGE-----")) {
		return nil, "", ErrUnsigned
	}
	b, rest := clearsign.Decode(trimmed)
	if b == nil {
		return nil, "", fmt.Errorf("%w: unparsable clearsigned message", ErrBadSignature)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, "", fmt.Errorf("%w: data after the signed message", ErrBadSignature)
	}
	signer, err = checkSignature(keys, b.Bytes, b.ArmoredSignature.Body, now)
	if err != nil {
		return nil, "", err
	}
	return b.Plaintext, signer, nil
}

// VerifyDetached checks a Release file against its detached Release.gpg
// signature (armored or binary) with keys at time now.
func VerifyDetached(release, sig []byte, keys openpgp.EntityList, now time.Time) (signer string, err error) {
	if len(bytes.TrimSpace(sig)) == 0 {
		return "", ErrUnsigned
	}
	body := bytes.NewReader(sig)
	if bytes.Contains(sig, []byte("-----BEGIN PGP SIGNATURE-----")) {
		blk, err := armorDecode(sig)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrBadSignature, err)
		}
		return checkSignature(keys, release, blk, now)
	}
	return checkSignature(keys, release, body, now)
}

// checkSignature verifies one detached signature over signed.
func checkSignature(keys openpgp.EntityList, signed []byte, sig io.Reader, now time.Time) (string, error) {
	if len(keys) == 0 {
		return "", fmt.Errorf("%w: %w", ErrBadSignature, ErrNoKeyring)
	}
	cfg := &packet.Config{Time: func() time.Time { return now }}
	_, signer, err := openpgp.VerifyDetachedSignature(keys, bytes.NewReader(signed), sig, cfg)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return fmt.Sprintf("%X", signer.PrimaryKey.Fingerprint), nil
}

// checkValid refuses a Release whose Valid-Until is before now.
func checkValid(r *Release, now time.Time) error {
	if !r.ValidUntil.IsZero() && now.After(r.ValidUntil) {
		return fmt.Errorf("%w: valid until %s, now %s", ErrExpired, r.ValidUntil.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// armorDecode returns the body of an armored signature block.
func armorDecode(data []byte) (*bytes.Reader, error) {
	blk, err := armor.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if blk.Type != openpgp.SignatureType {
		return nil, fmt.Errorf("armored block of type %q, want a signature", blk.Type)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(blk.Body, maxReleaseSize)); err != nil {
		return nil, err
	}
	return bytes.NewReader(buf.Bytes()), nil
}

// decodeClearsign returns the plaintext of a clearsigned message, unverified.
func decodeClearsign(data []byte) ([]byte, error) {
	b, _ := clearsign.Decode(data)
	if b == nil {
		return nil, errors.New("unparsable clearsigned message")
	}
	return b.Plaintext, nil
}
