// Package vulndb builds and reads drydock's local vulnerability database.
//
// Public feeds are imported in their original formats, each by one Source
// (OSV exports, the Debian security tracker's JSON and DSA/DLA/DTSA lists,
// the Alpine secdb, distro-info-data and debian-security-support). A Source
// turns one fetched file into normalized records handed to a Sink; the
// database stores them with where and when they came from, and answers the
// scanner's question: which advisories apply to source package P of
// release R of distribution D.
package vulndb

import (
	"context"
	"time"
)

// Distribution identifiers, as osinfo reports them (os-release ID).
const (
	Debian = "debian"
	Ubuntu = "ubuntu"
	Alpine = "alpine"
)

// Status is the vendor's verdict on a vulnerability in one release.
type Status string

// The statuses a record can carry. They map the feeds' own words: the
// Debian tracker's "resolved"/"open"/"undetermined" and its nodsa,
// ignored/"will not fix", postponed and end-of-life notes; OSV's fixed or
// open ranges; the secdb's secfixes (always fixed).
const (
	StatusFixed        Status = "fixed"        // FixedVersion fixes it
	StatusAffected     Status = "affected"     // open, no fix yet
	StatusWillNotFix   Status = "will_not_fix" // vendor decided not to fix (tracker "ignored")
	StatusNoDSA        Status = "no_dsa"       // minor issue, fixed in a point release if at all
	StatusPostponed    Status = "postponed"    // fix deferred
	StatusEndOfLife    Status = "end_of_life"  // package no longer supported in that release
	StatusNotAffected  Status = "not_affected" // the release's version never had the bug
	StatusUndetermined Status = "undetermined" // tracker has not decided
)

// Severity is a normalized severity, Trivy's scale.
type Severity string

// Severities, lowest to highest.
const (
	SeverityUnknown  Severity = "UNKNOWN"
	SeverityLow      Severity = "LOW"
	SeverityMedium   Severity = "MEDIUM"
	SeverityHigh     Severity = "HIGH"
	SeverityCritical Severity = "CRITICAL"
)

// Advisory is one vulnerability as it affects one source package in one
// release of one distribution, as one feed says.
type Advisory struct {
	// ID is the vulnerability identifier, a CVE id where there is one
	// (CVE-2024-1234), else the feed's own id.
	ID string `json:"id"`
	// Distro is Debian, Ubuntu or Alpine.
	Distro string `json:"distro"`
	// Release is the release key: the major version for Debian ("12"), the
	// VERSION_ID for Ubuntu ("22.04"), major.minor for Alpine ("3.21").
	// Feeds that use codenames are mapped to it (bookworm -> 12).
	Release string `json:"release"`
	// Package is the source package name (Debian, Ubuntu) or the origin
	// package (Alpine).
	Package string `json:"package"`
	// Status is the vendor's status in this release.
	Status Status `json:"status"`
	// FixedVersion is the first version that fixes it (StatusFixed only).
	FixedVersion string `json:"fixedVersion,omitempty"`
	// Severity and the feed field it came from (e.g. "debian urgency",
	// "osv severity", "nvd").
	Severity       Severity `json:"severity"`
	SeveritySource string   `json:"severitySource,omitempty"`
	Title          string   `json:"title,omitempty"`
	Description    string   `json:"description,omitempty"`
	References     []string `json:"references,omitempty"`
	// FixedBy lists the advisories that shipped the fix (DSA-5555-1,
	// DLA-3600-1, ALSA-...), sorted.
	FixedBy   []string  `json:"fixedBy,omitempty"`
	Published time.Time `json:"published,omitzero"`
	Modified  time.Time `json:"modified,omitzero"`
	// Source is the Source.Name that produced the record.
	Source string `json:"source"`
}

// Release is one distribution release and its support dates, from
// distro-info-data. Zero times mean "not set in the data".
type Release struct {
	Distro   string    `json:"distro"`
	Version  string    `json:"version"` // "12", "22.04"
	Codename string    `json:"codename"`
	Series   string    `json:"series"`
	Created  time.Time `json:"created,omitzero"`
	Released time.Time `json:"released,omitzero"`
	EOL      time.Time `json:"eol,omitzero"`
	EOLLTS   time.Time `json:"eolLTS,omitzero"`
	EOLELTS  time.Time `json:"eolELTS,omitzero"`
	Source   string    `json:"source"`
}

// PackageSupport is a debian-security-support entry: a source package whose
// security support in a release is limited or has ended.
type PackageSupport struct {
	Distro  string `json:"distro"`
	Release string `json:"release"`
	Package string `json:"package"`
	// Kind is "limited" or "ended".
	Kind string `json:"kind"`
	// LastVersion is the last supported version, EndDate when support
	// ended; Details is the file's free text (often a URL).
	LastVersion string    `json:"lastVersion,omitempty"`
	EndDate     time.Time `json:"endDate,omitzero"`
	Details     string    `json:"details,omitempty"`
	Source      string    `json:"source"`
}

// Sink receives the records a Source imports.
type Sink interface {
	Advisory(Advisory) error
	Release(Release) error
	PackageSupport(PackageSupport) error
}

// Source imports one public feed in its original format.
type Source interface {
	// Name identifies the source in the DB and in --source NAME=URL.
	Name() string
	// DefaultURLs are the feed's real public URLs.
	DefaultURLs() []string
	// Import reads one fetched file (a local path: zip archives need
	// random access), downloaded from url, and hands every record to sink.
	// Malformed input is an error naming the file and what was wrong.
	Import(ctx context.Context, url, path string, sink Sink) error
}
