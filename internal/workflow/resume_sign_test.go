package workflow_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/workflow"
)

// TestResumeSignsAfterCrash: the job dies right after a patch's tag is
// written, before the signature (the afterWrite hook stops it there,
// recording nothing, as a crash would). Its retry finds the tag written
// and signs the patch with the plans recorded before the write: the
// patched digest carries a signature and a provenance by the gate's key
// that verify, listing the packages the patch installed.
func TestResumeSignsAfterCrash(t *testing.T) {
	img, err := openImage(t, testimage.DistrolessBookworm).Open()
	if err != nil {
		t.Fatal(err)
	}
	var keeper *gatekeeper.Keeper
	h := newHarness(t, true, withMirror(t), func(o *workflow.Options) {
		o.SignPatch = func(ctx context.Context, p attest.PatchWritten) error {
			_, err := keeper.SignPatch(ctx, p)
			return err
		}
	})
	key, err := attest.GenerateKey(h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), h.dbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	al, closeAudit, err := audit.Open(t.Context(), h.dbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAudit() })
	if keeper, err = gatekeeper.New(gatekeeper.Options{Registry: h.reg, Store: st, Queue: h.queue, Audit: al,
		DBPath: h.opts.DBPath, Now: h.clock.Now, Key: key}); err != nil {
		t.Fatal(err)
	}
	var crashes atomic.Int32
	workflow.SetAfterWrite(h.eng, func(string) error {
		if crashes.Add(1) == 1 {
			return errors.New("simulated crash")
		}
		return nil
	})
	h.start()
	h.push(img, "quarantine/app:1.0")
	res, err := h.eng.Create(t.Context(), workflow.CreateRequest{Config: config("incremental", "app", "1.0"), Schedule: "1d", RunImmediately: true})
	if err != nil {
		t.Fatal(err)
	}
	r := h.waitRun(res.Run.ID, 10*time.Minute)
	log := h.log(r.ID)
	p := task(t, r, workflow.TaskPatch, "app:1.0")
	if r.State != workflow.StateSucceeded || p.State != workflow.StateSucceeded || !p.Patch.TagWritten || p.Patch.Tag != "1.0-1" {
		t.Fatalf("run %s, patch %s %+v:\n%s", r.State, p.State, p.Patch, log)
	}
	if crashes.Load() != 1 || !strings.Contains(log, "resumed: quarantine/app:1.0-1 already holds") {
		t.Fatalf("the job was not interrupted after the write and resumed (%d writes):\n%s", crashes.Load(), log)
	}
	if p.Patch.Signing != nil {
		t.Errorf("the ledger keeps the signing input after signing: %+v", p.Patch.Signing)
	}
	if got := h.digest("quarantine/app", "1.0-1"); got != p.Patch.Digest {
		t.Fatalf("1.0-1 is %s, the ledger says %s", got, p.Patch.Digest)
	}
	rep, err := attest.Verify(t.Context(), h.reg, "quarantine/app", digest.Digest(p.Patch.Digest),
		attest.VerifyOptions{Keys: []attest.PublicKey{key.PublicKey(gatekeeper.KeyName)}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.SignedBy(key.ID()) {
		t.Fatalf("the resumed patch is not signed by the gate's key: %+v\n%s", rep.Signatures, log)
	}
	prov := rep.Attestation(attest.PredicateSLSAProvenanceV1, key.ID())
	if prov == nil {
		t.Fatalf("the resumed patch has no verified provenance: %+v", rep.Signatures)
	}
	for _, c := range p.Patch.Packages {
		if !strings.Contains(string(prov.Statement.Predicate), c.Package+"_") {
			t.Errorf("the provenance does not list %s's archive file", c.Package)
		}
	}
}
