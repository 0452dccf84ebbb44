package osinfo

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// DistroInfoSource is the Source of the releases ParseDistroInfo returns.
const DistroInfoSource = "distro-info-data"

const dateLayout = "2006-01-02"

// ParseDistroInfo reads a distro-info-data CSV (debian.csv, ubuntu.csv, ...)
// for distro ("debian", "ubuntu"). The header names the columns: version,
// codename, series, created, release and eol are required; Debian adds
// eol-lts and eol-elts, Ubuntu eol-server, eol-esm and eol-legacy. Empty
// fields are allowed; dates are YYYY-MM-DD.
//
// Mapping: Version drops a " LTS" suffix ("22.04 LTS" -> "22.04"). For
// Debian, EOL, EOLLTS and EOLELTS are the eol, eol-lts and eol-elts columns.
// For Ubuntu, EOL is the end of standard support (the later of eol and
// eol-server), EOLELTS is eol-esm (Expanded Security Maintenance, which
// needs an Ubuntu Pro subscription, as Debian ELTS is paid), and EOLLTS is
// unset; eol-legacy is not kept.
func ParseDistroInfo(r io.Reader, distro string) ([]vulndb.Release, error) {
	if distro == "" {
		return nil, errors.New("distro-info: empty distro name")
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("distro-info %s: reading header: %w", distro, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	for _, req := range []string{"version", "codename", "series", "created", "release", "eol"} {
		if _, ok := col[req]; !ok {
			return nil, fmt.Errorf("distro-info %s: header %q lacks column %q", distro, strings.Join(header, ","), req)
		}
	}
	var out []vulndb.Release
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("distro-info %s: %w", distro, err)
		}
		line, _ := cr.FieldPos(0)
		field := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		var perr error
		date := func(name string) time.Time {
			v := field(name)
			if v == "" || perr != nil {
				return time.Time{}
			}
			t, err := time.Parse(dateLayout, v)
			if err != nil {
				perr = fmt.Errorf("distro-info %s: line %d: column %s: %w", distro, line, name, err)
			}
			return t
		}
		rel := vulndb.Release{
			Distro:   distro,
			Version:  strings.TrimSpace(strings.TrimSuffix(field("version"), " LTS")),
			Codename: field("codename"),
			Series:   field("series"),
			Created:  date("created"),
			Released: date("release"),
			EOL:      date("eol"),
			Source:   DistroInfoSource,
		}
		if _, ubuntuStyle := col["eol-server"]; ubuntuStyle || distro == vulndb.Ubuntu {
			if s := date("eol-server"); s.After(rel.EOL) {
				rel.EOL = s
			}
			rel.EOLELTS = date("eol-esm")
		} else {
			rel.EOLLTS = date("eol-lts")
			rel.EOLELTS = date("eol-elts")
		}
		if perr != nil {
			return nil, perr
		}
		if rel.Series == "" && rel.Version == "" {
			return nil, fmt.Errorf("distro-info %s: line %d: neither version nor series", distro, line)
		}
		out = append(out, rel)
	}
	return out, nil
}

// State is a release's support state at a given time.
type State string

// States. Debian: regular security support until eol, then LTS (public,
// volunteer- and sponsor-funded) until eol-lts, then ELTS (paid, not in the
// public archive) until eol-elts. Ubuntu: standard support until eol, then
// ESM (Ubuntu Pro), reported as ELTS.
const (
	StateSupported State = "supported"
	StateLTS       State = "lts"
	StateELTS      State = "elts"
	StateEnded     State = "ended"
	// StateUnknown: the release is not in the data, or has not been
	// released yet (testing, sid), so no security support applies.
	StateUnknown State = "unknown"
)

// Support is a release's support state at a given time.
type Support struct {
	State State
	// Until is the last day of the current state (zero when open-ended or
	// unknown); for StateEnded, the last day any support existed.
	Until   time.Time
	Release vulndb.Release
}

// Supported reports public security support: StateSupported or StateLTS.
func (s Support) Supported() bool { return s.State == StateSupported || s.State == StateLTS }

// Ended reports no public security support: StateELTS (paid only) or
// StateEnded. drydock treats both as end of life.
func (s Support) Ended() bool { return s.State == StateELTS || s.State == StateEnded }

// Lifecycle judges o's support at now from releases (ParseDistroInfo of the
// matching distro). The release is matched by distro and ReleaseKey
// against Version, then against Series (codename keys such as "trixie").
// An end date is the last supported day: support ends at the end of that
// day, UTC.
func Lifecycle(o OS, releases []vulndb.Release, now time.Time) Support {
	rel, ok := findRelease(o, releases)
	if !ok {
		return Support{State: StateUnknown}
	}
	s := Support{Release: rel}
	if rel.Released.IsZero() || now.Before(rel.Released) {
		s.State = StateUnknown
		return s
	}
	for _, step := range []struct {
		state State
		end   time.Time
	}{{StateSupported, rel.EOL}, {StateLTS, rel.EOLLTS}, {StateELTS, rel.EOLELTS}} {
		if step.state == StateSupported && step.end.IsZero() {
			s.State = StateSupported // released, no end date yet
			return s
		}
		if step.end.IsZero() {
			continue
		}
		if now.Before(step.end.AddDate(0, 0, 1)) {
			s.State, s.Until = step.state, step.end
			return s
		}
		s.Until = step.end
	}
	s.State = StateEnded
	return s
}

func findRelease(o OS, releases []vulndb.Release) (vulndb.Release, bool) {
	key := o.ReleaseKey()
	if key == "" {
		key = o.VersionCodename
	}
	if key == "" {
		return vulndb.Release{}, false
	}
	for _, byName := range []bool{false, true} {
		for _, r := range releases {
			if r.Distro != o.ID {
				continue
			}
			if !byName && r.Version != "" && r.Version == key {
				return r, true
			}
			if byName && (strings.EqualFold(r.Series, key) || strings.EqualFold(r.Codename, key)) {
				return r, true
			}
		}
	}
	return vulndb.Release{}, false
}
