package workflow

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func lister(sets ...TagSet) TagLister {
	return func(_ context.Context, name string) (TagSet, error) {
		for _, s := range sets {
			if s.Name == name {
				return s, nil
			}
		}
		return TagSet{Name: name}, nil
	}
}

func mustConfig(t *testing.T, s string) *Config {
	t.Helper()
	c, err := ParseConfig([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func cfgOf(conv, repo, tags string) string {
	c := `{"version":"v1",`
	if conv != "" {
		c += `"tag-convention":"` + conv + `",`
	}
	return c + `"repositories":[{"repository":"` + repo + `","tags":[` + tags + `]}]}`
}

// row formats a match as acr-cli's --show-patch-tags does: repo,base,latest|N/A,
// plus drydock's next tag.
func row(m Match) string {
	latest := m.Latest
	if latest == "" {
		latest = "N/A"
	}
	next := m.Next
	if m.NextErr != "" {
		next = "ERROR"
	}
	return m.Name + "," + m.Tag + "," + latest + "," + next
}

func rows(sel *Selection) []string {
	var out []string
	for _, m := range sel.Matches {
		out = append(out, row(m))
	}
	return out
}

func TestSelectReference(t *testing.T) {
	q := func(tags ...string) TagSet { return TagSet{Name: "r", Quarantine: tags} }
	tests := []struct {
		name         string
		config       string
		set          TagSet
		want         []string
		wantNotFound []string
		wantIgnored  []string
	}{
		// Case 12: incremental wildcard: latest 1.0-3, next 1.0-4 built from 1.0.
		{"case 12", cfgOf("incremental", "r", `"*"`), q("1.0", "1.0-1", "1.0-3", "1.0-patched"), []string{"r,1.0,1.0-3,1.0-4"}, nil, nil},
		// Case 13: the same tags, floating: 1.0-patched is the latest and the output.
		{"case 13", cfgOf("floating", "r", `"*"`), q("1.0", "1.0-1", "1.0-3", "1.0-patched"), []string{"r,1.0,1.0-patched,1.0-patched"}, nil, nil},
		// Case 14: only the original: N/A, next 1.0-1.
		{"case 14", cfgOf("", "r", `"1.0"`), q("1.0"), []string{"r,1.0,N/A,1.0-1"}, nil, nil},
		{"case 14 floating", cfgOf("floating", "r", `"1.0"`), q("1.0"), []string{"r,1.0,N/A,1.0-patched"}, nil, nil},
		// Case 15: numeric order: -10 after -9.
		{"case 15", cfgOf("", "r", `"1.0"`), q("1.0", "1.0-9", "1.0-10", "1.0-2"), []string{"r,1.0,1.0-10,1.0-11"}, nil, nil},
		// Case 16: -999 is the last: that image fails, not the selection.
		{"case 16", cfgOf("", "r", `"*"`), q("1.0", "1.0-999", "2.0", "2.0-5"), []string{"r,1.0,1.0-999,ERROR", "r,2.0,2.0-5,2.0-6"}, nil, nil},
		// Case 19: a missing explicit tag is not found and not counted.
		{"case 19", cfgOf("", "r", `"1.0","2.0"`), q("1.0"), []string{"r,1.0,N/A,1.0-1"}, []string{"r:2.0"}, nil},
		{"unlistable repository", cfgOf("", "nope", `"1.0"`), q("1.0"), nil, []string{"nope:1.0"}, nil},
		// The acceptance: only the original is patched; alpine-3 and
		// x-patched look like patches of tags that do not exist (ACR would
		// patch a missing "alpine").
		{"wildcard over decoys", cfgOf("incremental", "r", `"*"`), q("1.27.1", "1.27.1-1", "1.27.1-3", "x-patched", "alpine-3"),
			[]string{"r,1.27.1,1.27.1-3,1.27.1-4"}, nil, []string{"r:alpine-3", "r:x-patched"}},
		// Explicit tags match literally, never as a pattern.
		{"literal 1.0 never matches 1x0", cfgOf("", "r", `"1.0"`), q("1x0", "1x0-1"), nil, []string{"r:1.0"}, nil},
		{"literal patches", cfgOf("", "r", `"1.0"`), q("1.0", "1x0-4", "1.0-1-1", "1.0-01"), []string{"r,1.0,N/A,1.0-1"}, nil, nil},
		{"floating -patched2 is not a patch", cfgOf("floating", "r", `"1.0"`), q("1.0", "1.0-patched2"), []string{"r,1.0,N/A,1.0-patched"}, nil, nil},
		// A patch tag counts wherever it is (live/ after promotion).
		{"patch only in live", cfgOf("", "r", `"1.0"`), TagSet{Name: "r", Quarantine: []string{"1.0"}, Live: []string{"1.0-2"}}, []string{"r,1.0,1.0-2,1.0-3"}, nil, nil},
		{"tag too long for a suffix", cfgOf("", "r", `"`+strings.Repeat("a", 127)+`"`), q(strings.Repeat("a", 127)), []string{"r," + strings.Repeat("a", 127) + ",N/A,ERROR"}, nil, nil},
		{"disabled entry", `{"version":"v1","repositories":[{"repository":"r","tags":["1.0"],"enabled":false}]}`, q("1.0"), nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := Select(t.Context(), mustConfig(t, tc.config), lister(tc.set))
			if err != nil {
				t.Fatal(err)
			}
			if got := rows(sel); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("matches %q, want %q", got, tc.want)
			}
			if !reflect.DeepEqual(sel.NotFound, tc.wantNotFound) {
				t.Errorf("not found %q, want %q", sel.NotFound, tc.wantNotFound)
			}
			var ign []string
			for _, i := range sel.Ignored {
				ign = append(ign, i.Image)
			}
			if !reflect.DeepEqual(ign, tc.wantIgnored) {
				t.Errorf("ignored %q, want %q", ign, tc.wantIgnored)
			}
			for _, m := range sel.Matches {
				if m.NextErr != "" && !strings.Contains(m.NextErr, "-999") && !strings.Contains(m.NextErr, "128 characters") {
					t.Errorf("%s: next error %q does not say why", m.Image(), m.NextErr)
				}
			}
		})
	}
}

func TestSelectSources(t *testing.T) {
	set := TagSet{Name: "nginx", Live: []string{"1.0", "1.0-1"}, Quarantine: []string{"1.0", "1.0-1", "1.0-2", "2.0"}}
	tests := []struct {
		repo string
		want []Match
	}{
		// The home: promoted tags from live/, the rest from quarantine/;
		// patches from quarantine/, where they are written.
		{"nginx", []Match{
			{Name: "nginx", Tag: "1.0", Entry: "nginx", Source: "live/nginx", Latest: "1.0-2", LatestSource: "quarantine/nginx", Next: "1.0-3"},
			{Name: "nginx", Tag: "2.0", Entry: "nginx", Source: "quarantine/nginx", Next: "2.0-1"},
		}},
		{"live/nginx", []Match{
			{Name: "nginx", Tag: "1.0", Entry: "live/nginx", Source: "live/nginx", Latest: "1.0-2", LatestSource: "quarantine/nginx", Next: "1.0-3"},
		}},
		{"quarantine/nginx", []Match{
			{Name: "nginx", Tag: "1.0", Entry: "quarantine/nginx", Source: "quarantine/nginx", Latest: "1.0-2", LatestSource: "quarantine/nginx", Next: "1.0-3"},
			{Name: "nginx", Tag: "2.0", Entry: "quarantine/nginx", Source: "quarantine/nginx", Next: "2.0-1"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.repo, func(t *testing.T) {
			sel, err := Select(t.Context(), mustConfig(t, cfgOf("", tc.repo, `"*"`)), lister(set))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sel.Matches, tc.want) {
				t.Errorf("got %+v\nwant %+v", sel.Matches, tc.want)
			}
		})
	}
}

// TestSelectLimit is the reference's case 18 (101 matches fail) and the
// dedup of one image named by two entries.
func TestSelectLimit(t *testing.T) {
	var tags []string
	for i := range 101 {
		tags = append(tags, fmt.Sprintf("v%d", i))
	}
	set := TagSet{Name: "r", Quarantine: tags}
	if _, err := Select(t.Context(), mustConfig(t, cfgOf("", "r", `"*"`)), lister(set)); err == nil || !strings.Contains(err.Error(), "101 images") {
		t.Errorf("101 matches: %v", err)
	}
	set.Quarantine = tags[:100]
	sel, err := Select(t.Context(), mustConfig(t, cfgOf("", "r", `"*"`)), lister(set))
	if err != nil || len(sel.Matches) != 100 {
		t.Errorf("100 matches: %d, %v", len(sel.Matches), err)
	}
	// The same image through two entries is one match.
	c := mustConfig(t, `{"version":"v1","repositories":[{"repository":"r","tags":["v1"]},{"repository":"quarantine/r","tags":["*"]}]}`)
	sel, err = Select(t.Context(), c, lister(TagSet{Name: "r", Quarantine: []string{"v1", "v2"}}))
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(sel); !reflect.DeepEqual(got, []string{"r,v1,N/A,v1-1", "r,v2,N/A,v2-1"}) {
		t.Errorf("dedup: %q", got)
	}
}
