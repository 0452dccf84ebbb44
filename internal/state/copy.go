package state

import (
	"context"
	"errors"
	"fmt"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/regstore"
)

// Install is one installation's state, opened: its configuration, its
// databases and its registry storage.
type Install struct {
	Config  config.Config
	DBs     *database.Opener
	Storage *regstore.Storage
}

// Open opens the installation cfg describes (cfg must have passed
// Validate). Close it when done.
func Open(ctx context.Context, cfg config.Config) (*Install, error) {
	o, err := database.NewOpener(cfg.Database, cfg.Data)
	if err != nil {
		return nil, err
	}
	st, err := regstore.Open(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	return &Install{Config: cfg, DBs: o, Storage: st}, nil
}

// Close releases the installation.
func (i *Install) Close() error { return i.Storage.Close() }

// String names the installation: its database and its storage.
func (i *Install) String() string {
	return fmt.Sprintf("%s, storage %s", i.Config.Database.Describe(i.Config.Data), i.Config.Storage.Driver)
}

// CopyOptions adjust Copy.
type CopyOptions struct {
	// VerifyContent reads every blob back from the target and checks its
	// digest (otherwise sizes are compared).
	VerifyContent bool
	// Progress, when not nil, is told what Copy is doing.
	Progress func(step string)
}

// CopyReport is what Copy moved and checked.
type CopyReport struct {
	Rows      map[string]int      `json:"rows"` // per table
	Jobs      int                 `json:"jobs"` // unfinished jobs
	Registry  regstore.CopyStats  `json:"registry"`
	Verified  int                 `json:"verifiedFiles"`
	AuditHead audit.Anchor        `json:"auditHead"`
	Applied   []database.Applied  `json:"migrationsApplied,omitempty"`
	Audit     *audit.VerifyResult `json:"auditVerify"`
}

// ErrTargetNotEmpty is returned when the target of a copy holds state.
var ErrTargetNotEmpty = errors.New("the target already holds state")

// Copy moves the whole state of from into to, which must be empty: every
// component's tables row by row (the audit log as stored, so its chain
// verifies on the copy), the jobs that have yet to run, and the registry
// (every blob, checked against its digest, and every tag and link). Then
// it verifies the copy: the same rows value for value, the audit chain
// intact with the same head, the same registry files, the same unfinished
// jobs. from must be at rest (no server running on it).
func Copy(ctx context.Context, from, to *Install, opts CopyOptions) (*CopyReport, error) {
	say := func(format string, args ...any) {
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf(format, args...))
		}
	}
	rep := &CopyReport{Rows: map[string]int{}}
	if _, err := Migrate(ctx, from.Config, from.DBs); err != nil {
		return nil, fmt.Errorf("source %s: %w", from, err)
	}
	applied, err := Migrate(ctx, to.Config, to.DBs)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", to, err)
	}
	rep.Applied = applied
	if err := checkEmpty(ctx, to); err != nil {
		return nil, err
	}

	for _, c := range Components(from.Config) {
		if len(c.Tables) == 0 {
			continue
		}
		err := withDBs(ctx, from, to, c.Name, func(src, dst *database.DB) error {
			for _, t := range c.Tables {
				n, err := database.CopyTable(ctx, src, dst, t)
				if err != nil {
					return err
				}
				rep.Rows[t.Name] = n
				say("copied %d rows of %s", n, t.Name)
			}
			return nil
		})
		if err != nil {
			return rep, err
		}
	}
	if rep.Jobs, err = jobs.CopyUnfinished(ctx, from.DBs, to.DBs); err != nil {
		return rep, err
	}
	say("copied %d jobs waiting to run", rep.Jobs)
	last := 0
	if rep.Registry, err = regstore.Copy(ctx, from.Storage.Uncached(), to.Storage.Uncached(), func(st regstore.CopyStats) {
		if done := st.Blobs + st.Skipped + st.Files; done-last >= 100 {
			last = done
			say("registry: %d blobs (%d MB), %d index files", st.Blobs+st.Skipped, st.Bytes>>20, st.Files)
		}
	}); err != nil {
		return rep, fmt.Errorf("copying the registry: %w", err)
	}
	say("copied the registry: %d blobs (%d MB; %d already there), %d index files",
		rep.Registry.Blobs, rep.Registry.Bytes>>20, rep.Registry.Skipped, rep.Registry.Files)

	say("verifying the copy")
	v, err := Verify(ctx, from, to, opts.VerifyContent)
	if err != nil {
		return rep, err
	}
	rep.Verified, rep.AuditHead, rep.Audit = v.Files, v.Audit.Head, v.Audit
	return rep, nil
}

// withDBs opens component name on both installations.
func withDBs(ctx context.Context, from, to *Install, name string, fn func(src, dst *database.DB) error) error {
	src, err := from.DBs.Open(ctx, name)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := to.DBs.Open(ctx, name)
	if err != nil {
		return err
	}
	defer dst.Close()
	return fn(src, dst)
}

// checkEmpty refuses a target that holds any state.
func checkEmpty(ctx context.Context, to *Install) error {
	for _, c := range Components(to.Config) {
		for _, t := range c.Tables {
			var n int
			err := withDBs(ctx, to, to, c.Name, func(db, _ *database.DB) error {
				var err error
				n, err = db.Count(ctx, t.Name)
				return err
			})
			if err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%w: %d rows in %s (%s); copy into a new, empty database and bucket", ErrTargetNotEmpty, n, t.Name, to)
			}
		}
	}
	if n, err := jobs.CountUnfinished(ctx, to.DBs); err != nil {
		return err
	} else if n > 0 {
		return fmt.Errorf("%w: %d jobs queued (%s)", ErrTargetNotEmpty, n, to)
	}
	if empty, err := regstore.Empty(ctx, to.Storage.Uncached()); err != nil {
		return err
	} else if !empty {
		return fmt.Errorf("%w: the registry holds repositories (%s)", ErrTargetNotEmpty, to)
	}
	return nil
}

// Verification is what Verify checked.
type Verification struct {
	Rows  int                 // table rows compared value for value
	Jobs  int                 // jobs waiting to run, in both
	Files int                 // registry files checked
	Audit *audit.VerifyResult // the copy's audit chain, through the source's head
}

// Verify checks that to holds what from holds: every table row value for
// value, the audit chain intact and ending at the source's head, as many
// jobs waiting to run, and every registry file (blobs by size, or by
// content when content is set). The first difference is the error.
func Verify(ctx context.Context, from, to *Install, content bool) (*Verification, error) {
	v := &Verification{}
	fail := func(err error) (*Verification, error) { return v, fmt.Errorf("verifying the copy: %w", err) }
	for _, c := range Components(from.Config) {
		if len(c.Tables) == 0 {
			continue
		}
		if err := withDBs(ctx, from, to, c.Name, func(src, dst *database.DB) error {
			for _, t := range c.Tables {
				n, err := database.CompareTables(ctx, src, dst, t)
				v.Rows += n
				if err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return fail(err)
		}
	}
	srcLog, closeSrc, err := audit.Open(ctx, from.DBs)
	if err != nil {
		return fail(err)
	}
	defer closeSrc()
	dstLog, closeDst, err := audit.Open(ctx, to.DBs)
	if err != nil {
		return fail(err)
	}
	defer closeDst()
	want, err := srcLog.Head(ctx)
	if err != nil {
		return fail(err)
	}
	if v.Audit, err = dstLog.VerifyFrom(ctx, want); err != nil {
		return fail(err)
	}
	if !v.Audit.OK() {
		return fail(fmt.Errorf("the audit chain of the copy is broken: %s", v.Audit.Broken))
	}
	if v.Audit.Head != want {
		return fail(fmt.Errorf("the audit log of the copy ends at %s, the source's at %s", v.Audit.Head, want))
	}
	a, err := jobs.CountUnfinished(ctx, from.DBs)
	if err != nil {
		return fail(err)
	}
	if v.Jobs, err = jobs.CountUnfinished(ctx, to.DBs); err != nil {
		return fail(err)
	}
	if a != v.Jobs {
		return fail(fmt.Errorf("%d jobs waiting in the source, %d in the copy", a, v.Jobs))
	}
	if v.Files, err = regstore.VerifyCopy(ctx, from.Storage.Uncached(), to.Storage.Uncached(), content); err != nil {
		return fail(err)
	}
	return v, nil
}
