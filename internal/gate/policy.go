// Package gate holds the quarantine -> live gate's pure decision logic:
// the policy file, OpenVEX exceptions, verdicts and their stability over
// rescans. It does no I/O beyond reading the readers it is given and reads
// the time only from its arguments.
package gate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// PolicyVersion is the only policy schema version this package reads.
const PolicyVersion = "v1"

// maxPolicySize bounds a policy file; policies are a few hundred bytes.
const maxPolicySize = 1 << 20

// severityRank orders severities, lowest first.
var severityRank = map[vulndb.Severity]int{
	vulndb.SeverityUnknown:  0,
	vulndb.SeverityLow:      1,
	vulndb.SeverityMedium:   2,
	vulndb.SeverityHigh:     3,
	vulndb.SeverityCritical: 4,
}

// rank returns s's rank; an unrecognised severity ranks as CRITICAL, so a
// finding the gate cannot place fails closed.
func rank(s vulndb.Severity) int {
	if r, ok := severityRank[s]; ok {
		return r
	}
	return severityRank[vulndb.SeverityCritical]
}

// ignorableStatuses are the vendor statuses a policy may ignore.
var ignorableStatuses = []vulndb.Status{
	vulndb.StatusWillNotFix, vulndb.StatusNoDSA, vulndb.StatusPostponed,
	vulndb.StatusEndOfLife, vulndb.StatusUndetermined, vulndb.StatusAffected,
}

// Policy is a validated gate policy, schema v1. Its YAML form:
//
//	version: v1                  # required
//	maxSeverity: HIGH            # required: UNKNOWN|LOW|MEDIUM|HIGH|CRITICAL; findings above it fail
//	fixableOnly: true            # only findings with a fixed version count (default false)
//	ignoreStatuses: [will_not_fix, no_dsa]  # vendor statuses whose findings are ignored ("no-dsa" is read as no_dsa)
//	blockEndOfLife: true         # an end-of-life OS fails (default true)
//	allowedSources: ['^docker\.io/library/']  # regexes over the import source; empty = any
//	maxScanAge: 24h              # older scans are not promotable; 0 or absent = no limit
//	autoPromote: false           # promote on pass/exempt (the caller acts on it)
//	graceWindow: 72h             # how long a pass -> fail flip waits; 0 = at once
//	followers: [signature, attestation]  # what may follow a promoted digest into live/ (classes, see
//	                             # imgref.Classes: signature, attestation, sbom, vex, scan-report, artifact);
//	                             # absent = every non-runnable artifact
//	requireSignedBy: [/etc/drydock/release.pub]  # public keys (PEM files) that must each have signed a
//	                             # digest (cosign or Notary Project signature) for it to be promoted
//
// The import source that allowedSources matches is the one `drydock import`
// reports after its copy (the import runs on the client): it is as
// trustworthy as the accounts holding push on quarantine/. A direct push
// has no source and fails a policy with allowedSources.
//
// Build one with LoadPolicy, or fill the fields and call Validate.
type Policy struct {
	Version        string
	MaxSeverity    vulndb.Severity
	FixableOnly    bool
	IgnoreStatuses []vulndb.Status
	BlockEndOfLife bool
	AllowedSources []string
	MaxScanAge     time.Duration
	AutoPromote    bool
	GraceWindow    time.Duration
	// Followers lists the classes of non-runnable artifacts that follow a
	// promoted digest into live/ (signatures, attestations, ...); nil
	// lets every class follow.
	Followers []string
	// RequireSignedBy lists public key files (PEM); a digest is promoted
	// only when each of them has signed it. The gatekeeper reads and
	// checks the keys.
	RequireSignedBy []string

	sources []*regexp.Regexp // compiled AllowedSources, set by Validate
}

// Problem is one thing wrong with a policy file.
type Problem struct {
	// Field is the YAML key ("maxSeverity", "allowedSources[1]"), empty
	// when the problem is not about one field (a syntax error).
	Field string
	// Line is the 1-based line in the file, 0 when unknown.
	Line    int
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Field != "" {
		fmt.Fprintf(&b, "%s: ", p.Field)
	}
	b.WriteString(p.Message)
	return b.String()
}

// PolicyError lists every problem found in a policy.
type PolicyError struct {
	Problems []Problem
}

func (e *PolicyError) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.String()
	}
	return "invalid policy: " + strings.Join(s, "; ")
}

// rawPolicy is the YAML shape; pointers tell absent from zero.
type rawPolicy struct {
	Version        string   `yaml:"version"`
	MaxSeverity    string   `yaml:"maxSeverity"`
	FixableOnly    bool     `yaml:"fixableOnly"`
	IgnoreStatuses []string `yaml:"ignoreStatuses"`
	BlockEndOfLife *bool    `yaml:"blockEndOfLife"`
	AllowedSources []string `yaml:"allowedSources"`
	MaxScanAge     string   `yaml:"maxScanAge"`
	AutoPromote    bool     `yaml:"autoPromote"`
	GraceWindow    string   `yaml:"graceWindow"`
	// Followers is a pointer so that an empty list (nothing follows)
	// differs from an absent one (everything follows).
	Followers       *[]string `yaml:"followers"`
	RequireSignedBy []string  `yaml:"requireSignedBy"`
}

// yamlLine matches the "line N: " prefix of yaml.v3's errors.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// LoadPolicy reads and validates a YAML policy. Unknown keys are errors.
// A *PolicyError lists every problem, with the field and line.
func LoadPolicy(r io.Reader) (*Policy, error) {
	p, probs, err := parsePolicy(r)
	if err != nil {
		return nil, err
	}
	if len(probs) > 0 {
		return nil, &PolicyError{Problems: probs}
	}
	return p, nil
}

// ValidatePolicy reads a policy and returns all its problems at once
// (nil when it is valid), for `drydock policy validate FILE`. The error is
// for a reader that failed, not for an invalid policy.
func ValidatePolicy(r io.Reader) ([]Problem, error) {
	_, probs, err := parsePolicy(r)
	return probs, err
}

func parsePolicy(r io.Reader) (*Policy, []Problem, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPolicySize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading policy: %w", err)
	}
	if len(data) > maxPolicySize {
		return nil, []Problem{{Message: fmt.Sprintf("policy is larger than %d bytes", maxPolicySize)}}, nil
	}
	var raw rawPolicy
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, []Problem{{Message: "policy is empty"}}, nil
		}
		return nil, yamlProblems(err), nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, []Problem{{Line: extra.Line, Message: "more than one YAML document"}}, nil
	}
	lines := keyLines(data)
	p := &Policy{
		Version:         raw.Version,
		MaxSeverity:     vulndb.Severity(raw.MaxSeverity),
		FixableOnly:     raw.FixableOnly,
		BlockEndOfLife:  raw.BlockEndOfLife == nil || *raw.BlockEndOfLife,
		AllowedSources:  raw.AllowedSources,
		AutoPromote:     raw.AutoPromote,
		RequireSignedBy: raw.RequireSignedBy,
	}
	if raw.Followers != nil {
		p.Followers = append([]string{}, *raw.Followers...)
	}
	for _, s := range raw.IgnoreStatuses {
		// Debian writes "no-dsa"; the scanner's status is no_dsa.
		p.IgnoreStatuses = append(p.IgnoreStatuses, vulndb.Status(strings.ReplaceAll(s, "-", "_")))
	}
	var probs []Problem
	parseDur := func(field, s string) time.Duration {
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			probs = append(probs, Problem{Field: field, Message: fmt.Sprintf("%q is not a duration (e.g. 24h, 90m)", s)})
		}
		return d
	}
	p.MaxScanAge = parseDur("maxScanAge", raw.MaxScanAge)
	p.GraceWindow = parseDur("graceWindow", raw.GraceWindow)
	probs = append(probs, p.problems()...)
	for i := range probs {
		if probs[i].Line == 0 {
			probs[i].Line = lines[strings.SplitN(probs[i].Field, "[", 2)[0]]
		}
	}
	sortProblems(probs)
	return p, probs, nil
}

// unknownField matches yaml.v3's strict-decoding error.
var unknownField = regexp.MustCompile(`^field (\S+) not found in type \S+$`)

// yamlProblems turns a yaml.v3 error into problems, one per message.
func yamlProblems(err error) []Problem {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var probs []Problem
	for _, m := range msgs {
		pr := Problem{Message: m}
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			fmt.Sscan(sm[1], &pr.Line)
			pr.Message = sm[2]
		}
		// yaml.v3 names Go types; say it in the policy's terms.
		if sm := unknownField.FindStringSubmatch(pr.Message); sm != nil {
			pr.Field, pr.Message = sm[1], "unknown field (see drydock policy validate --help for the format)"
		} else if i := strings.Index(pr.Message, " into gate.raw"); i >= 0 {
			pr.Message = pr.Message[:i]
		}
		probs = append(probs, pr)
	}
	return probs
}

// keyLines maps the top-level keys of a YAML mapping to their lines.
func keyLines(data []byte) map[string]int {
	m := map[string]int{}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return m
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return m
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		m[root.Content[i].Value] = root.Content[i].Line
	}
	return m
}

func sortProblems(probs []Problem) {
	slices.SortStableFunc(probs, func(a, b Problem) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return strings.Compare(a.Field, b.Field)
	})
}

// Validate checks p and compiles its source patterns. It returns a
// *PolicyError listing every problem (without line numbers).
func (p *Policy) Validate() error {
	if probs := p.problems(); len(probs) > 0 {
		return &PolicyError{Problems: probs}
	}
	return nil
}

// problems validates p, compiles its regexes, and returns what is wrong.
func (p *Policy) problems() []Problem {
	var probs []Problem
	add := func(field, format string, args ...any) {
		probs = append(probs, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch p.Version {
	case PolicyVersion:
	case "":
		add("version", "required (%s)", PolicyVersion)
	default:
		add("version", "unsupported version %q (want %s)", p.Version, PolicyVersion)
	}
	if p.MaxSeverity == "" {
		add("maxSeverity", "required (UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL)")
	} else if _, ok := severityRank[p.MaxSeverity]; !ok {
		add("maxSeverity", "unknown severity %q (want UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL)", p.MaxSeverity)
	}
	seen := map[vulndb.Status]bool{}
	for i, s := range p.IgnoreStatuses {
		f := fmt.Sprintf("ignoreStatuses[%d]", i)
		switch {
		case !slices.Contains(ignorableStatuses, s):
			add(f, "unknown vendor status %q (want one of %s)", s, joinStatuses(ignorableStatuses))
		case seen[s]:
			add(f, "duplicate status %q", s)
		}
		seen[s] = true
	}
	p.sources = p.sources[:0]
	for i, s := range p.AllowedSources {
		re, err := regexp.Compile(s)
		if err != nil {
			add(fmt.Sprintf("allowedSources[%d]", i), "bad regular expression %q: %v", s, err)
			continue
		}
		p.sources = append(p.sources, re)
	}
	if p.MaxScanAge < 0 {
		add("maxScanAge", "must not be negative (%s)", p.MaxScanAge)
	}
	if p.GraceWindow < 0 {
		add("graceWindow", "must not be negative (%s)", p.GraceWindow)
	}
	for i, c := range p.Followers {
		if !slices.Contains(imgref.Classes, c) {
			add(fmt.Sprintf("followers[%d]", i), "unknown class %q (want one of %s)", c, strings.Join(imgref.Classes, ", "))
		}
	}
	for i, k := range p.RequireSignedBy {
		if strings.TrimSpace(k) == "" {
			add(fmt.Sprintf("requireSignedBy[%d]", i), "empty key path")
		}
	}
	return probs
}

func joinStatuses(ss []vulndb.Status) string {
	s := make([]string, len(ss))
	for i, st := range ss {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// sourceAllowed reports whether ref matches an allowed source; with no
// patterns every source is allowed.
func (p *Policy) sourceAllowed(ref string) bool {
	if len(p.AllowedSources) == 0 {
		return true
	}
	sources := p.sources
	if len(sources) != len(p.AllowedSources) {
		// Not validated: compile here, without changing p; a bad
		// pattern matches nothing (fail closed).
		sources = nil
		for _, s := range p.AllowedSources {
			if re, err := regexp.Compile(s); err == nil {
				sources = append(sources, re)
			}
		}
	}
	for _, re := range sources {
		if re.MatchString(ref) {
			return true
		}
	}
	return false
}

// Follows reports whether a non-runnable artifact of class (see
// imgref.Class) may follow a promoted digest into live/.
func (p *Policy) Follows(class string) bool {
	return p.Followers == nil || slices.Contains(p.Followers, class)
}
