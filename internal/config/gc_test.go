package config

import (
	"strings"
	"testing"
)

func TestMatchRepository(t *testing.T) {
	for _, tc := range []struct {
		p, repo string
		want    bool
	}{
		{"quarantine/nginx", "quarantine/nginx", true},
		{"quarantine/nginx", "quarantine/nginx2", false},
		{"quarantine/*", "quarantine/nginx", true},
		{"quarantine/*", "quarantine/a/b", false},
		{"quarantine/*", "quarantine", false},
		{"quarantine/**", "quarantine/a/b", true},
		{"quarantine/**", "quarantine/a", true},
		{"quarantine/**", "quarantine", false},
		{"quarantine/**", "live/a", false},
		{"**", "anything/at/all", true},
		{"*/nginx", "live/nginx", true},
		{"*/nginx", "live/other", false},
		{"live/ng*", "live/nginx", true},
	} {
		if got := MatchRepository(tc.p, tc.repo); got != tc.want {
			t.Errorf("MatchRepository(%q, %q) = %v, want %v", tc.p, tc.repo, got, tc.want)
		}
	}
}

// TestGCConfigErrorsNameTheField: every invalid setting of gc
// is refused with its field's name.
func TestGCConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yaml  string
		field string
	}{
		{"schedule", "gc: {schedule: -1h}", "gc.schedule"},
		{"grace", "gc: {grace: -5m}", "gc.grace"},
		{"zero pace", "gc: {pace: 0}", "gc.pace"},
		{"pace over 1", "gc: {pace: 1.5}", "gc.pace"},
		{"negative yield", "gc: {yield: -1s}", "gc.yield"},
		{"yield over 10s", "gc: {yield: 1m}", "gc.yield"},
		{"negative writeback", "gc: {writeback: -1s}", "gc.writeback"},
		{"writeback under 10ms", "gc: {writeback: 9ms}", "gc.writeback"},
		{"writeback over 30s", "gc: {writeback: 31s}", "gc.writeback"},
		{"no repositories", "gc: {retention: [{keepDays: 3}]}", "gc.retention[0].repositories"},
		{"bad pattern", "gc: {retention: [{repositories: ['quarantine/**/x'], keepDays: 3}]}", "gc.retention[0].repositories[0]"},
		{"bad name", "gc: {retention: [{repositories: ['Quarantine/X'], keepDays: 3}]}", "gc.retention[0].repositories[0]"},
		{"keepTags only", "gc: {retention: [{repositories: [a], keepTags: [latest]}]}", "gc.retention[0]: set keepPatchTags or keepDays"},
		{"negative patches", "gc: {retention: [{repositories: [a], keepPatchTags: -1}]}", "gc.retention[0].keepPatchTags"},
		{"zero days", "gc: {retention: [{repositories: [a], keepDays: 0}]}", "gc.retention[0].keepDays"},
		{"bad keepTags", "gc: {retention: [{repositories: [a], keepDays: 1, keepTags: ['[']}]}", "gc.retention[0].keepTags[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			if err := Decode(strings.NewReader(tc.yaml), &cfg); err != nil {
				t.Fatal(err)
			}
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v, want one naming %s", err, tc.field)
			}
		})
	}

	for _, yaml := range []string{"gc: {writeback: 0s}", "gc: {writeback: 10ms}", "gc: {writeback: 30s}"} {
		cfg := Default()
		if err := Decode(strings.NewReader(yaml), &cfg); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", yaml, err)
		}
	}
	if d := Default().GC.Writeback; d != Duration(DefaultGCWriteback) {
		t.Errorf("gc.writeback defaults to %s", d)
	}

	ok := Default()
	if err := Decode(strings.NewReader(`gc: {schedule: 12h, grace: 0s, retention: [{repositories: ["quarantine/**"], keepPatchTags: 3, keepDays: 30, keepTags: [latest]}]}`), &ok); err != nil {
		t.Fatal(err)
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("a valid gc config: %v", err)
	}
	if *ok.GC.Retention[0].KeepPatchTags != 3 {
		t.Errorf("decoded %+v", ok)
	}
}
