package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/drydock-project/drydock/internal/imgref"
)

// QuotaRule limits the bytes a namespace, or each repository matching a
// pattern, holds. Usage is dedupe-aware: a blob counts once per
// repository (and once per namespace), however many manifests list it.
// A repository follows the first repository rule matching it, and its
// namespace's rule as well.
type QuotaRule struct {
	// Namespace is a namespace ("quarantine", "live"): the limit applies
	// to all its repositories together.
	Namespace string `yaml:"namespace"`
	// Repository is a repository name or pattern (see
	// CheckRepositoryPattern): the limit applies to each matching
	// repository on its own.
	Repository string `yaml:"repository"`
	// Limit is the most bytes the scope may hold: "500GiB", "20GB",
	// "1048576".
	Limit ByteSize `yaml:"limit"`
}

// ByteSize is a number of bytes, written as an integer or with a unit
// (B, KB, MB, GB, TB: powers of 1000; KiB, MiB, GiB, TiB: powers of 1024).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseByteSize parses "20GiB", "1.5GB", "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a size (want e.g. 20GiB, 500MB, 1048576)", s)
	}
	v := f * float64(mult)
	if v > math.MaxInt64/2 || v < math.MinInt64/2 {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return ByteSize(v), nil
}

// UnmarshalYAML reads an integer or a string with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// String formats b with the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.m == 0 {
			return strconv.FormatInt(int64(b)/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

func validateQuotas(rules []QuotaRule) []error {
	var errs []error
	namespaces := map[string]int{}
	for i, q := range rules {
		field := fmt.Sprintf("gc.quotas[%d]", i)
		switch {
		case q.Namespace == "" && q.Repository == "":
			errs = append(errs, fmt.Errorf("%s: set namespace or repository", field))
		case q.Namespace != "" && q.Repository != "":
			errs = append(errs, fmt.Errorf("%s: set namespace or repository, not both", field))
		case q.Namespace != "":
			if strings.Contains(q.Namespace, "/") || imgref.CheckRepository(q.Namespace) != nil {
				errs = append(errs, fmt.Errorf("%s.namespace: %q is not a namespace (a repository's first component)", field, q.Namespace))
			} else if j, dup := namespaces[q.Namespace]; dup {
				errs = append(errs, fmt.Errorf("%s.namespace: %q has a quota already (gc.quotas[%d])", field, q.Namespace, j))
			} else {
				namespaces[q.Namespace] = i
			}
		default:
			if err := CheckRepositoryPattern(q.Repository); err != nil {
				errs = append(errs, fmt.Errorf("%s.repository: %w", field, err))
			}
		}
		if q.Limit <= 0 {
			errs = append(errs, fmt.Errorf("%s.limit: %d, want a positive size (e.g. 20GiB)", field, q.Limit))
		}
	}
	return errs
}
