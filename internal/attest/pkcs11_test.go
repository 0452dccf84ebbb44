//go:build cgo

package attest_test

import (
	"crypto/elliptic"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/attest/attesttest"
	"github.com/drydock-project/drydock/internal/testenv"
)

// softHSMModules are where Debian's libsofthsm2 puts the module.
var softHSMModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
}

const (
	hsmToken = "drydock test"
	hsmPIN   = "4711-pin"
)

// softHSM makes a SoftHSM2 token (label hsmToken, user PIN hsmPIN) in a
// directory of the test's, with softhsm2-util, and returns the module's
// path. It sets SOFTHSM2_CONF for the test, which the module reads when
// it is loaded.
func softHSM(t *testing.T) string {
	t.Helper()
	util := testenv.RequireTool(t, "softhsm2-util", "softhsm2")
	module := ""
	for _, p := range softHSMModules {
		if _, err := os.Stat(p); err == nil {
			module = p
			break
		}
	}
	if module == "" {
		testenv.Missing(t, "no SoftHSM2 module in %v (apt-get install softhsm2)", softHSMModules)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.CommandContext(t.Context(), util, "--init-token", "--free", "--label", hsmToken, "--so-pin", "so-"+hsmPIN, "--pin", hsmPIN).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return module
}

// hsmKey generates an EC P-256 key pair on the token through PKCS#11
// (crypto11) and returns its public key's ID.
func hsmKey(t *testing.T, module string, id []byte, label string) string {
	t.Helper()
	ctx, err := crypto11.Configure(&crypto11.Config{Path: module, TokenLabel: hsmToken, Pin: hsmPIN})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	s, err := ctx.GenerateECDSAKeyPairWithLabel(id, []byte(label), elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	kid, err := attest.KeyID(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// TestPKCS11KeySignsPromotion: a key generated on a SoftHSM2 token, named
// by a PKCS#11 URI with the PIN in a file, signs a promotion as the gate
// does (a cosign signature in both forms, a Notary Project signature, the
// promotion attestation in both forms); the real cosign verify and
// verify-attestation accept it with the public key, notation-go's
// verifier with the certificate, drydock's own verify with the key; none
// of them accepts another key.
func TestPKCS11KeySignsPromotion(t *testing.T) {
	cosign := attesttest.Cosign(t)
	module := softHSM(t)
	kid := hsmKey(t, module, []byte{0xd0, 0x01}, "promotion signing")
	hsmKey(t, module, []byte{0xd0, 0x02}, "another key")
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(hsmPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := "pkcs11:token=drydock%20test;object=promotion%20signing;type=private?module-path=" + module + "&pin-source=file:" + pinFile
	k, err := attest.LoadKey(attest.KeyOptions{Ref: uri, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if k.ID() != kid {
		t.Fatalf("loaded key %s, generated %s", k.ID(), kid)
	}

	ctx := t.Context()
	reg, host := attesttest.Registry(t)
	subj := attesttest.PutImage(t, reg, "live/app", "1", `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	st, err := attest.VerdictStatement("live/app", subj.Digest, attest.VerdictPredicate{Source: "quarantine/app:1", Target: "live/app:1",
		PromotedAt: time.Now().UTC(), Verdict: attest.VerdictState{State: "pass"}, Policy: attest.PolicyRef{SHA256: "feed"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attest.Write(ctx, reg, "live/app", subj, k, attest.WriteRequest{Ref: "live/app", Signature: true, Notary: true,
		NotaryMetadata: map[string]string{"dev.drydock.verdict": "pass"}, Statements: []*attest.Statement{st}}); err != nil {
		t.Fatal(err)
	}

	pub := filepath.Join(dir, "hsm.pub")
	if err := os.WriteFile(pub, k.PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	other, _ := attest.GenerateKey(time.Now())
	otherPub := filepath.Join(dir, "other.pub")
	if err := os.WriteFile(otherPub, other.PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	target := host + "/live/app@" + subj.Digest.String()
	verify := []string{"verify", "--insecure-ignore-tlog=true", "--allow-insecure-registry"}
	env := []string{"COSIGN_PASSWORD="}
	attesttest.Run(t, true, dir, env, cosign, append(verify, "--key", pub, target)...)
	attesttest.Run(t, true, dir, env, cosign, append(verify, "--experimental-oci11", "--key", pub, target)...)
	attesttest.Run(t, false, dir, env, cosign, append(verify, "--key", otherPub, target)...)
	out := attesttest.Run(t, true, dir, env, cosign, "verify-attestation", "--insecure-ignore-tlog=true", "--allow-insecure-registry",
		"--key", pub, "--type", attest.PredicateVerdict, target)
	if !strings.Contains(out, `"payloadType":"application/vnd.in-toto+json"`) {
		t.Errorf("cosign verify-attestation printed no envelope:\n%s", out)
	}

	if err := attesttest.NotaryVerify(t, host, "live/app", subj.Digest.String(), k.Chain()...); err != nil {
		t.Errorf("notation-go's verifier refused the HSM key's signature: %v", err)
	}
	if err := attesttest.NotaryVerify(t, host, "live/app", subj.Digest.String(), other.Chain()...); err == nil {
		t.Error("notation-go's verifier accepted the signature with another certificate")
	}

	rep, err := attest.Verify(ctx, reg, "live/app", subj.Digest, attest.VerifyOptions{Keys: []attest.PublicKey{k.PublicKey("hsm")}, Roots: k.Chain()})
	if err != nil {
		t.Fatal(err)
	}
	verified := map[string]int{}
	for _, s := range rep.Signatures {
		if s.Verified && s.KeyID == kid {
			verified[s.Form+" "+s.Format]++
		}
	}
	for _, want := range []string{"referrer cosign", "tag cosign", "referrer notary", "referrer dsse", "tag dsse"} {
		if verified[want] != 1 {
			t.Errorf("drydock verify: %d verified %q signatures by the HSM key, want 1 (%v)", verified[want], want, verified)
		}
	}
}

// TestPKCS11KeyErrors: a PKCS#11 key reference that cannot be used says
// why, naming the token and key and never the PIN; the PIN may also come
// from KeyOptions.Password (the server's $DRYDOCK_SIGN_PASSWORD).
func TestPKCS11KeyErrors(t *testing.T) {
	module := softHSM(t)
	kid := hsmKey(t, module, []byte{0x01}, "k")
	base := "pkcs11:token=drydock%20test;object=k?module-path=" + module
	k, err := attest.LoadKey(attest.KeyOptions{Ref: base, Password: []byte(hsmPIN)})
	if err != nil {
		t.Fatalf("PIN from the password: %v", err)
	}
	if k.ID() != kid {
		t.Errorf("loaded key %s, generated %s", k.ID(), kid)
	}
	if _, err := k.Sign([]byte("x")); err != nil {
		t.Errorf("signing: %v", err)
	}
	k.Close()

	// A certificate stored with a key on the token is its chain; one of
	// another key is refused; a curve the Notary Project does not verify
	// is refused.
	p11, err := crypto11.Configure(&crypto11.Config{Path: module, TokenLabel: hsmToken, Pin: hsmPIN})
	if err != nil {
		t.Fatal(err)
	}
	withCert, err := p11.GenerateECDSAKeyPairWithLabel([]byte{0x02}, []byte("with-cert"), elliptic.P384())
	if err != nil {
		t.Fatal(err)
	}
	wk, err := attest.NewKey(withCert, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := attest.GenerateKey(time.Now())
	for _, c := range []struct {
		id    byte
		label string
		key   *attest.Key
	}{{0x02, "with-cert", wk}, {0x03, "wrong-cert", stranger}} {
		if c.id == 0x03 {
			if _, err := p11.GenerateECDSAKeyPairWithLabel([]byte{c.id}, []byte(c.label), elliptic.P256()); err != nil {
				t.Fatal(err)
			}
		}
		if err := p11.ImportCertificateWithLabel([]byte{c.id}, []byte(c.label), c.key.Chain()[0]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p11.GenerateECDSAKeyPairWithLabel([]byte{0x04}, []byte("p224"), elliptic.P224()); err != nil {
		t.Fatal(err)
	}
	p11.Close()
	k, err = attest.LoadKey(attest.KeyOptions{Ref: "pkcs11:token=drydock%20test;object=with-cert?module-path=" + module, Password: []byte(hsmPIN)})
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Chain()) != 1 || !k.Chain()[0].Equal(wk.Chain()[0]) {
		t.Error("the certificate stored with the key is not its chain")
	}
	k.Close()

	for _, tc := range []struct {
		name, ref, password, want string
	}{
		{"wrong PIN", base + "&pin-value=0000", "", "CKR_PIN_INCORRECT"},
		{"no PIN", base, "", "PKCS#11 PIN: none given"},
		{"no such key", "pkcs11:token=drydock%20test;object=nope?module-path=" + module, hsmPIN, "object=nope: no such key pair"},
		{"no such token", "pkcs11:token=other;object=k?module-path=" + module, hsmPIN, "token=other"},
		{"no such module", "pkcs11:token=drydock%20test;object=k?module-path=/nonexistent/p11.so", hsmPIN, "/nonexistent/p11.so"},
		{"pin file missing", base + "&pin-source=file:/nonexistent/pin", "", "/nonexistent/pin"},
		{"another key's certificate", "pkcs11:token=drydock%20test;object=wrong-cert?module-path=" + module, hsmPIN, "is not the signing key's"},
		{"P-224", "pkcs11:token=drydock%20test;id=%04?module-path=" + module, hsmPIN, "use P-256, P-384 or P-521"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := attest.LoadKey(attest.KeyOptions{Ref: tc.ref, Password: []byte(tc.password)})
			if err == nil {
				k.Close()
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), hsmPIN) || strings.Contains(err.Error(), "0000") {
				t.Errorf("error %q: want it to name %q, and no PIN", err, tc.want)
			}
		})
	}
}

// TestPKCS11ConcurrentSigning: one HSM key signs promotions from many
// goroutines at once, as a server's concurrent promotions do; every
// signature verifies with the key.
func TestPKCS11ConcurrentSigning(t *testing.T) {
	module := softHSM(t)
	kid := hsmKey(t, module, []byte{0xd0, 0x03}, "busy key")
	k, err := attest.LoadKey(attest.KeyOptions{Ref: "pkcs11:token=drydock%20test;object=busy%20key;type=private?module-path=" + module + "&pin-value=" + hsmPIN, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ctx := t.Context()
	reg, _ := attesttest.Registry(t)
	const n = 16
	subjects := make([]ocispec.Descriptor, n)
	for i := range subjects {
		subjects[i] = attesttest.PutImage(t, reg, "live/app", fmt.Sprint(i),
			fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"n":"%d"}}}`, i))
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, subj := range subjects {
		wg.Go(func() {
			_, errs[i] = attest.Write(ctx, reg, "live/app", subj, k, attest.WriteRequest{Ref: "live/app", Signature: true})
		})
	}
	wg.Wait()
	for i, subj := range subjects {
		if errs[i] != nil {
			t.Errorf("signing %d: %v", i, errs[i])
			continue
		}
		rep, err := attest.Verify(ctx, reg, "live/app", subj.Digest, attest.VerifyOptions{Keys: []attest.PublicKey{k.PublicKey("hsm")}})
		if err != nil {
			t.Fatal(err)
		}
		verified := 0
		for _, s := range rep.Signatures {
			if s.Verified && s.KeyID == kid {
				verified++
			}
		}
		if verified != 2 {
			t.Errorf("subject %d: %d verified signatures by the HSM key, want 2 (referrer and tag): %+v", i, verified, rep.Signatures)
		}
	}
}
