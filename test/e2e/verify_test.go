package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/attest/attesttest"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// TestVerifyCommand is `drydock verify` against a real server, with the
// real cosign and crane: a promoted image carries drydock's promotion
// attestation naming the policy hash (--require-promotion passes in live/,
// fails in quarantine/); an attestation made for image A and copied by a
// user under image B's .att tag, and one signed by a key not given, are
// each listed as FAIL with what is wrong; --require fails unless the key
// signed the image itself.
func TestVerifyCommand(t *testing.T) {
	cosign, cr := attesttest.Cosign(t), crane(t)
	a := testimage.Require(t, testimage.DistrolessBookworm)
	b := testimage.Require(t, testimage.Bookworm)
	data, dir := t.TempDir(), t.TempDir()
	realdb.Copy(t, vulndb.DefaultPath(data))
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("version: v1\nmaxSeverity: CRITICAL\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, data, "--config", writeConfig(t, "gate: {policy: "+policy+"}\n"))
	srv := s.URL()
	mustDrydock(t, nil, "import", a.OCIReference(), "--as", "app:1", "--server", srv)
	mustDrydock(t, nil, "import", b.OCIReference(), "--as", "app:2", "--server", srv)
	st := waitVerdict(t, nil, srv, "quarantine/app:1")
	if st.Verdict.State != gate.StatePass || st.PolicyHash == "" {
		t.Fatalf("verdict %+v", st)
	}
	mustDrydock(t, nil, "promote", "quarantine/app:1", "--server", srv)

	out := mustDrydock(t, nil, "verify", "live/app:1", "--require-promotion", "--server", srv).Stdout
	for _, want := range []string{"promoted by drydock: quarantine/app:1 -> live/app:1", "policy sha256:" + st.PolicyHash,
		"OK    attestation https://drydock-project.github.io/attestations/promotion/v1, signed by drydock", "OK    notary signature, signed by drydock"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify live/app:1 lacks %q:\n%s", want, out)
		}
	}
	if r := drydock(t, nil, "verify", "quarantine/app:1", "--require-promotion", "--server", srv); r.Code != 1 || !strings.Contains(r.Stderr, "no promotion attestation by drydock's key verifies") {
		t.Errorf("verify --require-promotion in quarantine/: exit %d\n%s", r.Code, r.Stderr)
	}

	// A user's attestation of A, copied under B's .att tag; another key's
	// attestation of B.
	env := []string{"COSIGN_PASSWORD="}
	attesttest.Run(t, true, dir, env, cosign, "generate-key-pair", "--output-key-prefix", "k1")
	attesttest.Run(t, true, dir, env, cosign, "generate-key-pair", "--output-key-prefix", "k2")
	pred := filepath.Join(dir, "pred.json")
	if err := os.WriteFile(pred, []byte(`{"reviewed":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	attestWith := func(key, ref string) {
		attesttest.Run(t, true, dir, env, cosign, "attest", "--key", filepath.Join(dir, key), "--type", "https://example.com/review/v1",
			"--predicate", pred, "--tlog-upload=false", "--allow-insecure-registry", "--yes", s.Addr+"/"+ref)
	}
	attestWith("k1.key", "quarantine/app@"+a.Digest.String())
	runTool(t, cr, "copy", "--insecure", s.Addr+"/quarantine/app:"+tagOf(a.Digest.String(), "att"), s.Addr+"/quarantine/app:"+tagOf(b.Digest.String(), "att"))
	k1 := filepath.Join(dir, "k1.pub")
	out = mustDrydock(t, nil, "verify", "quarantine/app:2", "--key", k1, "--server", srv).Stdout
	if want := "FAIL  attestation https://example.com/review/v1 [tag " + tagOf(b.Digest.String(), "att") + "]: signed by " + k1 +
		", but its subject is another digest: " + a.Digest.String(); !strings.Contains(out, want) {
		t.Errorf("an attestation of another digest:\n%s\nwant %q", out, want)
	}
	r := drydock(t, nil, "verify", "quarantine/app:2", "--key", k1, "--require", "--server", srv)
	if r.Code != 1 || !strings.Contains(r.Stderr, "not signed by "+k1) {
		t.Errorf("verify --require of an image the key did not sign: exit %d\n%s", r.Code, r.Stderr)
	}

	attestWith("k2.key", "quarantine/app:2")
	out = mustDrydock(t, nil, "verify", "quarantine/app:2", "--key", k1, "--server", srv).Stdout
	if !strings.Contains(out, "FAIL  attestation https://example.com/review/v1 [tag "+tagOf(b.Digest.String(), "att")+"]: signed by none of the keys given") {
		t.Errorf("an attestation by a key not given:\n%s", out)
	}
	if strings.Contains(out, "OK ") && strings.Contains(out, "review/v1, signed by") {
		t.Errorf("an attestation verified:\n%s", out)
	}
}

// tagOf is cosign's tag-scheme tag of a digest.
func tagOf(d, suffix string) string { return strings.Replace(d, ":", "-", 1) + "." + suffix }
