package workflow_test

import (
	"reflect"
	"testing"

	"github.com/drydock-project/drydock/internal/workflow"
)

func TestRolloutFor(t *testing.T) {
	h := newHarness(t, false)
	ctx := t.Context()
	for _, c := range []workflow.CreateRequest{
		{Name: "nginx-out", Config: config("incremental", "nginx", "1.27.1"), Schedule: "1d", Rollout: true},
		{Name: "nginx-quiet", Config: config("incremental", "nginx", "1.27.1"), Schedule: "1d"},
		{Name: "all-out", Config: config("floating", "live/nginx", "*"), Schedule: "1d", Rollout: true},
		{Name: "other-out", Config: config("incremental", "redis", "7"), Schedule: "1d", Rollout: true},
	} {
		if _, err := h.eng.Create(ctx, c); err != nil {
			t.Fatalf("create %s: %v", c.Name, err)
		}
	}
	off := false
	if _, err := h.eng.Update(ctx, workflow.UpdateRequest{Name: "other-out", Rollout: &off}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		repo, tag string
		want      []string
	}{
		{"live/nginx", "1.27.1-1", []string{"all-out", "nginx-out"}},
		{"live/nginx", "1.27.1-patched", []string{"all-out", "nginx-out"}},
		{"live/nginx", "1.26.0-3", []string{"all-out"}},
		{"live/nginx", "1.27.1", nil},         // not a patch tag
		{"quarantine/nginx", "1.27.1-1", nil}, // not promoted
		{"live/redis", "7-1", nil},            // its workflow's rollout turned off
		{"live/nginx-other", "1.27.1-1", nil}, // another image
		{"live/team/nginx", "1.27.1-1", nil},  // another image
	} {
		got, err := h.eng.RolloutFor(ctx, tc.repo, tc.tag)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("RolloutFor(%s, %s) = %v, want %v", tc.repo, tc.tag, got, tc.want)
		}
	}
	v, err := h.eng.Show(ctx, "nginx-out")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Rollout {
		t.Error("the workflow's view does not show rollout on")
	}
}
