package attest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestParsePKCS11URI: RFC 7512 URIs naming a token, a key, the module and
// the PIN are read, percent-decoded; what drydock cannot honour is refused
// with the reason, never silently ignored.
func TestParsePKCS11URI(t *testing.T) {
	const mod = "?module-path=/usr/lib/softhsm/libsofthsm2.so"
	slot := 3
	for _, tc := range []struct {
		uri  string
		want *pkcs11URI // nil: an error containing err
		err  string
	}{
		{uri: "pkcs11:token=drydock;object=signing" + mod,
			want: &pkcs11URI{token: "drydock", object: []byte("signing"), modulePath: "/usr/lib/softhsm/libsofthsm2.so"}},
		{uri: "pkcs11:token=My%20HSM;id=%01%ff;type=private" + mod + "&pin-value=12%2634",
			want: &pkcs11URI{token: "My HSM", id: []byte{1, 0xff}, modulePath: "/usr/lib/softhsm/libsofthsm2.so", pinValue: "12&34", hasPIN: true}},
		{uri: "pkcs11:serial=abc;object=k;" + mod + "&pin-source=file:///etc/drydock/pin",
			want: &pkcs11URI{serial: "abc", object: []byte("k"), modulePath: "/usr/lib/softhsm/libsofthsm2.so", pinSource: "/etc/drydock/pin"}},
		{uri: "pkcs11:slot-id=3;object=k" + mod + "&pin-source=/etc/pin",
			want: &pkcs11URI{slot: &slot, object: []byte("k"), modulePath: "/usr/lib/softhsm/libsofthsm2.so", pinSource: "/etc/pin"}},
		{uri: "pkcs11:token=t;object=k", err: "no module"},
		{uri: "pkcs11:token=t;object=k?module-path=libsofthsm2.so", err: "not an absolute path"},
		{uri: "pkcs11:token=t;object=k?module-name=softhsm2", err: "module-name is not supported"},
		{uri: "pkcs11:object=k" + mod, err: "no token"},
		{uri: "pkcs11:token=t;serial=s;object=k" + mod, err: "one way only"},
		{uri: "pkcs11:token=t" + mod, err: "no key"},
		{uri: "pkcs11:token=t;token=u;object=k" + mod, err: `"token" given twice`},
		{uri: "pkcs11:token=t;object=k;type=cert" + mod, err: "type=private"},
		{uri: "pkcs11:token=t;object=k;manufacturer=x" + mod, err: `"manufacturer" is not supported`},
		{uri: "pkcs11:token=t;object=k" + mod + "&x-vendor=1", err: `"x-vendor" is not supported`},
		{uri: "pkcs11:token=t;object=k;slot-id=-1" + mod, err: "not a slot number"},
		{uri: "pkcs11:token=t;object=%zz" + mod, err: `attribute "object"`},
		{uri: "pkcs11:token=t;object=k" + mod + "&pin-value=1&pin-source=file:/p", err: "both given"},
		{uri: "pkcs11:token=t;object=k" + mod + "&pin-source=file:pin", err: "absolute file"},
		{uri: "pkcs11:token=t;object=k" + mod + "&pin-source=file://host/pin", err: "with a host"},
		{uri: "pkcs11:token=t;object=k" + mod + "&pin-value1234", err: "not NAME=VALUE"},
		{uri: "pkcs11:token=t;object=" + strings.Repeat("k", maxPKCS11URI), err: "over 4096"},
	} {
		got, err := parsePKCS11URI(tc.uri)
		if tc.want == nil {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one containing %q", tc.uri, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "1234") {
				t.Errorf("%s: the error %q shows the PIN", tc.uri, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.uri, err)
			continue
		}
		if got.token != tc.want.token || got.serial != tc.want.serial || !slices.Equal(got.object, tc.want.object) ||
			!slices.Equal(got.id, tc.want.id) || got.modulePath != tc.want.modulePath || got.pinValue != tc.want.pinValue ||
			got.hasPIN != tc.want.hasPIN || got.pinSource != tc.want.pinSource || (got.slot == nil) != (tc.want.slot == nil) ||
			(got.slot != nil && *got.slot != *tc.want.slot) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.uri, got, tc.want)
		}
		if s := got.String(); strings.Contains(s, "pin") || strings.Contains(s, "module") {
			t.Errorf("%s: String() %q shows the PIN or module", tc.uri, s)
		}
	}
}

// TestPKCS11PIN: the PIN comes from pin-value, else pin-source (a file,
// its line end dropped), else the password; with none, a clear error.
func TestPKCS11PIN(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(f, []byte("from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		u        pkcs11URI
		password string
		want     string
	}{
		{pkcs11URI{pinValue: "v", hasPIN: true}, "pw", "v"},
		{pkcs11URI{pinSource: f}, "pw", "from-file"},
		{pkcs11URI{}, "pw", "pw"},
	} {
		if got, err := tc.u.pin([]byte(tc.password)); err != nil || got != tc.want {
			t.Errorf("%+v: PIN %q, %v; want %q", tc.u, got, err, tc.want)
		}
	}
	if _, err := (&pkcs11URI{}).pin(nil); err == nil || !strings.Contains(err.Error(), "none given") {
		t.Errorf("no PIN: %v", err)
	}
}

// TestKMSRefused: KMS URIs are refused with ErrKeyURI and a message
// saying what this build signs with.
func TestKMSRefused(t *testing.T) {
	for _, ref := range []string{"awskms:///alias/x", "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", "azurekms://v.vault.azure.net/k", "hashivault://transit-key"} {
		_, err := LoadKey(KeyOptions{Ref: ref})
		scheme, _, _ := strings.Cut(ref, "://")
		if !errors.Is(err, ErrKeyURI) || !strings.Contains(err.Error(), scheme+" keys are not supported") || !strings.Contains(err.Error(), "a key file") {
			t.Errorf("%s: %v", ref, err)
		}
		if pkcs11Supported != strings.Contains(err.Error(), "or a PKCS#11 URI (pkcs11:") {
			t.Errorf("%s: the message does not say whether PKCS#11 is supported: %v", ref, err)
		}
	}
}

// FuzzParsePKCS11URI: a hostile URI is parsed or refused without a
// panic; what parses names a token, a key and an absolute module, and
// its String() parses back to the same token and key.
func FuzzParsePKCS11URI(f *testing.F) {
	f.Add("pkcs11:token=drydock;object=signing?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/p")
	f.Add("pkcs11:slot-id=1;id=%01%02;type=private?module-path=/m.so&pin-value=1234")
	f.Add("pkcs11:serial=%00;object=%ff?module-path=/m")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parsePKCS11URI(s)
		if err != nil {
			return
		}
		if len(u.object) == 0 && len(u.id) == 0 || !filepath.IsAbs(u.modulePath) {
			t.Fatalf("%q parsed to %+v", s, u)
		}
		back, err := parsePKCS11URI(u.String() + "?module-path=/m")
		if err != nil || back.token != u.token || back.serial != u.serial || !slices.Equal(back.object, u.object) || !slices.Equal(back.id, u.id) {
			t.Fatalf("%q: String() %q parses to %+v, %v", s, u.String(), back, err)
		}
	})
}
