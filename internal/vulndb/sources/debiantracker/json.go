package debiantracker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/sources/internal/debianrel"
)

// jsonCVE is one CVE of one source package in the tracker's JSON export:
// {source_pkg: {CVE-id: jsonCVE}}.
type jsonCVE struct {
	Description string                 `json:"description"`
	Releases    map[string]jsonRelease `json:"releases"`
}

// jsonRelease is a CVE's state in one release (by codename).
type jsonRelease struct {
	Status       string `json:"status"`
	FixedVersion string `json:"fixed_version"`
	Urgency      string `json:"urgency"`
	NoDSA        string `json:"nodsa"`
	NoDSAReason  string `json:"nodsa_reason"`
}

// importJSON streams the export one source package at a time.
func (s *Source) importJSON(ctx context.Context, name string, r io.Reader, sink vulndb.Sink) error {
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("debiantracker: %s: not a JSON object (%v)", name, err)
	}
	for dec.More() {
		if err := ctx.Err(); err != nil {
			return err
		}
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("debiantracker: %s: reading package name: %w", name, err)
		}
		pkg, ok := tok.(string)
		if !ok || pkg == "" {
			return fmt.Errorf("debiantracker: %s: bad package name %v", name, tok)
		}
		var cves map[string]jsonCVE
		if err := dec.Decode(&cves); err != nil {
			return fmt.Errorf("debiantracker: %s: package %s: %w", name, pkg, err)
		}
		if err := s.emitJSONPackage(name, pkg, cves, sink); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("debiantracker: %s: %w", name, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("debiantracker: %s: trailing data after the JSON object", name)
	}
	return nil
}

func (s *Source) emitJSONPackage(name, pkg string, cves map[string]jsonCVE, sink vulndb.Sink) error {
	ids := make([]string, 0, len(cves))
	for id := range cves {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if id == "" {
			return fmt.Errorf("debiantracker: %s: package %s: empty vulnerability id", name, pkg)
		}
		c := cves[id]
		codenames := make([]string, 0, len(c.Releases))
		for cn := range c.Releases {
			codenames = append(codenames, cn)
		}
		slices.Sort(codenames)
		for _, cn := range codenames {
			release, ok := s.codenames[cn]
			if !ok {
				continue // sid, experimental, unknown
			}
			rel := c.Releases[cn]
			status, err := jsonStatus(rel)
			if err != nil {
				return fmt.Errorf("debiantracker: %s: package %s: %s in %s: %w", name, pkg, id, cn, err)
			}
			adv := vulndb.Advisory{
				ID: id, Distro: vulndb.Debian, Release: release, Package: pkg, Status: status,
				Severity: vulndb.SeverityUnknown, Description: c.Description,
				References: []string{"https://security-tracker.debian.org/tracker/" + id}, Source: Name,
			}
			if status == vulndb.StatusFixed {
				adv.FixedVersion = rel.FixedVersion
			}
			if sev, ok := debianrel.UrgencySeverity(rel.Urgency); ok {
				adv.Severity, adv.SeveritySource = sev, debianrel.SeveritySource
			}
			if err := sink.Advisory(adv); err != nil {
				return fmt.Errorf("debiantracker: %s: package %s: %s: %w", name, pkg, id, err)
			}
		}
	}
	return nil
}

// jsonStatus maps a release entry of the JSON export to a Status.
func jsonStatus(r jsonRelease) (vulndb.Status, error) {
	switch r.Status {
	case "resolved":
		if r.FixedVersion == "" || r.FixedVersion == "0" {
			return vulndb.StatusNotAffected, nil
		}
		return vulndb.StatusFixed, nil
	case "open":
		switch {
		case r.Urgency == "end-of-life":
			return vulndb.StatusEndOfLife, nil
		case r.NoDSAReason == "ignored":
			return vulndb.StatusWillNotFix, nil
		case r.NoDSAReason == "postponed":
			return vulndb.StatusPostponed, nil
		case r.NoDSA != "":
			return vulndb.StatusNoDSA, nil
		}
		return vulndb.StatusAffected, nil
	case "undetermined":
		return vulndb.StatusUndetermined, nil
	}
	return "", fmt.Errorf("unknown status %q", r.Status)
}
