package osv

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// cvss3Weights are the CVSS v3.0/v3.1 base metric weights (FIRST, CVSS
// v3.1 specification, section 7.4). PR's weight depends on the scope and
// is handled in cvss3BaseScore.
var cvss3Weights = map[string]map[string]float64{
	"AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
	"AC": {"L": 0.77, "H": 0.44},
	"PR": {"N": 0.85, "L": 0.62, "H": 0.27},
	"UI": {"N": 0.85, "R": 0.62},
	"S":  {"U": 0, "C": 0},
	"C":  {"H": 0.56, "L": 0.22, "N": 0},
	"I":  {"H": 0.56, "L": 0.22, "N": 0},
	"A":  {"H": 0.56, "L": 0.22, "N": 0},
}

// cvss3BaseScore computes the base score of a CVSS v3.0 or v3.1 vector
// ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"). Temporal and
// environmental metrics may follow and are ignored; every base metric must
// be present exactly once with a valid value.
func cvss3BaseScore(vector string) (float64, error) {
	parts := strings.Split(strings.TrimSpace(vector), "/")
	if len(parts) == 0 || (parts[0] != "CVSS:3.0" && parts[0] != "CVSS:3.1") {
		return 0, fmt.Errorf("cvss vector %q: not CVSS v3.0/v3.1", vector)
	}
	m := make(map[string]string, 8)
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, ":")
		if !ok || k == "" || v == "" {
			return 0, fmt.Errorf("cvss vector %q: malformed metric %q", vector, p)
		}
		w, base := cvss3Weights[k]
		if !base {
			continue // temporal / environmental metric
		}
		if _, dup := m[k]; dup {
			return 0, fmt.Errorf("cvss vector %q: metric %s repeated", vector, k)
		}
		if _, ok := w[v]; !ok {
			return 0, fmt.Errorf("cvss vector %q: invalid value %s:%s", vector, k, v)
		}
		m[k] = v
	}
	for k := range cvss3Weights {
		if _, ok := m[k]; !ok {
			return 0, fmt.Errorf("cvss vector %q: missing base metric %s", vector, k)
		}
	}
	changed := m["S"] == "C"
	pr := cvss3Weights["PR"][m["PR"]]
	if changed {
		switch m["PR"] {
		case "L":
			pr = 0.68
		case "H":
			pr = 0.5
		}
	}
	iss := 1 - (1-cvss3Weights["C"][m["C"]])*(1-cvss3Weights["I"][m["I"]])*(1-cvss3Weights["A"][m["A"]])
	var impact float64
	if changed {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	} else {
		impact = 6.42 * iss
	}
	expl := 8.22 * cvss3Weights["AV"][m["AV"]] * cvss3Weights["AC"][m["AC"]] * pr * cvss3Weights["UI"][m["UI"]]
	if impact <= 0 {
		return 0, nil
	}
	if changed {
		return roundUp(math.Min(1.08*(impact+expl), 10)), nil
	}
	return roundUp(math.Min(impact+expl, 10)), nil
}

// roundUp is the CVSS v3.1 Roundup: the smallest number with one decimal
// that is >= x, computed on integers to avoid float artefacts (v3.0's
// plain ceiling gives the same result but for those artefacts).
func roundUp(x float64) float64 {
	i := int64(math.Round(x * 100000))
	if i%10000 == 0 {
		return float64(i) / 100000
	}
	return float64(i/10000+1) / 10
}

// errNoCVSS3 means a record carries no CVSS v3 vector.
var errNoCVSS3 = errors.New("no CVSS v3 vector")

// scoreSeverity maps a CVSS v3 base score to a severity (CVSS v3.1
// qualitative rating scale). A score of 0.0 ("None") maps to LOW: the
// vendor listed the record, and drydock's scale has no NONE.
func scoreSeverity(score float64) vulndb.Severity {
	switch {
	case score >= 9.0:
		return vulndb.SeverityCritical
	case score >= 7.0:
		return vulndb.SeverityHigh
	case score >= 4.0:
		return vulndb.SeverityMedium
	default:
		return vulndb.SeverityLow
	}
}
