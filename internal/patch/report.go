package patch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/drydock-project/drydock/internal/version"
)

// maxReportSize bounds a report file.
const maxReportSize = 256 << 20

// ParseReport reads a vulnerability report and returns its fixable OS
// packages: binary package name -> the highest fixed version any of its
// findings asks for. It accepts Trivy's JSON report (SchemaVersion 2, the
// format Copa's -r reads; only Results of Class "os-pkgs") and drydock's
// own scan JSON (schemaVersion 1). Findings without a fixed version are
// not fixable and are left out.
func ParseReport(r io.Reader) (map[string]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxReportSize+1))
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	if len(data) > maxReportSize {
		return nil, fmt.Errorf("report is larger than %d bytes", maxReportSize)
	}
	var probe struct {
		Trivy   *int `json:"SchemaVersion"`
		Drydock *int `json:"schemaVersion"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("report is not JSON: %w", err)
	}
	out := map[string]string{}
	add := func(pkg, fixed string) {
		if pkg == "" {
			return
		}
		// Trivy may list several fixed versions ("1.2-3, 1.3-1"): the
		// first is the release's own. Malformed versions are ignored.
		for v := range strings.SplitSeq(fixed, ",") {
			v = strings.TrimSpace(v)
			if !(version.Deb{}).Valid(v) {
				continue
			}
			if cur, ok := out[pkg]; !ok || !atLeast(version.Deb{}, cur, v) {
				out[pkg] = v
			}
			break
		}
	}
	switch {
	case probe.Trivy != nil:
		if *probe.Trivy != 2 {
			return nil, fmt.Errorf("trivy report SchemaVersion %d: want 2", *probe.Trivy)
		}
		var rep struct {
			Results []struct {
				Class           string
				Vulnerabilities []struct {
					PkgName, FixedVersion string
				}
			}
		}
		if err := json.Unmarshal(data, &rep); err != nil {
			return nil, fmt.Errorf("trivy report: %w", err)
		}
		for _, res := range rep.Results {
			if res.Class != "os-pkgs" {
				continue
			}
			for _, v := range res.Vulnerabilities {
				add(v.PkgName, v.FixedVersion)
			}
		}
	case probe.Drydock != nil:
		if *probe.Drydock != 1 {
			return nil, fmt.Errorf("drydock report schemaVersion %d: want 1", *probe.Drydock)
		}
		var rep struct {
			Findings []struct {
				PkgName      string `json:"pkgName"`
				FixedVersion string `json:"fixedVersion"`
			} `json:"findings"`
		}
		if err := json.Unmarshal(data, &rep); err != nil {
			return nil, fmt.Errorf("drydock report: %w", err)
		}
		for _, f := range rep.Findings {
			add(f.PkgName, f.FixedVersion)
		}
	default:
		return nil, errors.New("not a Trivy (SchemaVersion 2) or drydock (schemaVersion 1) JSON report")
	}
	return out, nil
}
