package osv

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/version"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/sources/internal/debianrel"
)

// parseEcosystem maps an OSV ecosystem to a distro and release key.
func parseEcosystem(eco string) (distro, release string, ok bool) {
	name, rest, found := strings.Cut(eco, ":")
	if !found || rest == "" {
		return "", "", false
	}
	switch name {
	case "Debian":
		return vulndb.Debian, debianrel.ReleaseKey(rest), true
	case "Alpine":
		return vulndb.Alpine, strings.TrimPrefix(rest, "v"), true
	case "Ubuntu":
		rel, _, _ := strings.Cut(rest, ":")
		if rel == "Pro" || rel == "" {
			return "", "", false
		}
		return vulndb.Ubuntu, rel, true
	}
	return "", "", false
}

// isAdvisoryID reports whether id is a distribution advisory (a fix
// announcement) rather than a vulnerability.
func isAdvisoryID(id string) bool {
	for _, p := range []string{"DSA-", "DLA-", "DTSA-", "USN-"} {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// cveID returns the CVE id an OSV id names: "CVE-2024-1" itself,
// "DEBIAN-CVE-2024-1" / "UBUNTU-CVE-2024-1" stripped; else "".
func cveID(id string) string {
	if i := strings.Index(id, "CVE-"); i >= 0 && (i == 0 || id[i-1] == '-') {
		if c := id[i:]; validCVE(c) {
			return c
		}
	}
	return ""
}

func validCVE(s string) bool {
	// CVE-YYYY-NNNN+
	if len(s) < len("CVE-2000-0000") || !strings.HasPrefix(s, "CVE-") || s[8] != '-' {
		return false
	}
	for i, r := range s[4:] {
		if i == 4 {
			continue
		}
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// comparer orders the versions of a distro's packages.
func comparer(distro string) version.Comparer {
	if distro == vulndb.Alpine {
		return version.APK{}
	}
	return version.Deb{}
}

// maxVersion returns the higher of two versions; unorderable ones compare
// as strings so that the result is still deterministic.
func maxVersion(distro, a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	c, err := comparer(distro).Compare(a, b)
	if err != nil {
		c = strings.Compare(a, b)
	}
	if c >= 0 {
		return a
	}
	return b
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// state is what one package's ranges say.
type state struct {
	fixed       string // highest real fixed version
	notAffected bool   // a "fixed": "0" range
	open        bool   // a range with no fix
	ranges      bool   // any ECOSYSTEM range at all
}

// rangeState folds an affected entry's ECOSYSTEM ranges.
func rangeState(distro string, a *affected) state {
	var st state
	for _, r := range a.Ranges {
		if r.Type != "ECOSYSTEM" {
			continue
		}
		st.ranges = true
		open := false
		for _, e := range r.Events {
			switch {
			case e.Introduced != "":
				open = true
			case e.Fixed == "0":
				st.notAffected, open = true, false
			case e.Fixed != "":
				st.fixed, open = maxVersion(distro, st.fixed, e.Fixed), false
			case e.LastAffected != "", e.Limit != "":
				// last_affected closes the range with no fix known.
				st.open = st.open || e.LastAffected != ""
				open = false
			}
		}
		st.open = st.open || open
	}
	return st
}

// merge folds another entry's state for the same package into st.
func (st *state) merge(distro string, o state) {
	st.fixed = maxVersion(distro, st.fixed, o.fixed)
	st.notAffected = st.notAffected || o.notAffected
	st.open = st.open || o.open
	st.ranges = st.ranges || o.ranges
}

func urgency(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	u, _ := m["urgency"].(string)
	return u
}

// ubuntuPriority maps an Ubuntu priority to a severity as Trivy does
// (negligible -> LOW).
func ubuntuPriority(p string) (vulndb.Severity, bool) {
	switch strings.ToLower(p) {
	case "negligible", "low":
		return vulndb.SeverityLow, true
	case "medium":
		return vulndb.SeverityMedium, true
	case "high":
		return vulndb.SeverityHigh, true
	case "critical":
		return vulndb.SeverityCritical, true
	}
	return vulndb.SeverityUnknown, false
}

// cvssSeverity returns the severity of the first valid CVSS v3 vector.
func cvssSeverity(lists ...[]severity) (vulndb.Severity, error) {
	var firstErr error
	for _, l := range lists {
		for _, s := range l {
			if s.Type != "CVSS_V3" {
				continue
			}
			score, err := cvss3BaseScore(s.Score)
			if err != nil {
				firstErr = cmpOr(firstErr, err)
				continue
			}
			return scoreSeverity(score), nil
		}
	}
	return vulndb.SeverityUnknown, cmpOr(firstErr, errNoCVSS3)
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func references(rec *record) []string {
	var refs []string
	for _, r := range rec.References {
		if r.URL != "" {
			refs = append(refs, r.URL)
		}
	}
	slices.Sort(refs)
	return slices.Compact(refs)
}

func cmpOrString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func compareKeys(a, b key) int {
	return cmpStrings(a.id, b.id, a.distro, b.distro, a.release, b.release, a.pkg, b.pkg)
}

func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

func sortedIDs(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}
