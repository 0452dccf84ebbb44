// Package debiantracker imports the Debian security tracker's data: its
// JSON export (tracker/data/json) and its advisory lists (data/DSA/list,
// data/DLA/list, data/DTSA/list). Import tells them apart by content: the
// JSON export starts with '{', a list with an advisory header line.
//
// Release keys: the tracker names releases by codename (bookworm); they are
// mapped with a codename table, by default a built-in copy of
// distro-info-data's debian.csv (debianrel.Codenames), replaceable with
// distro-info Release records (WithReleases). Codenames without a release
// key (sid, experimental, unknown ones) are skipped.
//
// JSON statuses (per CVE and release):
//   - resolved with fixed_version "0" -> StatusNotAffected (the release
//     never had the vulnerable code); resolved with a version ->
//     StatusFixed; resolved with none -> StatusNotAffected.
//   - open: urgency "end-of-life" -> StatusEndOfLife; nodsa_reason
//     "ignored" -> StatusWillNotFix; "postponed" -> StatusPostponed; a
//     non-empty nodsa -> StatusNoDSA; else StatusAffected.
//   - undetermined -> StatusUndetermined.
//
// Severity is the tracker urgency (debianrel.UrgencySeverity), source
// "debian urgency"; unassigned urgencies give UNKNOWN.
//
// List records: see parseList.
package debiantracker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/sources/internal/debianrel"
)

// Name is the Source name.
const Name = "debian-tracker"

// Source imports the tracker's JSON export and advisory lists.
type Source struct {
	codenames map[string]string
}

// Option configures a Source.
type Option func(*Source) error

// WithReleases maps codenames with distro-info Release records (Debian
// ones; others are ignored) on top of the built-in table.
func WithReleases(releases []vulndb.Release) Option {
	return func(s *Source) error {
		s.codenames = debianrel.CodenamesFrom(releases)
		return nil
	}
}

// New returns a tracker Source.
func New(opts ...Option) (*Source, error) {
	s := &Source{codenames: debianrel.Codenames()}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Name implements vulndb.Source.
func (s *Source) Name() string { return Name }

// DefaultURLs implements vulndb.Source: the JSON export and the advisory
// lists of the tracker's repository.
func (s *Source) DefaultURLs() []string {
	const repo = "https://salsa.debian.org/security-tracker-team/security-tracker/-/raw/master/data/"
	return []string{
		"https://security-tracker.debian.org/tracker/data/json",
		repo + "DSA/list",
		repo + "DLA/list",
		repo + "DTSA/list",
	}
}

// Import implements vulndb.Source.
func (s *Source) Import(ctx context.Context, url, file string, sink vulndb.Sink) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("debiantracker: opening %s: %w", file, err)
	}
	defer f.Close()
	return s.importReader(ctx, file, f, sink)
}

func (s *Source) importReader(ctx context.Context, name string, r io.Reader, sink vulndb.Sink) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return fmt.Errorf("debiantracker: %s: empty file", name)
		}
		if err != nil {
			return fmt.Errorf("debiantracker: reading %s: %w", name, err)
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		if err := br.UnreadByte(); err != nil {
			return fmt.Errorf("debiantracker: reading %s: %w", name, err)
		}
		if b == '{' {
			return s.importJSON(ctx, name, br, sink)
		}
		return s.importList(ctx, name, br, sink)
	}
}
