package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Where apt looks for keys trusted for every source without Signed-By.
const (
	trustedGPG  = "etc/apt/trusted.gpg"
	trustedGPGD = "etc/apt/trusted.gpg.d"
)

// Bounds on keyrings. Debian's archive keyring is about 100 KiB.
const (
	maxKeyringFile  = 1 << 20 // bytes of one keyring file
	maxKeyringFiles = 128     // files in trusted.gpg.d
)

// DebianArchiveKeyring is where Debian hosts (and images) keep the archive
// keyring. WithHostKeyring reads it from the host for images that carry no
// keyring of their own, such as distroless ones.
const DebianArchiveKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// ErrNoKeyring is wrapped when a source has no trusted key to verify it with.
var ErrNoKeyring = errors.New("no trusted key")

// ParseKeyring reads OpenPGP public keys, binary (a ".gpg" keyring, the
// concatenated transferable keys apt reads) or ASCII-armored (".asc"). name
// is used in errors. A GnuPG keybox (what "gpg --import" writes to a
// "trusted.gpg" today) is refused, as apt refuses it.
func ParseKeyring(data []byte, name string) (openpgp.EntityList, error) {
	if len(data) > maxKeyringFile {
		return nil, fmt.Errorf("keyring %s: %d bytes, more than the limit of %d", name, len(data), maxKeyringFile)
	}
	if len(data) >= 12 && string(data[8:12]) == "KBXf" {
		return nil, fmt.Errorf("keyring %s: a GnuPG keybox, which apt cannot read either (export it with gpg --export)", name)
	}
	var (
		el  openpgp.EntityList
		err error
	)
	if bytes.Contains(data, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", name, err)
	}
	if len(el) == 0 {
		return nil, fmt.Errorf("keyring %s: no public key", name)
	}
	return el, nil
}

// readImageKeyring reads a keyring file of the image; p may be absolute (as
// Signed-By gives it) and is resolved inside the image root.
func readImageKeyring(fsys fs.FS, p string) (openpgp.EntityList, error) {
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	data, err := readBounded(fsys, name, maxKeyringFile)
	if err != nil {
		return nil, err
	}
	return ParseKeyring(data, "/"+name)
}

// imageKeyrings reads the image's keyring files for sourceKeys, each file
// once: a release, its updates and its security suite name the same
// Signed-By file, and parsing a keyring checks every key's self-signatures
// (RSA), which three times over was 0.06 s of a warm patch. The keys are
// only read afterwards, never changed, so the sources share them.
type imageKeyrings struct {
	fsys fs.FS
	read map[string]keyringRead // by the name readImageKeyring resolves
}

type keyringRead struct {
	keys openpgp.EntityList
	err  error
}

func newImageKeyrings(fsys fs.FS) *imageKeyrings {
	return &imageKeyrings{fsys: fsys, read: map[string]keyringRead{}}
}

// get returns readImageKeyring(fsys, p), from an earlier read when there
// was one (its error included).
func (k *imageKeyrings) get(p string) (openpgp.EntityList, error) {
	name := path.Clean("/" + p)
	if r, ok := k.read[name]; ok {
		return r.keys, r.err
	}
	keys, err := readImageKeyring(k.fsys, name)
	k.read[name] = keyringRead{keys: keys, err: err}
	return keys, err
}

// ReadTrustedKeys reads the keys apt trusts for sources without Signed-By:
// etc/apt/trusted.gpg and etc/apt/trusted.gpg.d/*.gpg and *.asc. Missing
// files give no keys; an unreadable one is an error naming it.
func ReadTrustedKeys(ctx context.Context, fsys fs.FS) (openpgp.EntityList, error) {
	var out openpgp.EntityList
	names := []string{}
	if _, err := fs.Stat(fsys, trustedGPG); err == nil {
		names = append(names, trustedGPG)
	}
	entries, err := fs.ReadDir(fsys, trustedGPGD)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", trustedGPGD, err)
	}
	if len(entries) > maxKeyringFiles {
		return nil, fmt.Errorf("reading %s: more than %d files", trustedGPGD, maxKeyringFiles)
	}
	for _, e := range entries {
		if ext := path.Ext(e.Name()); ext == ".gpg" || ext == ".asc" {
			names = append(names, path.Join(trustedGPGD, e.Name()))
		}
	}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		el, err := readImageKeyring(fsys, n)
		if err != nil {
			return nil, err
		}
		out = append(out, el...)
	}
	return out, nil
}

// readHostKeyring reads a keyring file of the host (WithHostKeyring).
func readHostKeyring(name string) (openpgp.EntityList, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("reading host keyring: %w", err)
	}
	defer f.Close()
	return readKeyringFile(f, name)
}

// readKeyringFile reads one keyring from an open file, bounded.
func readKeyringFile(f fs.File, name string) (openpgp.EntityList, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading keyring %s: %w", name, err)
	}
	if st.Size() > maxKeyringFile {
		return nil, fmt.Errorf("keyring %s: %d bytes, more than the limit of %d", name, st.Size(), maxKeyringFile)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxKeyringFile+1)); err != nil {
		return nil, fmt.Errorf("reading keyring %s: %w", name, err)
	}
	return ParseKeyring(buf.Bytes(), name)
}

// sourceKeys returns the keys a source must be signed with, as apt picks
// them: Signed-By (an inline key, keyring files, or fingerprints selecting
// among the trusted keys), else the trusted keys. When neither yields a key,
// the host keyring (if configured) is used and noted in the returned
// description; else the error wraps ErrNoKeyring.
func sourceKeys(keyrings *imageKeyrings, s Source, trusted, host openpgp.EntityList, hostName string) (openpgp.EntityList, string, error) {
	if s.SignedByKey != "" {
		el, err := ParseKeyring([]byte(s.SignedByKey), s.Origin+" Signed-By")
		return el, "inline Signed-By key of " + s.Origin, err
	}
	var (
		out   openpgp.EntityList
		files []string
	)
	for _, sb := range s.SignedBy {
		if isFingerprint(sb) {
			for _, e := range trusted {
				if strings.EqualFold(fmt.Sprintf("%X", e.PrimaryKey.Fingerprint), strings.TrimSuffix(sb, "!")) {
					out = append(out, e)
				}
			}
			continue
		}
		el, err := keyrings.get(sb)
		switch {
		case errors.Is(err, fs.ErrNotExist) && host != nil:
			// Fall through to the host keyring below.
		case err != nil:
			return nil, "", fmt.Errorf("Signed-By of %s: %w", s.Origin, err)
		default:
			out = append(out, el...)
			files = append(files, sb)
		}
	}
	if len(out) > 0 {
		return out, strings.Join(files, ", "), nil
	}
	if len(s.SignedBy) == 0 && len(trusted) > 0 {
		return trusted, "etc/apt/trusted.gpg(.d)", nil
	}
	if host != nil {
		return host, "host keyring " + hostName, nil
	}
	if len(s.SignedBy) > 0 {
		return nil, "", fmt.Errorf("source %s (%s): Signed-By %s gives no key: %w", s, s.Origin, strings.Join(s.SignedBy, ","), ErrNoKeyring)
	}
	return nil, "", fmt.Errorf("source %s (%s): the image has no apt keyring (use the host's archive keyring explicitly): %w", s, s.Origin, ErrNoKeyring)
}

// isFingerprint reports a Signed-By value naming a key by fingerprint
// (40 hex digits, optionally "!"-suffixed to pin a subkey).
func isFingerprint(s string) bool {
	s = strings.TrimSuffix(s, "!")
	if len(s) != 40 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}
