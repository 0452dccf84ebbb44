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

// TestStorageWriteback: storage.writeback defaults to a quarter of a
// second; 0s and values from 10ms to 30s are taken; others are refused
// with the field's name.
func TestStorageWriteback(t *testing.T) {
	if d := Default().Storage.Writeback; d != Duration(DefaultStorageWriteback) {
		t.Errorf("storage.writeback defaults to %s", d)
	}
	for _, tc := range []struct {
		yaml string
		ok   bool
	}{
		{"storage: {writeback: 0s}", true},
		{"storage: {writeback: 10ms}", true},
		{"storage: {writeback: 30s}", true},
		{"storage: {writeback: -1s}", false},
		{"storage: {writeback: 9ms}", false},
		{"storage: {writeback: 31s}", false},
	} {
		cfg := Default()
		if err := Decode(strings.NewReader(tc.yaml), &cfg); err != nil {
			t.Fatal(err)
		}
		err := cfg.Validate()
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.yaml, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "storage.writeback")) {
			t.Errorf("%s: %v, want an error naming storage.writeback", tc.yaml, err)
		}
	}
}
