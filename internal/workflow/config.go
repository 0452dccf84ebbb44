// Package workflow is drydock's continuous patching: a workflow names
// images by a config file (ACR's continuous-patching schema v1, exactly),
// a schedule (every N days, ACR's day-of-month arithmetic) and options;
// the engine, running inside `drydock serve` on the persistent job queue,
// scans the latest patch of each image and, when it has fixable findings or
// pending updates from its release's security suite, patches the original
// into the next patch tag (NAME:TAG-1, -2 ... or NAME:TAG-patched) in
// quarantine/, where the gate scans and promotes it like any image.
//
// Every run is recorded in a ledger (Store): a trigger task, then per image
// a scan task and, when needed, a patch task, each with its state, times,
// structured result and log.
//
// The semantics follow ACR's (see the project's reference notes), with
// ACR's mistakes fixed: explicit tags match literally, a real tag that
// looks like a patch tag of a missing one is never "patched" into that
// missing tag, an end-of-life or unsupported image is skipped with its
// reason instead of failing, and a patch equal to the latest one (same
// digest) writes no new tag.
package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/drydock-project/drydock/internal/imgref"
)

// Config file limits, as ACR's CLI enforces them.
const (
	// MaxConfigSize is the largest config file accepted (10 MiB).
	MaxConfigSize = 10 << 20
	// MaxImages is the most images (base tags) a workflow may match.
	MaxImages = 100
	// MaxRepositories and MaxTags bound the config's lists, so a hostile
	// config cannot make validation quadratic.
	MaxRepositories = 1000
	MaxTags         = 1000
)

// ConfigVersion is the only config schema version.
const ConfigVersion = "v1"

// TagConvention is how patch tags are named.
type TagConvention string

// Tag conventions.
const (
	// Incremental writes TAG-1, TAG-2, ... (up to TAG-999).
	Incremental TagConvention = "incremental"
	// Floating moves one tag, TAG-patched, to the newest patch.
	Floating TagConvention = "floating"
)

// Wildcard, alone in a tags list, selects every original tag.
const Wildcard = "*"

// Config is a workflow's config file, schema v1:
//
//	{"version": "v1", "tag-convention": "incremental"|"floating",
//	 "repositories": [{"repository": "nginx", "tags": ["1.27.1"], "enabled": true}]}
type Config struct {
	Version       string        `json:"version"`
	TagConvention TagConvention `json:"tag-convention"`
	Repositories  []Repository  `json:"repositories"`
}

// Repository is one entry of the config's repositories.
type Repository struct {
	// Repository is NAME (the image's home in drydock: each tag is read
	// from live/NAME once promoted, else from quarantine/NAME), or
	// live/NAME or quarantine/NAME explicitly.
	Repository string   `json:"repository"`
	Tags       []string `json:"tags"`
	Enabled    bool     `json:"enabled"`
}

// ConfigError is a config that does not validate; Field names the field
// ("repositories[1].tags[0]"), empty for the file as a whole.
type ConfigError struct {
	Field   string
	Message string
}

func (e *ConfigError) Error() string {
	if e.Field == "" {
		return "workflow config: " + e.Message
	}
	return "workflow config: " + e.Field + ": " + e.Message
}

// ErrInvalidConfig is wrapped by every config validation error.
var ErrInvalidConfig = errors.New("invalid workflow config")

func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

func cfgErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// reservedRE matches tags reserved for patch outputs, as ACR's CLI
// refuses them in a config: -patched, or a dash and one to three digits
// (-0 .. -999, leading zeros included).
var reservedRE = regexp.MustCompile(`-(patched|[0-9]{1,3})$`)

// LoadConfigFile reads and validates a config file: it must be a regular,
// non-empty file of at most MaxConfigSize bytes.
func LoadConfigFile(path string) (*Config, []byte, error) {
	data, err := ReadConfigFile(path)
	if err != nil {
		return nil, nil, err
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, nil, err
	}
	return c, data, nil
}

// ReadConfigFile reads a config file's bytes with ACR's file checks
// (exists, regular file, non-empty, at most MaxConfigSize bytes), without
// validating its content.
func ReadConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &ConfigError{Message: fmt.Sprintf("reading %s: %v", path, err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &ConfigError{Message: fmt.Sprintf("reading %s: %v", path, err)}
	}
	if !st.Mode().IsRegular() {
		return nil, cfgErr("", "%s is not a regular file", path)
	}
	if st.Size() > MaxConfigSize {
		return nil, cfgErr("", "%s is %d bytes, more than the limit of %d bytes (10 MiB)", path, st.Size(), MaxConfigSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, &ConfigError{Message: fmt.Sprintf("reading %s: %v", path, err)}
	}
	if len(data) > MaxConfigSize {
		return nil, cfgErr("", "%s is more than the limit of %d bytes (10 MiB)", path, MaxConfigSize)
	}
	if len(data) == 0 {
		return nil, cfgErr("", "%s is empty", path)
	}
	return data, nil
}

// ParseConfig parses and validates a config (see Config). Unknown fields
// are accepted and ignored, as ACR does; every error is a *ConfigError
// naming the field.
func ParseConfig(data []byte) (*Config, error) {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return nil, cfgErr("", "the config is empty")
	case len(data) > MaxConfigSize:
		return nil, cfgErr("", "the config is %d bytes, more than the limit of %d bytes (10 MiB)", len(data), MaxConfigSize)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, cfgErr("", "not a JSON object: %v", err)
	}
	if top == nil {
		return nil, cfgErr("", "not a JSON object")
	}
	c := &Config{TagConvention: Incremental}
	raw, ok := top["version"]
	if !ok {
		return nil, cfgErr("version", `required (want "v1")`)
	}
	if err := json.Unmarshal(raw, &c.Version); err != nil {
		return nil, cfgErr("version", `want the string "v1", got %s`, clip(raw))
	}
	if c.Version != ConfigVersion {
		return nil, cfgErr("version", `%q is not supported: want "v1"`, c.Version)
	}
	if raw, ok := top["tag-convention"]; ok {
		var tc string
		if err := json.Unmarshal(raw, &tc); err != nil {
			return nil, cfgErr("tag-convention", `want "incremental" or "floating", got %s`, clip(raw))
		}
		switch TagConvention(tc) {
		case Incremental, Floating:
			c.TagConvention = TagConvention(tc)
		default:
			return nil, cfgErr("tag-convention", `%q: want "incremental" or "floating" (lower case)`, tc)
		}
	}
	raw, ok = top["repositories"]
	if !ok {
		return nil, cfgErr("repositories", "required: a list of {repository, tags, enabled}")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, cfgErr("repositories", "want a list of {repository, tags, enabled}, got %s", clip(raw))
	}
	switch {
	case len(items) == 0:
		return nil, cfgErr("repositories", "empty: name at least one repository")
	case len(items) > MaxRepositories:
		return nil, cfgErr("repositories", "%d entries, more than the limit of %d", len(items), MaxRepositories)
	}
	for i, item := range items {
		r, err := parseRepository(fmt.Sprintf("repositories[%d]", i), item)
		if err != nil {
			return nil, err
		}
		for j, prev := range c.Repositories {
			if prev.Repository == r.Repository && prev.Enabled == r.Enabled && slices.Equal(prev.Tags, r.Tags) {
				return nil, cfgErr(fmt.Sprintf("repositories[%d]", i), "identical to repositories[%d]", j)
			}
		}
		c.Repositories = append(c.Repositories, r)
	}
	return c, nil
}

func parseRepository(field string, raw json.RawMessage) (Repository, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return Repository{}, cfgErr(field, "want an object {repository, tags, enabled}, got %s", clip(raw))
	}
	r := Repository{Enabled: true}
	v, ok := obj["repository"]
	if !ok {
		return r, cfgErr(field+".repository", "required")
	}
	if err := json.Unmarshal(v, &r.Repository); err != nil {
		return r, cfgErr(field+".repository", "want a string, got %s", clip(v))
	}
	if err := checkRepository(r.Repository); err != nil {
		return r, cfgErr(field+".repository", "%v", err)
	}
	v, ok = obj["tags"]
	if !ok {
		return r, cfgErr(field+".tags", `required: a list of tags, or ["*"] for all`)
	}
	var tags []json.RawMessage
	if err := json.Unmarshal(v, &tags); err != nil || tags == nil {
		return r, cfgErr(field+".tags", `want a list of tags, or ["*"] for all, got %s`, clip(v))
	}
	switch {
	case len(tags) == 0:
		return r, cfgErr(field+".tags", `empty: name at least one tag, or ["*"] for all`)
	case len(tags) > MaxTags:
		return r, cfgErr(field+".tags", "%d tags, more than the limit of %d", len(tags), MaxTags)
	}
	for j, t := range tags {
		tf := fmt.Sprintf("%s.tags[%d]", field, j)
		var tag string
		if err := json.Unmarshal(t, &tag); err != nil {
			return r, cfgErr(tf, "want a string, got %s", clip(t))
		}
		if slices.Contains(r.Tags, tag) {
			return r, cfgErr(tf, "%q is listed twice", tag)
		}
		if err := checkTag(tag, len(tags)); err != nil {
			return r, cfgErr(tf, "%v", err)
		}
		r.Tags = append(r.Tags, tag)
	}
	if v, ok := obj["enabled"]; ok {
		if err := json.Unmarshal(v, &r.Enabled); err != nil || string(bytes.TrimSpace(v)) == "null" {
			return r, cfgErr(field+".enabled", "want true or false, got %s", clip(v))
		}
	}
	return r, nil
}

// checkRepository accepts NAME, live/NAME and quarantine/NAME where NAME
// is a repository name of the OCI distribution spec.
func checkRepository(repo string) error {
	if repo == "" {
		return errors.New("empty: name a repository, e.g. nginx")
	}
	if len(repo) > 255 {
		return fmt.Errorf("%d characters, more than the limit of 255", len(repo))
	}
	n := NameOf(repo)
	if n == "" {
		return fmt.Errorf("%q names a namespace, not an image: e.g. %snginx", repo, repo)
	}
	if err := imgref.CheckRepository(n); err != nil {
		return fmt.Errorf("%q is not a valid repository name: %w", repo, err)
	}
	return nil
}

func checkTag(tag string, n int) error {
	switch {
	case tag == Wildcard && n > 1:
		return errors.New(`"*" selects every tag and must be the only one in its list`)
	case tag == Wildcard:
		return nil
	case tag == "":
		return errors.New("empty tag")
	case strings.Contains(tag, "*"):
		return fmt.Errorf(`%q: "*" is a wildcard only on its own (["*"]); tags are matched literally`, tag)
	case !imgref.ValidTag(tag):
		return fmt.Errorf("%q is not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-], at most 128 characters)", tag)
	case reservedRE.MatchString(tag):
		return fmt.Errorf("%q ends in a suffix reserved for patched images (-patched, -0 ... -999): name the original tag", tag)
	}
	return nil
}

// clip shortens a raw JSON value for an error message.
func clip(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// Namespace prefixes of drydock's registry.
const (
	quarantineNS = imgref.Quarantine + "/"
	liveNS       = imgref.Live + "/"
)

// NameOf returns the image name of a config repository: "nginx" for
// nginx, live/nginx and quarantine/nginx.
func NameOf(repo string) string {
	for _, ns := range []string{quarantineNS, liveNS} {
		if rest, ok := strings.CutPrefix(repo, ns); ok {
			return rest
		}
	}
	return repo
}

// Encode returns the config as canonical JSON (what the server stores).
func (c *Config) Encode() ([]byte, error) {
	return json.MarshalIndent(c, "", "  ")
}
