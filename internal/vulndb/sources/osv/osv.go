// Package osv imports OSV bulk exports (<Ecosystem>/all.zip, one
// <id>.json per record) of the Debian, Ubuntu and Alpine ecosystems.
//
// Mapping (see Source.Import):
//   - affected[].package.ecosystem "Debian:12" -> debian "12" ("Debian:6.0"
//     -> "6", "Debian:13" is trixie), "Ubuntu:22.04:LTS" / "Ubuntu:24.10"
//     -> ubuntu "22.04" / "24.10", "Alpine:v3.21" -> alpine "3.21".
//     "Ubuntu:Pro:..." entries are skipped: their fixes ship through
//     Ubuntu Pro (ESM) archives, not the public ones images and the patcher
//     use, and they would contradict the public entry of the same release.
//     Other ecosystems and GIT-only entries are ignored.
//   - package.name is the source package (Debian/Ubuntu) or origin (Alpine).
//   - ECOSYSTEM ranges: a "fixed" event -> StatusFixed with FixedVersion
//     (the highest when several entries or ranges name the same package);
//     "fixed": "0" (the Alpine secdb's "not affected" marker) ->
//     StatusNotAffected; a range still open (introduced with no fixed) ->
//     StatusAffected, or StatusEndOfLife when the Debian urgency says
//     "end-of-life". Non-zero "introduced" bounds are not kept: the
//     Advisory contract has no lower bound, and Debian/Alpine never set one.
//   - Severity: Debian urgency (ecosystem_specific.urgency, see
//     debianrel.UrgencySeverity) when assigned, source "debian urgency";
//     else an Ubuntu priority (severity type "Ubuntu"), source "ubuntu
//     priority"; else the CVSS v3 base score of the affected entry's or the
//     record's CVSS_V3 vector, source "osv cvss_v3"; else UNKNOWN.
//   - IDs: CVE-* records keep their id; DEBIAN-CVE-*/UBUNTU-CVE-* become the
//     CVE id. Advisory records (DSA-, DLA-, DTSA-, USN-) are not emitted as
//     such: each CVE they list (related, upstream, aliases) gets FixedBy =
//     the advisory id for the release and package the advisory fixed, on
//     the CVE's own record when the zip has one (FixedVersion raised to the
//     advisory's when higher, as trivy-db does), else on a record made from
//     the advisory. An advisory listing no CVE becomes a record with its own
//     id (as Trivy does for e.g. DSA-3714-1).
//
// An export's records are restricted to its own ecosystem when the URL ends
// in Debian/all.zip, Ubuntu/all.zip or Alpine/all.zip (a CVE record of the
// Debian export also lists Alpine entries, which the Alpine export has
// too); other URLs take all three.
package osv

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	kflate "github.com/klauspost/compress/flate"

	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/sources/internal/debianrel"
)

// Name is the Source name.
const Name = "osv"

// DefaultMaxRecordSize bounds one zip member (uncompressed). The largest
// real Debian record (a kernel CVE) is under 1 MiB.
const DefaultMaxRecordSize = 16 << 20

// Source imports OSV bulk exports.
type Source struct {
	maxRecord int64
}

// Option configures a Source.
type Option func(*Source) error

// WithMaxRecordSize bounds the uncompressed size of one zip member.
func WithMaxRecordSize(n int64) Option {
	return func(s *Source) error {
		if n <= 0 {
			return fmt.Errorf("osv: max record size %d must be positive", n)
		}
		s.maxRecord = n
		return nil
	}
}

// New returns an OSV Source.
func New(opts ...Option) (*Source, error) {
	s := &Source{maxRecord: DefaultMaxRecordSize}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Name implements vulndb.Source.
func (s *Source) Name() string { return Name }

// DefaultURLs implements vulndb.Source: the osv.dev bulk exports.
func (s *Source) DefaultURLs() []string {
	return []string{
		"https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip",
		"https://osv-vulnerabilities.storage.googleapis.com/Ubuntu/all.zip",
		"https://osv-vulnerabilities.storage.googleapis.com/Alpine/all.zip",
	}
}

// record is the part of an OSV record the importer reads.
type record struct {
	ID         string     `json:"id"`
	Modified   string     `json:"modified"`
	Published  string     `json:"published"`
	Withdrawn  string     `json:"withdrawn"`
	Aliases    []string   `json:"aliases"`
	Related    []string   `json:"related"`
	Upstream   []string   `json:"upstream"`
	Summary    string     `json:"summary"`
	Details    string     `json:"details"`
	Severity   []severity `json:"severity"`
	Affected   []affected `json:"affected"`
	References []struct {
		URL string `json:"url"`
	} `json:"references"`
}

type severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

type affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Severity []severity `json:"severity"`
	Ranges   []struct {
		Type   string `json:"type"`
		Events []struct {
			Introduced   string `json:"introduced"`
			Fixed        string `json:"fixed"`
			LastAffected string `json:"last_affected"`
			Limit        string `json:"limit"`
		} `json:"events"`
	} `json:"ranges"`
	// EcosystemSpecific is free-form per ecosystem; only a string
	// "urgency" (Debian) is read from it.
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific"`
}

// key identifies one Advisory: vulnerability x distro x release x package.
type key struct{ id, distro, release, pkg string }

// fix is what the advisory records (DSA, DLA, DTSA, USN) say about a key.
type fix struct {
	ids       []string
	fixed     string
	title     string
	published time.Time
	used      bool
}

// importer holds one Import's state.
type importer struct {
	src    *Source
	file   string
	distro string // "" = every supported distro
	sink   vulndb.Sink
	buf    bytes.Buffer
	fixes  map[key]*fix
	noCVE  []vulndb.Advisory // advisory records naming no CVE

	freeInflater io.ReadCloser // released by the previous member
}

// Import implements vulndb.Source. path is an all.zip; records are read one
// member at a time, each bounded by the max record size.
func (s *Source) Import(ctx context.Context, url, file string, sink vulndb.Sink) error {
	zr, err := zip.OpenReader(file)
	if err != nil {
		return fmt.Errorf("osv: opening %s: %w", file, err)
	}
	defer zr.Close()
	return s.importZip(ctx, url, file, &zr.Reader, sink)
}

// importZip imports an opened export; file names it in errors.
func (s *Source) importZip(ctx context.Context, url, file string, zr *zip.Reader, sink vulndb.Sink) error {
	im := &importer{src: s, file: file, distro: distroFromURL(url), sink: sink, fixes: map[key]*fix{}}

	// klauspost's inflate is faster than compress/flate and already a
	// dependency (pinned for reproducible gzip, which inflate does not
	// touch); members are read one at a time, so one inflater is reused.
	zr.RegisterDecompressor(zip.Deflate, im.inflater)

	// Pass 1: advisory records, so that CVE records can carry FixedBy.
	seen := make(map[*zip.File]bool)
	for _, f := range zr.File {
		if !isJSONMember(f) || !isAdvisoryID(strings.TrimSuffix(path.Base(f.Name), ".json")) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := im.read(f)
		if err != nil {
			return err
		}
		seen[f] = true
		if err := im.collectAdvisory(f.Name, rec); err != nil {
			return err
		}
	}
	// Pass 2: every other record.
	for _, f := range zr.File {
		if !isJSONMember(f) || seen[f] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := im.read(f)
		if err != nil {
			return err
		}
		if isAdvisoryID(rec.ID) { // a member not named <id>.json
			err = im.collectAdvisory(f.Name, rec)
		} else {
			err = im.emitRecord(f.Name, rec)
		}
		if err != nil {
			return err
		}
	}
	// Pass 3: advisory fixes whose CVE has no record of its own.
	return im.emitLeftovers()
}

func isJSONMember(f *zip.File) bool {
	return !f.FileInfo().IsDir() && strings.HasSuffix(f.Name, ".json")
}

// inflater returns a deflate reader for one member, reusing the one the
// previous member released.
func (im *importer) inflater(r io.Reader) io.ReadCloser {
	if fr := im.freeInflater; fr != nil {
		im.freeInflater = nil
		if err := fr.(kflate.Resetter).Reset(r, nil); err == nil {
			return &pooledInflater{fr, im}
		}
	}
	return &pooledInflater{kflate.NewReader(r), im}
}

// pooledInflater hands its reader back to the importer on Close.
type pooledInflater struct {
	io.ReadCloser
	im *importer
}

func (p *pooledInflater) Close() error {
	err := p.ReadCloser.Close()
	if p.im != nil {
		p.im.freeInflater, p.im = p.ReadCloser, nil
	}
	return err
}

// read decodes one zip member, refusing members over the size bound.
func (im *importer) read(f *zip.File) (*record, error) {
	limit := im.src.maxRecord
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("osv: %s: record %s: %d bytes exceeds the %d-byte limit", im.file, f.Name, f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("osv: %s: opening record %s: %w", im.file, f.Name, err)
	}
	defer rc.Close()
	im.buf.Reset()
	n, err := im.buf.ReadFrom(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("osv: %s: reading record %s: %w", im.file, f.Name, err)
	}
	if n > limit {
		return nil, fmt.Errorf("osv: %s: record %s exceeds the %d-byte limit", im.file, f.Name, limit)
	}
	var rec record
	if err := json.Unmarshal(im.buf.Bytes(), &rec); err != nil {
		return nil, fmt.Errorf("osv: %s: decoding record %s: %w", im.file, f.Name, err)
	}
	if rec.ID == "" {
		return nil, fmt.Errorf("osv: %s: record %s has no id", im.file, f.Name)
	}
	return &rec, nil
}

// distroFromURL restricts an export to its ecosystem by the URL's
// "<Ecosystem>/all.zip" suffix.
func distroFromURL(u string) string {
	u, _, _ = strings.Cut(u, "?")
	dir := path.Base(path.Dir(u))
	switch dir {
	case "Debian":
		return vulndb.Debian
	case "Ubuntu":
		return vulndb.Ubuntu
	case "Alpine":
		return vulndb.Alpine
	}
	return ""
}

// collectAdvisory records what an advisory record fixes.
func (im *importer) collectAdvisory(member string, rec *record) error {
	if rec.Withdrawn != "" {
		return nil
	}
	published, err := parseTime(rec.Published)
	if err != nil {
		return fmt.Errorf("osv: %s: record %s (%s): published: %w", im.file, rec.ID, member, err)
	}
	var cves []string
	for _, l := range [][]string{rec.Upstream, rec.Aliases, rec.Related} {
		for _, id := range l {
			if c := cveID(id); c != "" {
				cves = append(cves, c)
			}
		}
	}
	slices.Sort(cves)
	cves = slices.Compact(cves)
	for _, a := range rec.Affected {
		distro, release, ok := parseEcosystem(a.Package.Ecosystem)
		if !ok || a.Package.Name == "" || (im.distro != "" && distro != im.distro) {
			continue
		}
		st := rangeState(distro, &a)
		if st.fixed == "" {
			continue // an advisory that fixes nothing here
		}
		if len(cves) == 0 {
			im.noCVE = append(im.noCVE, vulndb.Advisory{
				ID: rec.ID, Distro: distro, Release: release, Package: a.Package.Name,
				Status: vulndb.StatusFixed, FixedVersion: st.fixed, Severity: vulndb.SeverityUnknown,
				Title: rec.Summary, Description: rec.Details, References: references(rec),
				FixedBy: []string{rec.ID}, Published: published, Source: Name,
			})
			continue
		}
		for _, c := range cves {
			k := key{c, distro, release, a.Package.Name}
			f := im.fixes[k]
			if f == nil {
				f = &fix{title: rec.Summary, published: published}
				im.fixes[k] = f
			}
			f.ids = append(f.ids, rec.ID)
			f.fixed = maxVersion(distro, f.fixed, st.fixed)
			if !published.IsZero() && (f.published.IsZero() || published.Before(f.published)) {
				f.published = published
			}
		}
	}
	return nil
}

// entry is one package of one record, merged over its affected entries.
type entry struct {
	st      state
	urgency string
	sev     []severity
}

// emitRecord hands a vulnerability record's Advisory records to the sink.
func (im *importer) emitRecord(member string, rec *record) error {
	if rec.Withdrawn != "" {
		return nil
	}
	id := cmpOrString(cveID(rec.ID), rec.ID)
	if !strings.HasPrefix(rec.ID, "CVE-") && len(rec.Upstream) == 1 && cveID(rec.Upstream[0]) != "" {
		id = cveID(rec.Upstream[0])
	}
	published, err := parseTime(rec.Published)
	if err != nil {
		return fmt.Errorf("osv: %s: record %s (%s): published: %w", im.file, rec.ID, member, err)
	}
	modified, err := parseTime(rec.Modified)
	if err != nil {
		return fmt.Errorf("osv: %s: record %s (%s): modified: %w", im.file, rec.ID, member, err)
	}
	entries := map[key]*entry{}
	var keys []key
	for _, a := range rec.Affected {
		distro, release, ok := parseEcosystem(a.Package.Ecosystem)
		if !ok || a.Package.Name == "" || (im.distro != "" && distro != im.distro) {
			continue
		}
		st := rangeState(distro, &a)
		if !st.ranges {
			continue
		}
		k := key{id, distro, release, a.Package.Name}
		e := entries[k]
		if e == nil {
			e = &entry{}
			entries[k] = e
			keys = append(keys, k)
		}
		e.st.merge(distro, st)
		if u := urgency(a.EcosystemSpecific); u != "" {
			e.urgency = u
		}
		e.sev = append(e.sev, a.Severity...)
	}
	if len(keys) == 0 {
		return nil
	}
	refs := references(rec)
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		e := entries[k]
		adv := vulndb.Advisory{
			ID: k.id, Distro: k.distro, Release: k.release, Package: k.pkg,
			Title: rec.Summary, Description: rec.Details, References: refs,
			Published: published, Modified: modified, Source: Name,
		}
		switch {
		case e.st.open:
			adv.Status = vulndb.StatusAffected
			if strings.TrimRight(e.urgency, "*") == "end-of-life" {
				adv.Status = vulndb.StatusEndOfLife
			}
		case e.st.fixed != "":
			adv.Status, adv.FixedVersion = vulndb.StatusFixed, e.st.fixed
		case e.st.notAffected:
			adv.Status = vulndb.StatusNotAffected
		default:
			adv.Status = vulndb.StatusAffected
		}
		adv.Severity, adv.SeveritySource = im.severity(k.distro, e, rec)
		if f := im.fixes[k]; f != nil {
			f.used = true
			adv.FixedBy = sortedIDs(f.ids)
			if adv.Status != vulndb.StatusFixed || maxVersion(k.distro, adv.FixedVersion, f.fixed) != adv.FixedVersion {
				adv.Status, adv.FixedVersion = vulndb.StatusFixed, maxVersion(k.distro, adv.FixedVersion, f.fixed)
			}
		}
		if err := im.sink.Advisory(adv); err != nil {
			return fmt.Errorf("osv: %s: record %s: %w", im.file, rec.ID, err)
		}
	}
	return nil
}

func (im *importer) severity(distro string, e *entry, rec *record) (vulndb.Severity, string) {
	if distro == vulndb.Debian {
		if s, ok := debianrel.UrgencySeverity(e.urgency); ok {
			return s, debianrel.SeveritySource
		}
	}
	if distro == vulndb.Ubuntu {
		for _, s := range rec.Severity {
			if s.Type == "Ubuntu" {
				if sev, ok := ubuntuPriority(s.Score); ok {
					return sev, "ubuntu priority"
				}
			}
		}
	}
	if sev, err := cvssSeverity(e.sev, rec.Severity); err == nil {
		return sev, "osv cvss_v3"
	}
	return vulndb.SeverityUnknown, ""
}

// emitLeftovers emits the advisory-derived records no CVE record claimed,
// and the advisories that name no CVE, in a stable order.
func (im *importer) emitLeftovers() error {
	var keys []key
	for k, f := range im.fixes {
		if !f.used {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		f := im.fixes[k]
		adv := vulndb.Advisory{
			ID: k.id, Distro: k.distro, Release: k.release, Package: k.pkg,
			Status: vulndb.StatusFixed, FixedVersion: f.fixed, Severity: vulndb.SeverityUnknown,
			Title: f.title, FixedBy: sortedIDs(f.ids), Published: f.published, Source: Name,
		}
		if err := im.sink.Advisory(adv); err != nil {
			return fmt.Errorf("osv: %s: %s: %w", im.file, k.id, err)
		}
	}
	slices.SortFunc(im.noCVE, func(a, b vulndb.Advisory) int {
		return cmpStrings(a.ID, b.ID, a.Distro, b.Distro, a.Release, b.Release, a.Package, b.Package)
	})
	for _, adv := range im.noCVE {
		if err := im.sink.Advisory(adv); err != nil {
			return fmt.Errorf("osv: %s: %s: %w", im.file, adv.ID, err)
		}
	}
	return nil
}
