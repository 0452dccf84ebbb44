package attesttest

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/dir"
	notationreg "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	"oras.land/oras-go/v2/registry/remote"
)

// NotaryVerify runs notation-go's verifier, as the notation CLI would
// (the CLI's module is not served here), on host/repo@digest over plain
// HTTP, with a trust store holding roots and a strict trust policy for
// every registry. It returns the verifier's error.
func NotaryVerify(t testing.TB, host, repo, digest string, roots ...*x509.Certificate) error {
	t.Helper()
	root := t.TempDir()
	storeDir := filepath.Join(root, "truststore", "x509", "ca", "trusted")
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for i, c := range roots {
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		if err := os.WriteFile(filepath.Join(storeDir, fmt.Sprintf("cert%d.crt", i)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	policy := &trustpolicy.Document{Version: "1.0", TrustPolicies: []trustpolicy.TrustPolicy{{
		Name: "all", RegistryScopes: []string{"*"}, SignatureVerification: trustpolicy.SignatureVerification{VerificationLevel: "strict"},
		TrustStores: []string{"ca:trusted"}, TrustedIdentities: []string{"*"}}}}
	v, err := verifier.New(policy, truststore.NewX509TrustStore(dir.NewSysFS(root)), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := remote.NewRepository(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	_, _, err = notation.Verify(t.Context(), v, notationreg.NewRepository(r), notation.VerifyOptions{
		ArtifactReference: host + "/" + repo + "@" + digest, MaxSignatureAttempts: 10})
	return err
}
