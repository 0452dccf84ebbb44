package patch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/version"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// LoadReleases reads the distro-info data deciding end-of-life: from the
// vulnerability database when db is not nil and has it, else from
// distro-info-data's debian.csv and ubuntu.csv in dir (the host's
// /usr/share/distro-info). No data at all is not an error: end-of-life is
// then not checked, with a warning.
func LoadReleases(ctx context.Context, db *vulndb.DB, dir string) ([]vulndb.Release, error) {
	var all []vulndb.Release
	if db != nil {
		for _, d := range []string{"debian", "ubuntu"} {
			rs, err := db.Releases(ctx, d)
			if err != nil {
				return nil, fmt.Errorf("reading releases from the vulnerability database: %w", err)
			}
			all = append(all, rs...)
		}
		if len(all) > 0 {
			return all, nil
		}
	}
	if dir == "" {
		return nil, nil
	}
	for _, d := range []string{"debian", "ubuntu"} {
		name := filepath.Join(dir, d+".csv")
		fh, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		rs, err := osinfo.ParseDistroInfo(fh, d)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		all = append(all, rs...)
	}
	return all, nil
}

// checkSupport refuses end-of-life releases unless allowed.
func (e *engine) checkSupport(osi osinfo.OS, plan *Plan) error {
	sup := osinfo.Lifecycle(osi, e.o.releases, e.o.clock.Now())
	plan.Support = string(sup.State)
	if !sup.Until.IsZero() {
		plan.SupportEnd = sup.Until.Format(time.DateOnly)
	}
	if !sup.Ended() {
		if sup.State == osinfo.StateUnknown && len(e.o.releases) == 0 {
			e.o.log.Warn("patch: no distro-info data: cannot tell whether the release is end-of-life", "os", plan.OS)
		}
		return nil
	}
	// The end of public support: LTS for Debian, standard support for
	// Ubuntu (ELTS/ESM are not in the public archive).
	end := sup.Release.EOLLTS
	if end.IsZero() {
		end = sup.Release.EOL
	}
	if !end.IsZero() {
		plan.SupportEnd = end.Format(time.DateOnly)
	}
	if e.req.AllowEOL {
		e.o.log.Warn("patch: patching an end-of-life release (allow-eol)", "os", plan.OS, "support_ended", plan.SupportEnd)
		return nil
	}
	return fmt.Errorf("%s: public security support ended on %s (%s); the archive receives no more fixes: %w (use --allow-eol to patch from what the mirror still has)",
		plan.OS, plan.SupportEnd, sup.State, ErrEndOfLife)
}

// fixable matches snap, what inspect read of the image, against
// drydock's vulnerability database and returns its fixable packages with
// the highest fixed version each needs.
func (e *engine) fixable(ctx context.Context, snap *scan.Snapshot, cmp version.Comparer) (map[string]string, error) {
	if e.o.db == nil {
		return nil, fmt.Errorf("%w: mode %s needs a vulnerability database (\"drydock db update\")", ErrInvalidRequest, VulnerableOnly)
	}
	sc, err := scan.New(e.o.db, scan.WithLimits(e.o.scanLimits))
	if err != nil {
		return nil, err
	}
	rep, err := sc.Match(ctx, snap)
	if err != nil {
		return nil, fmt.Errorf("scanning for fixable vulnerabilities: %w", err)
	}
	out := map[string]string{}
	for _, f := range rep.Findings {
		if !f.Fixable() {
			continue
		}
		if cur, ok := out[f.PkgName]; !ok || !atLeast(cmp, cur, f.FixedVersion) {
			out[f.PkgName] = f.FixedVersion
		}
	}
	return out, nil
}
