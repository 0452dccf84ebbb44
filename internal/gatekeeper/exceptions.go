package gatekeeper

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/store"
)

// ErrNoExceptionStore: the keeper was built without an exception store.
var ErrNoExceptionStore = errors.New("no exception store")

// storedExceptions returns the store's exceptions about an image (its
// digest, its quarantine/ repository, global), revoked ones left out and
// expired ones kept so that the verdict names them.
func (k *Keeper) storedExceptions(ctx context.Context, repo, digest string) ([]gate.Exception, error) {
	if k.exStore == nil {
		return nil, nil
	}
	all, err := k.exStore.List(ctx, exceptions.Filter{Digest: digest, Repository: repo})
	if err != nil {
		return nil, fmt.Errorf("reading the exceptions of %s: %w", digest, err)
	}
	out := make([]gate.Exception, 0, len(all))
	for _, e := range all {
		if e.Revoked.IsZero() {
			out = append(out, e.Gate())
		}
	}
	return out, nil
}

// Now is the gate's clock.
func (k *Keeper) Now() time.Time { return k.now() }

func (k *Keeper) exceptionStore() (exceptions.Store, error) {
	if k.exStore == nil {
		return nil, ErrNoExceptionStore
	}
	return k.exStore, nil
}

// Exceptions lists the stored exceptions f selects.
func (k *Keeper) Exceptions(ctx context.Context, f exceptions.Filter) ([]exceptions.Exception, error) {
	s, err := k.exceptionStore()
	if err != nil {
		return nil, err
	}
	return s.List(ctx, f)
}

// Exception returns one stored exception.
func (k *Keeper) Exception(ctx context.Context, id int64) (exceptions.Exception, error) {
	s, err := k.exceptionStore()
	if err != nil {
		return exceptions.Exception{}, err
	}
	return s.Get(ctx, id)
}

// ExportExceptions returns the stored exceptions f selects as one OpenVEX
// document, issued by actor now.
func (k *Keeper) ExportExceptions(ctx context.Context, actor string, f exceptions.Filter) ([]byte, error) {
	exs, err := k.Exceptions(ctx, f)
	if err != nil {
		return nil, err
	}
	return exceptions.Export(exs, actor, k.now())
}

// ExceptionChange is what creating or revoking an exception did: the
// exception and the verdicts it changed.
type ExceptionChange struct {
	Exception exceptions.Exception `json:"exception"`
	// Verdicts are the images decided again, with their new verdicts.
	Verdicts []store.Image `json:"verdicts"`
}

// CreateException validates e as created by actor now (its author and
// creation time are set here), stores it, audits it and decides again
// the verdicts it may change.
func (k *Keeper) CreateException(ctx context.Context, actor string, e exceptions.Exception) (*ExceptionChange, error) {
	s, err := k.exceptionStore()
	if err != nil {
		return nil, err
	}
	now := k.now()
	e.ID, e.Author, e.Created, e.Revoked, e.RevokedBy = 0, actor, now, time.Time{}, ""
	if err := e.Validate(now); err != nil {
		return nil, err
	}
	e, err = s.Create(ctx, e)
	if err != nil {
		return nil, err
	}
	if err := k.auditException(ctx, actor, "create", e); err != nil {
		return nil, fmt.Errorf("exception %d was created, but: %w", e.ID, err)
	}
	k.log.Info("exception created", "id", e.ID, "author", actor, "scope", e.Scope, "cve", e.CVE, "package", e.Package)
	// A new exception can change only verdicts that count findings.
	vs, err := k.redecide(ctx, e, func(im store.Image) bool {
		return im.Verdict.State == gate.StateFail || im.Verdict.State == gate.StateExempt
	})
	return &ExceptionChange{Exception: e, Verdicts: vs}, err
}

// RevokeException revokes an exception as actor, audits it and decides
// again the verdicts it applied to.
func (k *Keeper) RevokeException(ctx context.Context, actor string, id int64) (*ExceptionChange, error) {
	s, err := k.exceptionStore()
	if err != nil {
		return nil, err
	}
	e, err := s.Revoke(ctx, id, actor, k.now())
	if err != nil {
		return nil, err
	}
	if err := k.auditException(ctx, actor, "revoke", e); err != nil {
		return nil, fmt.Errorf("exception %d was revoked, but: %w", e.ID, err)
	}
	k.log.Info("exception revoked", "id", e.ID, "by", actor)
	gid := exceptions.GateID(e.ID)
	vs, err := k.redecide(ctx, e, func(im store.Image) bool {
		return slices.Contains(im.Verdict.Applied, gid) || slices.Contains(im.Verdict.ExpiredExceptions, gid)
	})
	return &ExceptionChange{Exception: e, Verdicts: vs}, err
}

func (k *Keeper) auditException(ctx context.Context, actor, op string, e exceptions.Exception) error {
	d, err := audit.Detail(map[string]any{"op": op, "exception": e})
	if err != nil {
		return err
	}
	_, err = k.audits.Record(context.WithoutCancel(ctx), audit.Entry{Actor: actor, Action: audit.ActionException,
		Repository: e.Repository, Digest: e.Digest, Reference: exceptions.GateID(e.ID), Outcome: audit.OutcomeOK, Detail: d})
	return err
}

// redecide decides again the verdicts of the images in e's scope that
// want says may change, and returns them.
func (k *Keeper) redecide(ctx context.Context, e exceptions.Exception, want func(store.Image) bool) ([]store.Image, error) {
	var images []store.Image
	switch e.Scope {
	case exceptions.ScopeDigest:
		im, err := k.store.Image(ctx, e.Digest)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			images = append(images, *im)
		}
	case exceptions.ScopeRepository:
		var err error
		if images, err = k.store.List(ctx, store.Filter{Repository: e.Repository}); err != nil {
			return nil, err
		}
	default:
		var err error
		if images, err = k.store.List(ctx, store.Filter{}); err != nil {
			return nil, err
		}
	}
	out := []store.Image{}
	var errs []error
	for _, im := range images {
		if !want(im) {
			continue
		}
		v, err := k.Reevaluate(ctx, im.Repository, im.Digest)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		im.Verdict = v
		out = append(out, im)
	}
	return out, errors.Join(errs...)
}
