package kube

import (
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/gate"
)

// admitFixture is a registry with live/nginx:1.27.1 (passing),
// live/nginx:bad (failing), quarantine/nginx:1.27.1, and an admitter for
// the registry's host.
type admitFixture struct {
	reg      *testRegistry
	verdicts *fakeVerdicts
	clock    *testClock
	a        *Admitter
	good     string // digest of live/nginx:1.27.1
	bad      string // digest of live/nginx:bad
	host     string
}

func newAdmitFixture(t *testing.T, ttl time.Duration) *admitFixture {
	t.Helper()
	f := &admitFixture{reg: newTestRegistry(t), verdicts: &fakeVerdicts{}, clock: newTestClock()}
	f.host = f.reg.host
	f.good = f.reg.push("live/nginx", "1.27.1", 1)
	f.bad = f.reg.push("live/nginx", "bad", 2)
	f.reg.push("quarantine/nginx", "1.27.1", 3)
	f.verdicts.set(f.good, gate.StatePass)
	f.verdicts.set(f.bad, gate.StateFail)
	var err error
	f.a, err = NewAdmitter(AdmitterOptions{Hosts: []string{"Drydock.Example.com", f.host}, Registry: f.reg,
		Verdicts: f.verdicts, VerdictTTL: ttl, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAdmitterRules(t *testing.T) {
	f := newAdmitFixture(t, 0)
	h := f.host
	for _, tc := range []struct {
		image, rule, msg string
	}{
		{h + "/live/nginx:1.27.1", "", ""},
		{h + "/live/nginx@" + f.goodDigest(), "", ""},
		{"drydock.example.com/live/nginx:1.27.1", "", ""},
		{"DRYDOCK.example.com/live/nginx:1.27.1", "", ""},
		{h + "/live/nginx:1.27.1@" + f.goodDigest(), "", ""},
		// A tag is ignored when a digest is given: the digest is pulled.
		{h + "/live/nginx:bad@" + f.goodDigest(), "", ""},
		{h + "/live/nginx:1.27.1@" + f.bad, RuleVerdict, "verdict fail now: exception: exception CVE-2023-1 expired"},
		{h + "/live/nginx:bad", RuleVerdict, "has verdict fail"},
		{h + "/quarantine/nginx:1.27.1", RuleNamespace, "repository quarantine/nginx is not in live/"},
		{"nginx:1.27.1", RuleRegistry, "registry docker.io is not this drydock"},
		{"live/nginx:1.27.1", RuleRegistry, "registry docker.io is not this drydock"},
		{"evil.io/live/nginx:1.27.1", RuleRegistry, "registry evil.io is not this drydock"},
		{"evil.io/drydock.example.com/live/nginx:1.27.1", RuleRegistry, "registry evil.io is not this drydock"},
		{"evil.io/x/live/nginx:1.27.1", RuleRegistry, "registry evil.io is not this drydock"},
		{"drydock.example.com.evil.io/live/nginx:1.27.1", RuleRegistry, "registry drydock.example.com.evil.io is not"},
		{"drydock.example.co/live/nginx:1.27.1", RuleRegistry, "is not this drydock"},
		{"drydock.example.com:443/live/nginx:1.27.1", RuleRegistry, "is not this drydock"},
		{h + "/live/nginx:1.27.2", RuleNotFound, "live/nginx:1.27.2 is not in this drydock's live/ namespace"},
		{h + "/live/other:1.27.1", RuleNotFound, "live/other:1.27.1 is not in"},
		{h + "/live/nginx@sha256:" + strings.Repeat("0", 64), RuleNotFound, "is not in this drydock's live/"},
		// The quarantined digest exists, but not in live/.
		{h + "/live/nginx@" + f.quarantined(t), RuleNotFound, "is not in this drydock's live/"},
		{h + "/live", RuleNamespace, "not in live/"},
		{h + "/livex/nginx:1.27.1", RuleNamespace, "livex/nginx is not in live/"},
		{h + "//live/nginx", RuleReference, "invalid image reference"},
		{"", RuleReference, "invalid image reference"},
	} {
		got, err := f.a.Check(t.Context(), []Container{{Kind: KindContainer, Name: "app", Image: tc.image}})
		if err != nil {
			t.Fatalf("%s: %v", tc.image, err)
		}
		v := got[0].Violation
		switch {
		case tc.rule == "" && v != nil:
			t.Errorf("%s denied: %s", tc.image, v)
		case tc.rule != "" && v == nil:
			t.Errorf("%s admitted, want rule %s", tc.image, tc.rule)
		case v != nil && (v.Rule != tc.rule || !strings.Contains(v.Message, tc.msg)):
			t.Errorf("%s: rule %s %q, want %s containing %q", tc.image, v.Rule, v.Message, tc.rule, tc.msg)
		}
		if tc.rule == "" && got[0].Digest != f.good {
			t.Errorf("%s: digest %s, want %s", tc.image, got[0].Digest, f.good)
		}
	}
	// The message names the container and the image.
	got, _ := f.a.Check(t.Context(), []Container{{Kind: KindInitContainer, Name: "setup", Image: "evil.io/live/x"}})
	if s := got[0].Violation.String(); !strings.HasPrefix(s, `init container "setup" image "evil.io/live/x": registry evil.io`) {
		t.Errorf("violation text %q", s)
	}
}

func (f *admitFixture) goodDigest() string { return f.good }

func (f *admitFixture) quarantined(t *testing.T) string {
	desc, err := f.reg.Resolve(t.Context(), "quarantine/nginx", "1.27.1")
	if err != nil {
		t.Fatal(err)
	}
	return desc.Digest.String()
}

func TestAdmitterWithoutVerdicts(t *testing.T) {
	f := newAdmitFixture(t, 0)
	a, err := NewAdmitter(AdmitterOptions{Hosts: []string{f.host}, Registry: f.reg})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Check(t.Context(), []Container{{Name: "a", Image: f.host + "/live/nginx:bad"}})
	if err != nil || got[0].Violation != nil || got[0].Digest != f.bad {
		t.Fatalf("verdicts off: %+v %v", got, err)
	}
	if f.verdicts.count() != 0 {
		t.Error("verdicts asked with verdict checking off")
	}
}

// TestAdmitterVerdictCache: a burst of admissions of one image decides its
// verdict once; a change shows once the clock (the gate's, or the wall
// clock) has moved past the time-to-live.
func TestAdmitterVerdictCache(t *testing.T) {
	f := newAdmitFixture(t, time.Hour) // the wall clock never expires it in this test
	cs := make([]Container, 8)
	for i := range cs {
		cs[i] = Container{Name: "c", Image: f.host + "/live/nginx:1.27.1"}
	}
	for range 50 {
		got, err := f.a.Check(t.Context(), cs)
		if err != nil || got[7].Violation != nil {
			t.Fatalf("%+v %v", got, err)
		}
	}
	if n := f.verdicts.count(); n != 1 {
		t.Fatalf("%d verdict decisions for 50 admissions of one image, want 1", n)
	}
	f.verdicts.set(f.good, gate.StateFail)
	f.clock.Add(59 * time.Minute)
	if got, _ := f.a.Check(t.Context(), cs[:1]); got[0].Violation != nil {
		t.Fatal("the cached pass was not reused inside the time-to-live")
	}
	f.clock.Add(time.Minute)
	if got, _ := f.a.Check(t.Context(), cs[:1]); got[0].Violation == nil || got[0].Violation.Rule != RuleVerdict {
		t.Fatalf("after the time-to-live the new verdict is not seen: %+v", got[0])
	}
	// A clock set back does not extend the life of an entry.
	f.verdicts.set(f.good, gate.StatePass)
	f.clock.Add(-2 * time.Hour)
	if got, _ := f.a.Check(t.Context(), cs[:1]); got[0].Violation != nil {
		t.Fatalf("a clock moved back kept the old verdict: %+v", got[0])
	}

	// The cache off: every admission decides.
	off, _ := NewAdmitter(AdmitterOptions{Hosts: []string{f.host}, Registry: f.reg, Verdicts: f.verdicts, VerdictTTL: -1})
	before := f.verdicts.count()
	for range 3 {
		_, _ = off.Check(t.Context(), cs[:1])
	}
	if n := f.verdicts.count() - before; n != 3 {
		t.Errorf("cache off: %d decisions for 3 admissions", n)
	}
}

func TestAdmitterPin(t *testing.T) {
	f := newAdmitFixture(t, 0)
	h := f.host
	pins, err := f.a.Pin(t.Context(), []Container{
		{Name: "a", Image: h + "/live/nginx:1.27.1", Path: "/spec/containers/0/image"},
		{Name: "b", Image: h + "/live/nginx@" + f.good, Path: "/spec/containers/1/image"},
		{Name: "c", Image: "evil.io/live/nginx:1.27.1", Path: "/spec/containers/2/image"},
		{Name: "d", Image: h + "/live/nginx:bad", Path: "/spec/containers/3/image"}, // pinned: the validator decides on its verdict
		{Name: "e", Image: h + "/live/nginx:nope", Path: "/spec/containers/4/image"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": h + "/live/nginx@" + f.good, "d": h + "/live/nginx@" + f.bad}
	if len(pins) != len(want) {
		t.Fatalf("pins %+v", pins)
	}
	for _, p := range pins {
		if want[p.Container.Name] != p.Image {
			t.Errorf("pin %s = %s, want %s", p.Container.Name, p.Image, want[p.Container.Name])
		}
	}
}

func TestNewAdmitterErrors(t *testing.T) {
	reg := newTestRegistry(t)
	for _, o := range []AdmitterOptions{
		{Registry: reg},
		{Hosts: []string{"d.io"}},
		{Hosts: []string{"https://d.io"}, Registry: reg},
	} {
		if _, err := NewAdmitter(o); err == nil {
			t.Errorf("NewAdmitter(%+v) accepted", o)
		}
	}
}
