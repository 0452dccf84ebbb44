package debiantracker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/version"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/sources/internal/debianrel"
)

// The list format (the tracker's data/{DSA,DLA,DTSA}/list):
//
//	[29 Mar 2023] DSA-5380-1 xorg-server - security update
//		{CVE-2023-1393}
//		[bullseye] - xorg-server 2:1.20.11-1+deb11u6
//		NOTE: ...
//
// DTSA headers date as "[August 26th, 2005]". A release line's version is a
// version or a <status> (<not-affected>, <unfixed>, <end-of-life>,
// <removed>, <no-dsa>, <postponed>, <ignored>, <undetermined>) and may be
// followed by "(annotation)", where DTSAs give an urgency ("(high)",
// "(bug #123; medium)").
var (
	headerRE  = regexp.MustCompile(`^\[([^\]]+)\]\s+((?:DSA|DLA|DTSA)-\d+(?:-\d+)?)\s*(.*)$`)
	longDate  = regexp.MustCompile(`^([A-Za-z]+)\s+(\d{1,2})(?:st|nd|rd|th)?,\s*(\d{4})$`)
	releaseRE = regexp.MustCompile(`^\[([a-z][a-z0-9-]*)\]\s+-\s+(\S+)(?:\s+(\S+))?\s*(?:\((.*)\))?\s*$`)
	cveRE     = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)
)

// listStatus maps a list line's <status> to a Status. <removed> (the
// package left the release) is end of life for whoever still has it.
var listStatus = map[string]vulndb.Status{
	"<not-affected>": vulndb.StatusNotAffected,
	"<unfixed>":      vulndb.StatusAffected,
	"<end-of-life>":  vulndb.StatusEndOfLife,
	"<removed>":      vulndb.StatusEndOfLife,
	"<no-dsa>":       vulndb.StatusNoDSA,
	"<postponed>":    vulndb.StatusPostponed,
	"<ignored>":      vulndb.StatusWillNotFix,
	"<undetermined>": vulndb.StatusUndetermined,
}

// parseHeaderDate parses "29 Mar 2023" and "August 26th, 2005".
func parseHeaderDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse("2 Jan 2006", s); err == nil {
		return t, nil
	}
	if m := longDate.FindStringSubmatch(s); m != nil {
		return time.Parse("January 2 2006", m[1]+" "+m[2]+" "+m[3])
	}
	return time.Time{}, fmt.Errorf("unrecognized date %q", s)
}

// listKey identifies one record of a list.
type listKey struct{ id, release, pkg string }

// importList parses an advisory list: one record per vulnerability x
// release x package (the advisory's own id when it lists no CVE, as Trivy
// does). A fixed version gives StatusFixed and FixedBy = the advisory; a
// <status> gives that status. When several advisories name the same key
// (an incomplete fix, a regression update), the highest fixed version wins
// (trivy-db's rule) and FixedBy lists them all; a fix beats a <status>.
// Title is the header text after the id ("xorg-server - security update"),
// Published the advisory date (the earliest, when several). Lines of
// releases without a release key are skipped; a line the format does not
// allow is an error naming the line.
func (s *Source) importList(ctx context.Context, name string, r io.Reader, sink vulndb.Sink) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	recs := map[listKey]*vulndb.Advisory{}
	var (
		adv     string // current advisory id
		title   string
		date    time.Time
		cves    []string
		cmp     = version.Deb{}
		lineNum int
	)
	errf := func(format string, args ...any) error {
		return fmt.Errorf("debiantracker: %s:%d: %s", name, lineNum, fmt.Sprintf(format, args...))
	}
	for sc.Scan() {
		lineNum++
		if lineNum%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		switch {
		case line == "":
			continue
		case raw[0] == '[' && headerRE.MatchString(raw):
			m := headerRE.FindStringSubmatch(raw)
			d, err := parseHeaderDate(m[1])
			if err != nil {
				return errf("%s: %v", m[2], err)
			}
			adv, date, title, cves = m[2], d, strings.TrimSpace(m[3]), nil
		case raw[0] != ' ' && raw[0] != '\t':
			return errf("unrecognized line %q", truncate(raw))
		case adv == "":
			return errf("line before the first advisory header: %q", truncate(raw))
		case strings.HasPrefix(line, "NOTE:"):
			continue
		case strings.HasPrefix(line, "{"):
			if !strings.HasSuffix(line, "}") {
				return errf("%s: unterminated {...} list", adv)
			}
			for _, tok := range strings.Fields(line[1 : len(line)-1]) {
				if cveRE.MatchString(tok) {
					cves = append(cves, tok)
				}
			}
		case strings.HasPrefix(line, "["):
			m := releaseRE.FindStringSubmatch(line)
			if m == nil {
				return errf("%s: malformed release line %q", adv, truncate(line))
			}
			codename, pkg, ver, note := m[1], m[2], m[3], m[4]
			if ver == "" {
				return errf("%s: release line without a version: %q", adv, truncate(line))
			}
			release, ok := s.codenames[codename]
			if !ok {
				continue
			}
			status := vulndb.StatusFixed
			if strings.HasPrefix(ver, "<") {
				if status, ok = listStatus[ver]; !ok {
					return errf("%s: unknown status %s", adv, ver)
				}
			}
			sev, sevOK := noteSeverity(note)
			ids := cves
			if len(ids) == 0 {
				ids = []string{adv}
			}
			for _, id := range ids {
				k := listKey{id, release, pkg}
				rec := recs[k]
				if rec == nil {
					rec = &vulndb.Advisory{
						ID: id, Distro: vulndb.Debian, Release: release, Package: pkg, Status: status,
						Severity: vulndb.SeverityUnknown, Title: title, Published: date, Source: Name,
					}
					if status == vulndb.StatusFixed {
						rec.FixedVersion = ver
					}
					recs[k] = rec
				}
				if sevOK && rec.Severity == vulndb.SeverityUnknown {
					rec.Severity, rec.SeveritySource = sev, debianrel.SeveritySource
				}
				if status != vulndb.StatusFixed {
					continue
				}
				if rec.Status != vulndb.StatusFixed {
					rec.Status, rec.FixedVersion, rec.Title, rec.Published = vulndb.StatusFixed, ver, title, date
				} else if c, err := cmp.Compare(ver, rec.FixedVersion); c > 0 || (err != nil && ver > rec.FixedVersion) {
					rec.FixedVersion = ver // unorderable versions: string order, to stay deterministic
				}
				if date.Before(rec.Published) {
					rec.Published = date
				}
				rec.FixedBy = append(rec.FixedBy, adv)
			}
		default:
			return errf("%s: unrecognized line %q", adv, truncate(line))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("debiantracker: %s: after line %d: %w", name, lineNum, err)
	}
	keys := make([]listKey, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b listKey) int {
		if c := strings.Compare(a.id, b.id); c != 0 {
			return c
		}
		if c := strings.Compare(a.release, b.release); c != 0 {
			return c
		}
		return strings.Compare(a.pkg, b.pkg)
	})
	for _, k := range keys {
		rec := recs[k]
		slices.Sort(rec.FixedBy)
		rec.FixedBy = slices.Compact(rec.FixedBy)
		if err := sink.Advisory(*rec); err != nil {
			return fmt.Errorf("debiantracker: %s: %s: %w", name, k.id, err)
		}
	}
	return nil
}

// noteSeverity reads an urgency out of a release line's annotation.
func noteSeverity(note string) (vulndb.Severity, bool) {
	for _, part := range strings.FieldsFunc(note, func(r rune) bool { return r == ';' || r == ',' }) {
		if sev, ok := debianrel.UrgencySeverity(part); ok {
			return sev, true
		}
	}
	return vulndb.SeverityUnknown, false
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
