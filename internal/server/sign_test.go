package server_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/attest/attesttest"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/testimage"
)

// passPolicy lets the distroless test image pass.
const passPolicy = "version: v1\nmaxSeverity: CRITICAL\nblockEndOfLife: true\n"

// cosignEnv is cosign's environment for the tests: no password on the
// generated keys, the OCI 1.1 mode allowed, nothing from the network.
var cosignEnv = []string{"COSIGN_PASSWORD=", "COSIGN_EXPERIMENTAL=1"}

// cosignKey makes a cosign key pair named name in dir.
func cosignKey(t *testing.T, cosign, dir, name string) (key, pub string) {
	t.Helper()
	attesttest.Run(t, true, dir, cosignEnv, cosign, "generate-key-pair", "--output-key-prefix", name)
	return filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
}

// cosignStatement is the in-toto statement of the first DSSE envelope
// cosign verify-attestation printed.
func cosignStatement(t *testing.T, out string) *attest.Statement {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		var env struct{ Payload string }
		if json.Unmarshal([]byte(line), &env) != nil || env.Payload == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var st attest.Statement
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}
	t.Fatalf("cosign verify-attestation printed no statement:\n%s", out)
	return nil
}

// TestCosignSignaturesFollow is #20's first acceptance with the real
// cosign and oras: an image signed in quarantine/ in cosign's tag scheme
// and as an OCI 1.1 referrer is promoted, and cosign verify of the live/
// digest succeeds in both modes; a signature and an oras attachment
// pushed after the promotion reach live/ too; none of them is scanned or
// given a verdict; drydock's own signatures and promotion attestation
// verify with cosign and drydock's public key; a tampered attestation or
// another key's fails drydock's verify with a clear message.
func TestCosignSignaturesFollow(t *testing.T) {
	cosign, oras := attesttest.Cosign(t), attesttest.Oras(t)
	ti := testimage.Require(t, testimage.DistrolessBookworm)
	g := startGateServer(t, passPolicy)
	dir := t.TempDir()
	d := g.push(ti, "quarantine/app:1")
	src, live := g.host+"/quarantine/app@"+d, g.host+"/live/app@"+d
	k1, p1 := cosignKey(t, cosign, dir, "k1")

	sign := []string{"sign", "--key", k1, "--tlog-upload=false", "--allow-insecure-registry", "--yes"}
	attesttest.Run(t, true, dir, cosignEnv, cosign, append(sign, src)...)
	attesttest.Run(t, true, dir, cosignEnv, cosign, append(sign, "--registry-referrers-mode=oci-1-1", src)...)
	if st := g.waitScanned("quarantine/app:1"); st.Verdict.State != "pass" {
		t.Fatalf("verdict %+v", st.Verdict)
	}
	var p gatekeeper.Promotion
	if code := g.api("POST", "/api/v1/promote", map[string]string{"source": "quarantine/app:1"}, &p); code != http.StatusOK {
		t.Fatalf("promote: %d", code)
	}
	verify := []string{"verify", "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--output=json"}
	out := attesttest.Run(t, true, dir, cosignEnv, cosign, append(verify, "--key", p1, live)...)
	if !strings.Contains(out, d) {
		t.Errorf("cosign verify (tag scheme) of live/: %s", out)
	}
	attesttest.Run(t, true, dir, cosignEnv, cosign, append(verify, "--experimental-oci11", "--key", p1, live)...)

	// A second signer after the promotion: cosign in tag mode, and an SBOM
	// with oras attach; both reach live/.
	k2, p2 := cosignKey(t, cosign, dir, "k2")
	attesttest.Run(t, false, dir, cosignEnv, cosign, append(verify, "--key", p2, live)...)
	attesttest.Run(t, true, dir, cosignEnv, cosign, append(sign[:1], append([]string{"--key", k2}, append(sign[3:], src)...)...)...)
	attesttest.Run(t, true, dir, cosignEnv, cosign, append(verify, "--key", p2, live)...)
	attesttest.Run(t, true, dir, cosignEnv, cosign, append(verify, "--key", p1, live)...) // the first one is still there
	if err := os.WriteFile(filepath.Join(dir, "sbom.spdx.json"), []byte(`{"spdxVersion":"SPDX-2.3"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// The file's media type is given: by default oras types a file as an
	// image layer (application/vnd.oci.image.layer.v1.tar), and a
	// referrer with an image layer is judged as an image (imgref).
	attesttest.Run(t, true, dir, nil, oras, "attach", "--plain-http", "--artifact-type", "application/spdx+json", src, "sbom.spdx.json:application/spdx+json")
	disc := attesttest.Run(t, true, dir, nil, oras, "discover", "--plain-http", "--format", "json", live)
	if !strings.Contains(disc, "application/spdx+json") {
		t.Errorf("oras discover live/: the SBOM attached after promotion is missing:\n%s", disc)
	}

	// None of the signatures is an image with a verdict.
	var vs api.VerdictsResponse
	g.api("GET", "/api/v1/verdicts", nil, &vs)
	if len(vs.Images) != 1 || vs.Images[0].Digest != d {
		t.Errorf("verdicts %+v, want only the image", vs.Images)
	}

	// drydock's own: cosign verify and verify-attestation with drydock's
	// public key, on the live/ digest.
	var keys api.KeyResponse
	if code := g.api("GET", "/api/v1/keys", nil, &keys); code != http.StatusOK {
		t.Fatalf("keys: %d", code)
	}
	dpub := filepath.Join(dir, "drydock.pub")
	if err := os.WriteFile(dpub, []byte(keys.PublicKey), 0o644); err != nil {
		t.Fatal(err)
	}
	attesttest.Run(t, true, dir, cosignEnv, cosign, append(verify, "--key", dpub, live)...)
	att := attesttest.Run(t, true, dir, cosignEnv, cosign, "verify-attestation", "--insecure-ignore-tlog=true", "--allow-insecure-registry",
		"--key", dpub, "--type", attest.PredicateVerdict, live)
	if st := cosignStatement(t, att); st.PredicateType != attest.PredicateVerdict || !st.About(digest.Digest(d)) {
		t.Errorf("verify-attestation: statement %+v\n%s", st, att)
	}

	// drydock verify: the users' signatures by their keys, drydock's own,
	// and a clear failure for an attestation about another digest (signed
	// by drydock's key) and for one by another key.
	dkey, err := attest.LoadKey(attest.KeyOptions{Dir: filepath.Join(g.data, "keys")})
	if err != nil {
		t.Fatal(err)
	}
	other := digest.Digest("sha256:" + strings.Repeat("0", 64))
	st, _ := attest.NewStatement("live/app", other, "https://example.com/tampered", map[string]string{})
	k2Key, err := attest.LoadKey(attest.KeyOptions{Ref: k2})
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := attest.NewStatement("live/app", digest.Digest(d), "https://example.com/by-k2", map[string]string{})
	reg := g.srv.Registry()
	subj, err := reg.Resolve(t.Context(), "quarantine/app", d)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		k  *attest.Key
		st *attest.Statement
	}{{dkey, st}, {k2Key, st2}} {
		if _, err := attest.Write(t.Context(), reg, "quarantine/app", subj, w.k, attest.WriteRequest{Statements: []*attest.Statement{w.st}}); err != nil {
			t.Fatal(err)
		}
	}
	var res gatekeeper.VerifyResult
	p1pem, _ := os.ReadFile(p1)
	if code := g.api("POST", "/api/v1/verify", gatekeeper.VerifyRequest{Ref: "live/app@" + d,
		Keys: []gatekeeper.NamedPEM{{Name: "k1", PEM: string(p1pem)}}}, &res); code != http.StatusOK {
		t.Fatalf("verify: %d", code)
	}
	byWhat := map[string][]string{}
	for _, s := range res.Signatures {
		key := s.Form + "/" + s.Format + "/" + s.PredicateType
		if s.Verified {
			byWhat[key] = append(byWhat[key], "OK "+s.Signer)
		} else {
			byWhat[key] = append(byWhat[key], "FAIL "+s.Error)
		}
	}
	wantOK := map[string][]string{
		"tag/cosign/":      {"OK drydock", "OK k1"},
		"referrer/cosign/": {"OK drydock", "OK k1"},
		"referrer/notary/": {"OK drydock"},
		"referrer/dsse/" + attest.PredicateVerdict: {"OK drydock"},
		"tag/dsse/" + attest.PredicateVerdict:      {"OK drydock"},
	}
	for k, want := range wantOK {
		for _, w := range want {
			if !slices.Contains(byWhat[k], w) {
				t.Errorf("%s: %v, want %q among them", k, byWhat[k], w)
			}
		}
	}
	tampered := byWhat["referrer/dsse/https://example.com/tampered"]
	if len(tampered) != 1 || !strings.Contains(tampered[0], "FAIL signed by drydock, but its subject is another digest: "+other.String()) {
		t.Errorf("tampered attestation: %v", tampered)
	}
	byK2 := byWhat["referrer/dsse/https://example.com/by-k2"]
	if len(byK2) != 1 || !strings.Contains(byK2[0], "FAIL signed by none of the keys given") {
		t.Errorf("attestation by another key: %v", byK2)
	}
	if res.Promotion == nil || res.Promotion.Policy.SHA256 == "" || res.Promotion.Target != "live/app:1" {
		t.Errorf("promotion attestation %+v", res.Promotion)
	}
}
