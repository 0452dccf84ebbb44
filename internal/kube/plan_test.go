package kube

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/gate"
)

func TestPatchTags(t *testing.T) {
	tags := []string{"1.27.1", "1.27.1-1", "1.27.1-10", "1.27.1-2", "1.27.1-patched", "1.27.1-1000", "1.27.1-0", "1.27.10-3",
		"1.27.1-01", "1.27.1-patched2", "x1.27.1-4", "1.27.1-3-1", "latest"}
	var got []string
	for _, pt := range PatchTagsOf("1.27.1", tags) {
		got = append(got, pt.Tag)
	}
	if want := []string{"1.27.1-10", "1.27.1-2", "1.27.1-1", "1.27.1-patched"}; !reflect.DeepEqual(got, want) {
		t.Errorf("PatchTagsOf = %v, want %v", got, want)
	}
	for in, want := range map[string]string{"1.27.1-1": "1.27.1", "1.27.1-999": "1.27.1", "1.27.1-1000": "1.27.1-1000",
		"1.27.1-patched": "1.27.1", "1.27.1": "1.27.1", "v2-0": "v2-0", "-1": "-1"} {
		if got := OriginalTag(in); got != want {
			t.Errorf("OriginalTag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPlanner(t *testing.T) {
	reg := newTestRegistry(t)
	v := &fakeVerdicts{}
	orig := reg.push("live/nginx", "1.27.1", 1)
	p1 := reg.push("live/nginx", "1.27.1-1", 2)
	p2 := reg.push("live/nginx", "1.27.1-2", 3) // newest, but failing
	other := reg.push("live/nginx", "1.26.0", 4)
	reg.push("live/nginx", "1.26.0-patched", 4) // same digest as 1.26.0
	for d, s := range map[string]gate.State{orig: gate.StatePass, p1: gate.StateExempt, p2: gate.StateFail, other: gate.StatePass} {
		v.set(d, s)
	}
	h := reg.host
	pl, err := NewPlanner([]string{h}, reg, v)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pl.Plan(t.Context(), PlanRequest{Repository: "nginx", Images: []string{
		h + "/live/nginx:1.27.1", h + "/live/nginx:1.27.1", // twice: planned once
		h + "/live/nginx@" + orig,                                             // by digest: its original tag is found
		h + "/live/nginx:1.27.1-1",                                            // already there
		h + "/live/nginx:1.26.0",                                              // its patch tag is the same digest
		h + "/live/nginx:9.9",                                                 // no patch tag at all
		h + "/live/other:1.27.1", "evil.io/live/nginx:1.27.1", "nginx:1.27.1", // not this repository
	}})
	if err != nil {
		t.Fatal(err)
	}
	byImage := map[string]ImagePlan{}
	for _, ip := range plan.Images {
		byImage[strings.TrimPrefix(ip.Image, h+"/live/nginx")] = ip
	}
	if len(plan.Images) != 5 || plan.Repository != "live/nginx" {
		t.Fatalf("plan %+v", plan)
	}
	want := ImagePlan{Image: h + "/live/nginx:1.27.1", FromDigest: orig, Original: "1.27.1", ToTag: "1.27.1-1", ToDigest: p1, ToImage: h + "/live/nginx@" + p1}
	if got := byImage[":1.27.1"]; got != want {
		t.Errorf("1.27.1: %+v\nwant %+v", got, want)
	}
	if got := byImage["@"+orig]; got.Original != "1.27.1" || got.ToImage != h+"/live/nginx@"+p1 {
		t.Errorf("by digest: %+v", got)
	}
	if got := byImage[":1.27.1-1"]; got.Moves() || !strings.Contains(got.Reason, "already at 1.27.1-1") {
		t.Errorf("1.27.1-1: %+v", got)
	}
	if got := byImage[":1.26.0"]; got.Moves() || !strings.Contains(got.Reason, "already at 1.26.0-patched") {
		t.Errorf("1.26.0: %+v", got)
	}
	if got := byImage[":9.9"]; got.Moves() || got.Reason != "no patch tag of 9.9 passes the gate" {
		t.Errorf("9.9: %+v", got)
	}

	// With the exempt patch failing too, 1.27.1 has no target, and says why.
	v.set(p1, gate.StateFail)
	plan, _ = pl.Plan(t.Context(), PlanRequest{Repository: "live/nginx", Images: []string{h + "/live/nginx:1.27.1"}})
	if got := plan.Images[0]; got.Moves() || !strings.Contains(got.Reason, "live/nginx:1.27.1-2 ("+p2+") has verdict fail now") ||
		!strings.Contains(got.Reason, "1.27.1-1") {
		t.Errorf("no passing patch: %+v", got)
	}

	// --to: a named tag for every image, checked first.
	plan, err = pl.Plan(t.Context(), PlanRequest{Repository: "nginx", To: "1.26.0", Images: []string{h + "/live/nginx:1.27.1-1"}})
	if err != nil || plan.Images[0].ToImage != h+"/live/nginx@"+other {
		t.Fatalf("--to 1.26.0: %+v %v", plan, err)
	}
	for _, bad := range []PlanRequest{
		{Repository: "nginx", To: "1.27.1-2"},
		{Repository: "nginx", To: "nope"},
		{Repository: "missing"},
		{Repository: "Bad/../x"},
		{Repository: ""},
	} {
		if _, err := pl.Plan(t.Context(), bad); !errors.Is(err, ErrInvalidPlan) {
			t.Errorf("Plan(%+v) = %v, want ErrInvalidPlan", bad, err)
		}
	}
}
