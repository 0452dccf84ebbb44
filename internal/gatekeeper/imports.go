package gatekeeper

import (
	"context"
	"fmt"
	"strings"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/store"
)

// maxSourceLen bounds a recorded import source.
const maxSourceLen = 1024

// RecordImport records where the digest at ref (in quarantine/) was
// imported from, audits the import and decides its verdict again (the
// policy's allowedSources match the source).
func (k *Keeper) RecordImport(ctx context.Context, actor, ref, source string) (*Status, error) {
	source = strings.TrimSpace(source)
	if source == "" || len(source) > maxSourceLen || strings.ContainsAny(source, "\x00\n\r") {
		return nil, fmt.Errorf("import source %.40q: want a reference of at most %d bytes on one line", source, maxSourceLen)
	}
	repo, reference, digest, err := k.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !imgref.IsQuarantine(repo) {
		return nil, fmt.Errorf("%w: imports go to quarantine/, not %s", ErrInvalidRequest, repo)
	}
	if err := k.store.SetSource(ctx, digest, repo, source); err != nil {
		return nil, err
	}
	k.auditEntry(ctx, audit.Entry{Actor: actor, Action: audit.ActionImport, Repository: repo, Reference: reference,
		Digest: digest, Outcome: audit.OutcomeOK}, map[string]any{"source": source})
	st, err := k.status(ctx, repo, digest)
	if err != nil {
		return nil, err
	}
	st.Reference = reference
	return st, nil
}

// Images lists what the gate knows: every digest with its effective
// verdict, most recently updated first.
func (k *Keeper) Images(ctx context.Context) ([]store.Image, error) {
	return k.store.List(ctx, store.Filter{})
}

// Rescan queues a new scan of ref and returns the job id.
func (k *Keeper) Rescan(ctx context.Context, ref string) (int64, error) {
	repo, reference, digest, err := k.Resolve(ctx, ref)
	if err != nil {
		return 0, err
	}
	if !imgref.IsQuarantine(repo) && !imgref.IsLive(repo) {
		return 0, fmt.Errorf("%s: only quarantine/ and live/ images are scanned by the gate", ref)
	}
	tag := ""
	if !strings.Contains(reference, ":") {
		tag = reference
	}
	return k.Enqueue(ctx, repo, tag, digest, "rescan")
}
