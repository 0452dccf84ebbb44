package archive

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ulikunitz/xz"
)

// testNow is the fixed clock of the offline tests.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// newKey makes a signing key created an hour before testNow.
func newKey(t testing.TB, name string) *openpgp.Entity {
	t.Helper()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return testNow.Add(-time.Hour) }}
	e, err := openpgp.NewEntity(name, "", name+"@example.invalid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// publicKeyring serializes the public part of keys, armored or binary.
func publicKeyring(t testing.TB, armored bool, keys ...*openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var aw io.WriteCloser
	if armored {
		a, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
		if err != nil {
			t.Fatal(err)
		}
		aw, w = a, a
	}
	for _, k := range keys {
		if err := k.Serialize(w); err != nil {
			t.Fatal(err)
		}
	}
	if aw != nil {
		aw.Close()
	}
	return buf.Bytes()
}

// clearsignWith makes an InRelease file of text signed by key.
func clearsignWith(t testing.TB, key *openpgp.Entity, text string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, key.PrivateKey, &packet.Config{Time: func() time.Time { return testNow.Add(-time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// detachSign makes an armored Release.gpg for data.
func detachSign(t testing.TB, key *openpgp.Entity, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, key, bytes.NewReader(data), &packet.Config{Time: func() time.Time { return testNow.Add(-time.Minute) }}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(data []byte) string { s := sha256.Sum256(data); return hex.EncodeToString(s[:]) }

func xzData(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzData(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(data)
	w.Close()
	return buf.Bytes()
}

// fakeArchive is an in-process apt archive: files by URL path.
// Its files may change between requests, not during them (an Update
// fetches several at once).
type fakeArchive struct {
	files map[string][]byte
	mu    sync.Mutex
	hits  map[string]int
}

// hitCount is how many times path was requested.
func (a *fakeArchive) hitCount(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hits[path]
}

func (a *fakeArchive) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.hits[r.URL.Path]++
	a.mu.Unlock()
	data, ok := a.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(data)
}

// suiteFiles builds a signed suite: Packages (as .gz, .xz and plain hash,
// as Debian lists them) for amd64 main, and its InRelease. Extra Release
// fields go in extra.
func suiteFiles(t testing.TB, key *openpgp.Entity, prefix, suite, packages, extra string) map[string][]byte {
	t.Helper()
	pk := []byte(packages)
	pxz, pgz := xzData(t, pk), gzData(t, pk)
	rel := fmt.Sprintf("Origin: Test\nSuite: %s\nCodename: %s\nDate: %s\n%sArchitectures: amd64\nComponents: main\nSHA256:\n %s %d main/binary-amd64/Packages\n %s %d main/binary-amd64/Packages.gz\n %s %d main/binary-amd64/Packages.xz\n",
		suite, suite, testNow.Add(-time.Hour).Format(time.RFC1123), extra, sha(pk), len(pk), sha(pgz), len(pgz), sha(pxz), len(pxz))
	base := prefix + "/dists/" + suite + "/"
	return map[string][]byte{
		base + "InRelease":                     clearsignWith(t, key, rel),
		base + "main/binary-amd64/Packages.gz": pgz,
		base + "main/binary-amd64/Packages.xz": pxz,
	}
}

// stanzaFor writes one Packages stanza for a .deb of content deb.
func stanzaFor(name, ver, arch, file string, deb []byte) string {
	return fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nFilename: %s\nSize: %d\nSHA256: %s\nDescription: test\n multi-line\n\n",
		name, ver, arch, file, len(deb), sha(deb))
}

func newServer(t testing.TB, a *fakeArchive) string {
	t.Helper()
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv.URL
}
