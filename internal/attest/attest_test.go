package attest

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest/attesttest"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/registry"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func newRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	reg, err := registry.New(t.Context(), inmemory.New())
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func newKey(t *testing.T) *Key {
	t.Helper()
	k, err := GenerateKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubOf(t *testing.T, name string, k *Key) PublicKey {
	t.Helper()
	p, err := ParsePublicKey(name, k.PublicPEM())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKeyPublicKey: the public half a Key gives is the one its PEM
// reads as (what a verifier outside the process is given).
func TestKeyPublicKey(t *testing.T) {
	k := newKey(t)
	got, want := k.PublicKey("drydock"), pubOf(t, "drydock", k)
	if got.Name != want.Name || got.ID != want.ID || got.ID != k.ID() {
		t.Fatalf("PublicKey = %s %s, PEM reads %s %s (key %s)", got.Name, got.ID, want.Name, want.ID, k.ID())
	}
	if eq, ok := got.Key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(want.Key) {
		t.Fatalf("PublicKey's key differs from the PEM's")
	}
}

func TestWriteVerify(t *testing.T) {
	ctx := t.Context()
	reg := newRegistry(t)
	subj := attesttest.PutImage(t, reg, "live/app", "v1", `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	k, other := newKey(t), newKey(t)
	st, err := NewStatement("live/app", subj.Digest, "https://example.com/p/v1", map[string]string{"x": "y"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := Write(ctx, reg, "live/app", subj, k, WriteRequest{Ref: "live/app", Signature: true, Notary: true,
		NotaryMetadata: map[string]string{"dev.drydock.verdict": "pass"}, Statements: []*Statement{st}, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Referrers) != 3 || len(w.Tags) != 2 {
		t.Fatalf("written %+v", w)
	}
	// Writing again adds referrers but no duplicate tag-scheme layer for
	// the same signature... ECDSA signatures differ each time, so it adds
	// one: the tag-scheme manifest keeps every signature.
	if _, err := Write(ctx, reg, "live/app", subj, k, WriteRequest{Ref: "live/app", Signature: true, Now: t0}); err != nil {
		t.Fatal(err)
	}
	_, body, err := reg.Manifest(ctx, "live/app", imgref.TagSchemeTag(subj.Digest, imgref.SuffixSignature))
	if err != nil {
		t.Fatal(err)
	}
	var sigm ocispec.Manifest
	_ = json.Unmarshal(body, &sigm)
	if len(sigm.Layers) != 2 {
		t.Errorf(".sig has %d layers, want 2", len(sigm.Layers))
	}

	rep, err := Verify(ctx, reg, "live/app", subj.Digest, VerifyOptions{Keys: []PublicKey{pubOf(t, "drydock", k)}})
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]int{}
	for _, s := range rep.Signatures {
		if !s.Verified {
			t.Errorf("not verified: %+v", s)
		}
		forms[s.Form+"/"+s.Format]++
	}
	want := map[string]int{"referrer/cosign": 2, "referrer/notary": 1, "referrer/dsse": 1, "tag/cosign": 2, "tag/dsse": 1}
	if !mapsEqual(forms, want) {
		t.Errorf("forms %v, want %v", forms, want)
	}
	if !rep.SignedBy(k.ID()) || rep.SignedBy(other.ID()) {
		t.Error("SignedBy")
	}
	if a := rep.Attestation("https://example.com/p/v1", k.ID()); a == nil || a.Statement == nil {
		t.Error("attestation not found")
	}
	for _, s := range rep.Signatures {
		if s.Format == FormatNotary && s.Metadata["dev.drydock.verdict"] != "pass" {
			t.Errorf("notary metadata %v", s.Metadata)
		}
	}

	// Another key verifies nothing, and says so.
	rep, err = Verify(ctx, reg, "live/app", subj.Digest, VerifyOptions{Keys: []PublicKey{pubOf(t, "other", other)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Signatures {
		if s.Verified || s.Error == "" {
			t.Errorf("verified with the wrong key: %+v", s)
		}
	}
	// The Notary signature is trusted by its certificate as a root.
	rep, err = Verify(ctx, reg, "live/app", subj.Digest, VerifyOptions{Roots: k.Chain(), Identity: "drydock"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range rep.Signatures {
		if s.Verified {
			n++
			if s.Format != FormatNotary {
				t.Errorf("verified by roots: %+v", s)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d verified by roots, want 1", n)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestVerifyTampering: an attestation or signature whose subject is
// another digest fails with a message naming that digest, even when the
// right key signed it.
func TestVerifyTampering(t *testing.T) {
	ctx := t.Context()
	reg := newRegistry(t)
	a := attesttest.PutImage(t, reg, "quarantine/app", "a", `{"a":1}`)
	b := attesttest.PutImage(t, reg, "quarantine/app", "b", `{"b":2}`)
	k := newKey(t)
	// A statement about b, attached to a.
	st, _ := NewStatement("quarantine/app", b.Digest, "https://example.com/p/v1", map[string]string{})
	if _, err := Write(ctx, reg, "quarantine/app", a, k, WriteRequest{Statements: []*Statement{st}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	// A cosign signature of b's digest, attached to a.
	payload, _ := SimpleSigningPayload("quarantine/app", b.Digest, nil)
	sig, _ := k.Sign(payload)
	l, _ := reg.PutBlob(ctx, "quarantine/app", payload)
	l.MediaType, l.Annotations = imgref.MediaTypeCosignSimpleSigning, map[string]string{AnnotationCosignSignature: b64(sig)}
	if _, err := AppendTagScheme(ctx, reg, "quarantine/app", a.Digest, imgref.SuffixSignature, []ocispec.Descriptor{l}); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, reg, "quarantine/app", a.Digest, VerifyOptions{Keys: []PublicKey{pubOf(t, "drydock", k)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Signatures) != 3 {
		t.Fatalf("%d signatures, want 3: %+v", len(rep.Signatures), rep.Signatures)
	}
	for _, s := range rep.Signatures {
		if s.Verified || !strings.Contains(s.Error, "another digest") || !strings.Contains(s.Error, b.Digest.Encoded()) {
			t.Errorf("tampered %s/%s: verified=%v error %q", s.Form, s.Format, s.Verified, s.Error)
		}
	}
}

// TestAppendTagSchemeRefusesOtherContent: drydock never overwrites a
// tag-scheme tag that holds something else than cosign's content.
func TestAppendTagSchemeRefusesOtherContent(t *testing.T) {
	ctx := t.Context()
	reg := newRegistry(t)
	a := attesttest.PutImage(t, reg, "live/app", "a", `{"a":1}`)
	attesttest.PutImage(t, reg, "live/app", imgref.TagSchemeTag(a.Digest, imgref.SuffixSignature), `{"not":"a signature"}`)
	k := newKey(t)
	_, err := Write(ctx, reg, "live/app", a, k, WriteRequest{Signature: true, Now: t0})
	if err == nil || !strings.Contains(err.Error(), "not replaced") {
		t.Fatalf("err = %v", err)
	}
}

func TestKeysFromDir(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadKey(KeyOptions{Dir: dir, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadKey(KeyOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if k1.ID() != k2.ID() || !strings.HasPrefix(k1.ID(), "sha256:") {
		t.Fatalf("ids %s %s", k1.ID(), k2.ID())
	}
	pub, err := ReadPublicKey(dir + "/" + PublicKeyFile)
	if err != nil || pub.ID != k1.ID() {
		t.Fatalf("public key %v %v", pub.ID, err)
	}
	_ = digest.Digest("")
	_ = context.Background
}

// TestListAndInspect: List names what Write attached in both forms, with
// its class, and leaves out an image pushed under a cosign tag; Inspect
// gives the same list and the same signatures as Verify from one read.
func TestListAndInspect(t *testing.T) {
	ctx := t.Context()
	reg := newRegistry(t)
	cfg := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`
	subj := attesttest.PutImage(t, reg, "live/app", "v1", cfg)
	k := newKey(t)
	st, err := NewStatement("live/app", subj.Digest, "https://example.com/p/v1", map[string]string{"x": "y"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(ctx, reg, "live/app", subj, k, WriteRequest{Ref: "live/app", Signature: true, Notary: true,
		Statements: []*Statement{st}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	// An image under the subject's .sbom tag is not cosign content.
	attesttest.PutImage(t, reg, "live/app", imgref.TagSchemeTag(subj.Digest, imgref.SuffixSBOM), `{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)

	list, err := List(ctx, reg, "live/app", subj.Digest)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, a := range list {
		got[a.Form+"/"+a.Class]++
		if a.Form == FormTag && (a.Layers != 1 || a.Tag == imgref.TagSchemeTag(subj.Digest, imgref.SuffixSBOM)) {
			t.Errorf("tag-scheme entry %+v", a)
		}
	}
	want := map[string]int{"referrer/signature": 2, "referrer/attestation": 1, "tag/signature": 1, "tag/attestation": 1}
	if !mapsEqual(got, want) {
		t.Errorf("List: %v, want %v", got, want)
	}

	o := VerifyOptions{Keys: []PublicKey{k.PublicKey("drydock")}}
	rep, err := Verify(ctx, reg, "live/app", subj.Digest, o)
	if err != nil {
		t.Fatal(err)
	}
	irep, ilist, err := Inspect(ctx, reg, "live/app", subj.Digest, o)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := fmt.Sprint(ilist), fmt.Sprint(list); g != w {
		t.Errorf("Inspect lists\n%s\nList\n%s", g, w)
	}
	if len(rep.Signatures) != 5 || len(irep.Signatures) != len(rep.Signatures) {
		t.Fatalf("Inspect found %d signatures, Verify %d, want 5", len(irep.Signatures), len(rep.Signatures))
	}
	for i, s := range irep.Signatures {
		v := rep.Signatures[i]
		if s.Form != v.Form || s.Format != v.Format || s.Manifest != v.Manifest || s.Verified != v.Verified || !s.Verified {
			t.Errorf("Inspect signature %d = %+v, Verify's %+v", i, s, v)
		}
	}
}
