package workflow

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The seed's config file, byte for byte as the lab writes it.
const seedConfig = `{
  "version": "v1",
  "tag-convention": "incremental",
  "repositories": [
    {
      "repository": "nginx",
      "tags": ["1.27.1"],
      "enabled": true
    }
  ]
}
`

func TestParseConfigSeed(t *testing.T) {
	c, err := ParseConfig([]byte(seedConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != "v1" || c.TagConvention != Incremental || len(c.Repositories) != 1 {
		t.Fatalf("parsed %+v", c)
	}
	r := c.Repositories[0]
	if r.Repository != "nginx" || len(r.Tags) != 1 || r.Tags[0] != "1.27.1" || !r.Enabled {
		t.Errorf("repository %+v", r)
	}
}

// TestParseConfigReference runs every config case of the reference's test
// list (cases 1-7) and ACR's schema rules, each error naming its field.
func TestParseConfigReference(t *testing.T) {
	repo := func(items string) string { return `{"version":"v1","repositories":[` + items + `]}` }
	tests := []struct {
		name      string
		config    string
		wantField string // "" with wantErr "" = valid
		wantErr   string
	}{
		// Case 1: minimal config: valid, incremental, enabled.
		{"case 1 minimal", `{"version":"v1","repositories":[{"repository":"a","tags":["v1"]}]}`, "", ""},
		// Case 2: version v2 or missing.
		{"case 2 version v2", `{"version":"v2","repositories":[{"repository":"a","tags":["v1"]}]}`, "version", `"v2" is not supported`},
		{"case 2 version missing", `{"repositories":[{"repository":"a","tags":["v1"]}]}`, "version", "required"},
		{"version not a string", `{"version":1,"repositories":[{"repository":"a","tags":["v1"]}]}`, "version", "want the string"},
		// Case 3: empty lists and duplicate tags.
		{"case 3 repositories empty", `{"version":"v1","repositories":[]}`, "repositories", "empty"},
		{"case 3 tags empty", repo(`{"repository":"a","tags":[]}`), "repositories[0].tags", "empty"},
		{"case 3 tags duplicate", repo(`{"repository":"a","tags":["v1","v1"]}`), "repositories[0].tags[1]", "listed twice"},
		{"repositories missing", `{"version":"v1"}`, "repositories", "required"},
		{"repositories not a list", `{"version":"v1","repositories":{}}`, "repositories", "want a list"},
		{"repositories null", `{"version":"v1","repositories":null}`, "repositories", "want a list"},
		{"item not an object", repo(`"a"`), "repositories[0]", "want an object"},
		{"repository missing", repo(`{"tags":["v1"]}`), "repositories[0].repository", "required"},
		{"repository not a string", repo(`{"repository":5,"tags":["v1"]}`), "repositories[0].repository", "want a string"},
		{"repository empty", repo(`{"repository":"","tags":["v1"]}`), "repositories[0].repository", "empty"},
		{"repository upper case", repo(`{"repository":"Nginx","tags":["v1"]}`), "repositories[0].repository", "not a valid repository name"},
		{"repository namespace only", repo(`{"repository":"live/","tags":["v1"]}`), "repositories[0].repository", "names a namespace"},
		{"tags missing", repo(`{"repository":"a"}`), "repositories[0].tags", "required"},
		{"tag not a string", repo(`{"repository":"a","tags":[1]}`), "repositories[0].tags[0]", "want a string"},
		{"tag empty", repo(`{"repository":"a","tags":[""]}`), "repositories[0].tags[0]", "empty tag"},
		{"tag invalid", repo(`{"repository":"a","tags":["-x"]}`), "repositories[0].tags[0]", "not a valid tag"},
		{"enabled not a bool", repo(`{"repository":"a","tags":["v1"],"enabled":"yes"}`), "repositories[0].enabled", "want true or false"},
		{"enabled null", repo(`{"repository":"a","tags":["v1"],"enabled":null}`), "repositories[0].enabled", "want true or false"},
		// Case 4: the wildcard alone only.
		{"case 4 wildcard plus tag", repo(`{"repository":"a","tags":["*","v1"]}`), "repositories[0].tags[0]", "must be the only one"},
		{"case 4 wildcard alone", repo(`{"repository":"a","tags":["*"]}`), "", ""},
		{"wildcard inside a tag", repo(`{"repository":"a","tags":["v1*"]}`), "repositories[0].tags[0]", "matched literally"},
		// Case 5: reserved output tags, checked in disabled entries too.
		{"case 5 -patched", repo(`{"repository":"a","tags":["v1-patched"]}`), "repositories[0].tags[0]", "reserved"},
		{"case 5 -999", repo(`{"repository":"a","tags":["v1-999"]}`), "repositories[0].tags[0]", "reserved"},
		{"case 5 -0", repo(`{"repository":"a","tags":["v1-0"]}`), "repositories[0].tags[0]", "reserved"},
		{"case 5 1.27.1-3", repo(`{"repository":"a","tags":["1.27.1-3"]}`), "repositories[0].tags[0]", "reserved"},
		{"case 5 leading zeros", repo(`{"repository":"a","tags":["v1-007"]}`), "repositories[0].tags[0]", "reserved"},
		{"case 5 reserved in a disabled entry", repo(`{"repository":"a","tags":["v1-1"],"enabled":false}`), "repositories[0].tags[0]", "reserved"},
		{"case 5 v1-1000 ok", repo(`{"repository":"a","tags":["v1-1000"]}`), "", ""},
		{"case 5 jammy-20240530 ok", repo(`{"repository":"a","tags":["jammy-20240530"]}`), "", ""},
		// Case 6: tag-convention is case-sensitive and never empty.
		{"case 6 Floating", `{"version":"v1","tag-convention":"Floating","repositories":[{"repository":"a","tags":["v1"]}]}`, "tag-convention", `"Floating"`},
		{"case 6 empty", `{"version":"v1","tag-convention":"","repositories":[{"repository":"a","tags":["v1"]}]}`, "tag-convention", `""`},
		{"tag-convention floating", `{"version":"v1","tag-convention":"floating","repositories":[{"repository":"a","tags":["v1"]}]}`, "", ""},
		// Case 7: identical entries refused; the same repository with other tags accepted.
		{"case 7 identical", repo(`{"repository":"a","tags":["v1"]},{"repository":"a","tags":["v1"]}`), "repositories[1]", "identical to repositories[0]"},
		{"case 7 identical with default", repo(`{"repository":"a","tags":["v1"]},{"repository":"a","tags":["v1"],"enabled":true}`), "repositories[1]", "identical"},
		{"case 7 same repository other tags", repo(`{"repository":"a","tags":["v1"]},{"repository":"a","tags":["v2"]}`), "", ""},
		// Unknown fields are accepted and ignored.
		{"unknown fields", `{"version":"v1","x":1,"repositories":[{"repository":"a","tags":["v1"],"y":[]}]}`, "", ""},
		{"explicit namespaces", repo(`{"repository":"live/a","tags":["v1"]},{"repository":"quarantine/team/b","tags":["*"]}`), "", ""},
		{"not JSON", `{"version":`, "", "not a JSON object"},
		{"JSON array", `[]`, "", "not a JSON object"},
		{"JSON null", `null`, "", "not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.config))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				if tc.name == "case 1 minimal" && (c.TagConvention != Incremental || !c.Repositories[0].Enabled) {
					t.Errorf("defaults: %+v", c)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("want a *ConfigError, got %v", err)
			}
			if ce.Field != tc.wantField || !strings.Contains(ce.Message, tc.wantErr) {
				t.Errorf("got field %q message %q; want field %q message containing %q", ce.Field, ce.Message, tc.wantField, tc.wantErr)
			}
			if tc.wantField != "" && !strings.Contains(err.Error(), tc.wantField+": ") {
				t.Errorf("error text %q does not name the field", err)
			}
		})
	}
}

// TestReadConfigFile is the reference's case 8 and ACR's file checks.
func TestReadConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) string {
		p := filepath.Join(dir, name)
		body := []byte(`{"version":"v1","repositories":[{"repository":"a","tags":["v1"]}]}`)
		if size > len(body) {
			body = append(body, []byte(strings.Repeat(" ", size-len(body)))...)
		} else if size >= 0 {
			body = body[:size]
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, want string
	}{
		{"empty file", write("empty.json", 0), "is empty"},
		{"10 MiB + 1", write("big.json", MaxConfigSize+1), "more than the limit"},
		{"directory", dir, "not a regular file"},
		{"missing", filepath.Join(dir, "nope.json"), "no such file"},
		{"exactly 10 MiB", write("max.json", MaxConfigSize), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := LoadConfigFile(tc.path)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(seedConfig))
	f.Add([]byte(`{"version":"v1","tag-convention":"floating","repositories":[{"repository":"live/a","tags":["*"],"enabled":false}]}`))
	f.Add([]byte(`{"version":"v1","repositories":[{"repository":"a","tags":["v1","v1-1"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		// A valid config re-encodes to a valid config with the same meaning.
		b, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ParseConfig(b)
		if err != nil {
			t.Fatalf("re-encoded config is invalid: %v\n%s", err, b)
		}
		if len(c2.Repositories) != len(c.Repositories) || c2.TagConvention != c.TagConvention {
			t.Fatalf("round trip changed the config: %+v -> %+v", c, c2)
		}
	})
}
