package cacerts

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/testenv"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

var (
	oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO  = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidC  = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidDC = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
)

// atv is one attribute: type, ASN.1 string tag, value (raw bytes for
// BMPString are UTF-16BE of the Go string).
type atv struct {
	oid   asn1.ObjectIdentifier
	tag   int
	value string
}

func rawName(t *testing.T, rdns [][]atv) []byte {
	t.Helper()
	var body []byte
	for _, rdn := range rdns {
		var set []byte
		for _, a := range rdn {
			o, err := asn1.Marshal(a.oid)
			if err != nil {
				t.Fatal(err)
			}
			val := []byte(a.value)
			if a.tag == tagBMP {
				val = nil
				for _, r := range a.value {
					val = append(val, byte(r>>8), byte(r))
				}
			}
			set = append(set, appendTLV(nil, 0x30, append(o, appendTLV(nil, byte(a.tag), val)...))...)
		}
		body = append(body, appendTLV(nil, 0x31, set)...)
	}
	return appendTLV(nil, 0x30, body)
}

func makeCert(t *testing.T, subject []byte) ([]byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), RawSubject: subject, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4e9, 0), Subject: pkix.Name{}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), der
}

func opensslHash(t *testing.T, file string) uint32 {
	t.Helper()
	out := run(t, "openssl", "x509", "-noout", "-subject_hash", "-in", file)
	h, err := strconv.ParseUint(strings.TrimSpace(out), 16, 32)
	if err != nil {
		t.Fatalf("openssl output %q", out)
	}
	return uint32(h)
}

// TestSubjectHashMozilla checks every certificate of the host's
// ca-certificates against openssl x509 -subject_hash.
func TestSubjectHashMozilla(t *testing.T) {
	testenv.RequireTool(t, "openssl", "openssl")
	files, _ := filepath.Glob("/usr/share/ca-certificates/mozilla/*.crt")
	if len(files) == 0 {
		testenv.Missing(t, "no /usr/share/ca-certificates/mozilla (apt-get install ca-certificates)")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pc, err := readPEM(b)
		if err != nil || !pc.single {
			t.Errorf("%s: %v single=%v", f, err, pc.single)
			continue
		}
		if want := opensslHash(t, f); pc.hash != want {
			t.Errorf("%s: %08x, openssl %08x", f, pc.hash, want)
		}
	}
	t.Logf("%d certificates", len(files))
}

// TestSubjectHashHandmade covers case, whitespace, multi-valued RDNs and
// the string types against openssl.
func TestSubjectHashHandmade(t *testing.T) {
	testenv.RequireTool(t, "openssl", "openssl")
	names := [][][]atv{
		{{{oidCN, asn1.TagPrintableString, "  Hello   World  "}}},
		{{{oidCN, asn1.TagUTF8String, "MiXeD\t\tCase\n Ümlaut ÄÖ"}}},
		{{{oidC, asn1.TagPrintableString, "DE"}}, {{oidO, asn1.TagT61String, "T61 \xe9t\xe9"}, {oidOU, asn1.TagIA5String, "Unit  A"}, {oidCN, tagBMP, "BMP Name ß"}}},
		{{{oidDC, asn1.TagIA5String, "EXAMPLE"}}, {{oidDC, asn1.TagIA5String, "Com"}}, {{oidCN, tagNumeric, "12 34"}}},
		{{{oidCN, asn1.TagUTF8String, ""}}},
		{},
	}
	dir := t.TempDir()
	for i, n := range names {
		raw := rawName(t, n)
		certPEM, _ := makeCert(t, raw)
		f := filepath.Join(dir, fmt.Sprintf("%d.pem", i))
		if err := os.WriteFile(f, certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := SubjectHash(raw)
		if err != nil {
			t.Fatalf("name %d: %v", i, err)
		}
		if want := opensslHash(t, f); got != want {
			t.Errorf("name %d: %08x, openssl %08x", i, got, want)
		}
	}
}

func TestRefusals(t *testing.T) {
	for _, data := range []string{
		"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
		"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
		"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
	} {
		if _, err := readPEM([]byte(data)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%q: %v", data, err)
		}
	}
	if pc, err := readPEM([]byte("no pem here")); err != nil || pc.single {
		t.Errorf("plain text: %v %v", pc, err)
	}
	for _, n := range []string{"abcdef01.", "abcdef01.+1", "abcdef01.r", "abcdef01.999"} {
		if _, _, _, _, err := parseHashLink(n); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v", n, err)
		}
	}
	for n, want := range map[string]bool{"abcdef01.0": true, "ABCDEF01.r3": true, "abcdef01.pem": false, "abcdefg1.0": false} {
		if _, _, _, ok, err := parseHashLink(n); ok != want || err != nil {
			t.Errorf("%s: %v %v", n, ok, err)
		}
	}
	if !bytes.Equal(canonString([]byte("  A\t B  ")), []byte("a b")) {
		t.Error("canonString")
	}
}
