// Package debianrel holds the small Debian tables the importers share:
// codenames to release keys and the tracker's urgency to a severity.
package debianrel

import (
	"maps"
	"strings"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// codenames is a built-in copy of distro-info-data's debian.csv
// (version,series columns), the release key being the version with a
// trailing ".0" dropped (6.0 -> "6") as os-release VERSION_ID and
// /etc/debian_version's major number give it. sid and the pseudo-suites
// have no release key. Importers clone it and let options override it
// with distro-info Release records.
var codenames = map[string]string{
	"buzz": "1.1", "rex": "1.2", "bo": "1.3", "hamm": "2.0", "slink": "2.1",
	"potato": "2.2", "woody": "3.0", "sarge": "3.1", "etch": "4", "lenny": "5",
	"squeeze": "6", "wheezy": "7", "jessie": "8", "stretch": "9",
	"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13",
	"forky": "14", "duke": "15",
}

// Codenames returns a fresh copy of the built-in codename -> release key
// table.
func Codenames() map[string]string { return maps.Clone(codenames) }

// CodenamesFrom builds a codename -> release key table from distro-info
// Release records of Debian, on top of the built-in table.
func CodenamesFrom(releases []vulndb.Release) map[string]string {
	m := Codenames()
	for _, r := range releases {
		if r.Distro != vulndb.Debian || r.Series == "" || r.Version == "" {
			continue
		}
		m[strings.ToLower(r.Series)] = ReleaseKey(r.Version)
	}
	return m
}

// ReleaseKey normalizes a Debian version to drydock's release key: "6.0"
// -> "6" (from 4.0 on, ".0" is the first point release of major N);
// "3.1", "12" are kept.
func ReleaseKey(v string) string {
	major, minor, ok := strings.Cut(v, ".")
	if ok && minor == "0" && len(major) > 0 && major != "1" && major != "2" && major != "3" {
		return major
	}
	return v
}

// UrgencySeverity maps a Debian security tracker urgency to a severity, as
// Trivy does (trivy-db pkg/vulnsrc/debian severityFromUrgency): unimportant
// and low -> LOW, medium -> MEDIUM, high -> HIGH; the "*"/"**" suffixes
// (urgency guessed from other data) are ignored. "not yet assigned",
// "end-of-life" and anything else give ok = false: the caller falls back
// to another severity source.
func UrgencySeverity(urgency string) (sev vulndb.Severity, ok bool) {
	switch strings.TrimRight(strings.TrimSpace(urgency), "*") {
	case "unimportant", "low":
		return vulndb.SeverityLow, true
	case "medium":
		return vulndb.SeverityMedium, true
	case "high":
		return vulndb.SeverityHigh, true
	}
	return vulndb.SeverityUnknown, false
}

// SeveritySource is the SeveritySource of severities from UrgencySeverity.
const SeveritySource = "debian urgency"
