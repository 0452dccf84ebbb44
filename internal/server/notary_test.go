package server_test

import (
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/notaryproject/notation-go"
	notationreg "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/signer"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/attest/attesttest"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/testimage"
)

// notaryRepo is a Notary Project view of a repository of the test server.
func notaryRepo(t *testing.T, g *gateServer, repo string) notationreg.Repository {
	t.Helper()
	r, err := remote.NewRepository(g.host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	return notationreg.NewRepository(r)
}

// TestNotarySignaturesFollow: an image signed in quarantine/ with
// notation-go is promoted, and notation-go's verifier, with a trust store
// holding the signer's certificate, accepts the live/ digest; with
// drydock's certificate (GET /api/v1/keys) it accepts drydock's own
// signature of the promotion; with neither, it refuses.
func TestNotarySignaturesFollow(t *testing.T) {
	ti := testimage.Require(t, testimage.DistrolessBookworm)
	g := startGateServer(t, passPolicy)
	ctx := t.Context()
	d := g.push(ti, "quarantine/notary:1")
	user, err := attest.GenerateKey(time.Now()) // a signer with a self-signed code-signing certificate
	if err != nil {
		t.Fatal(err)
	}
	s, err := signer.NewGenericSigner(user.Signer(), user.Chain())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notation.Sign(ctx, s, notaryRepo(t, g, "quarantine/notary"), notation.SignOptions{
		SignerSignOptions: notation.SignerSignOptions{SignatureMediaType: "application/jose+json"},
		ArtifactReference: g.host + "/quarantine/notary@" + d}); err != nil {
		t.Fatal(err)
	}
	if st := g.waitScanned("quarantine/notary:1"); st.Verdict.State != "pass" {
		t.Fatalf("verdict %+v", st.Verdict)
	}
	var p gatekeeper.Promotion
	if code := g.api("POST", "/api/v1/promote", map[string]string{"source": "quarantine/notary:1"}, &p); code != http.StatusOK {
		t.Fatalf("promote: %d", code)
	}
	verify := func(roots ...*x509.Certificate) error {
		return attesttest.NotaryVerify(t, g.host, "live/notary", d, roots...)
	}
	if err := verify(user.Chain()...); err != nil {
		t.Errorf("the user's Notary signature in live/: %v", err)
	}
	var keys api.KeyResponse
	if code := g.api("GET", "/api/v1/keys", nil, &keys); code != http.StatusOK {
		t.Fatalf("keys: %d", code)
	}
	dcerts, err := attest.ParseCertificates([]byte(keys.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(dcerts...); err != nil {
		t.Errorf("drydock's Notary signature in live/: %v", err)
	}
	stranger, _ := attest.GenerateKey(time.Now())
	if err := verify(stranger.Chain()...); err == nil {
		t.Error("notation-go's verifier accepted live/ with a stranger's certificate")
	}
}
