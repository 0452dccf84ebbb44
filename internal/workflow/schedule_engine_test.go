package workflow_test

import (
	"slices"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/workflow"
)

// scheduledRuns returns the trigger details of the scheduled runs so far,
// oldest first.
func (h *harness) scheduledRuns(name string) []string {
	h.t.Helper()
	runs, err := h.store.Runs(h.t.Context(), workflow.RunFilter{Workflow: name})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, r := range slices.Backward(runs) {
		if r.Trigger.Kind == workflow.TriggerSchedule {
			out = append(out, r.Trigger.Detail)
		}
	}
	return out
}

// tickAt moves the clock and ticks.
func (h *harness) tickAt(at string) {
	h.t.Helper()
	h.clock.Set(mustTime(h.t, at))
	if err := h.eng.Tick(h.t.Context()); err != nil {
		h.t.Fatalf("tick at %s: %v", at, err)
	}
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sched(ts ...string) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = "scheduled for " + t + " UTC"
	}
	return out
}

// TestScheduleTicks drives the engine's tick with the injected clock: runs
// are queued exactly at ACR's day-of-month times, once however often the
// tick runs, once after a long outage, and update --schedule takes the
// time of day again. The schedule needs no scan: the config matches
// nothing, so each run ends at its trigger task.
func TestScheduleTicks(t *testing.T) {
	cases := []struct {
		name     string
		schedule string
		created  string
		ticks    []string
		want     []string
		next     string
	}{
		{"1d", "1d", "2026-12-06 14:07",
			[]string{"2026-12-06 20:00", "2026-12-07 14:06", "2026-12-07 14:07", "2026-12-07 14:08", "2026-12-07 23:59", "2026-12-08 14:07"},
			sched("2026-12-07 14:07", "2026-12-08 14:07"), "2026-12-09 14:07"},
		{"7d across a month end", "7d", "2026-01-20 09:30",
			[]string{"2026-01-22 09:29", "2026-01-22 09:30", "2026-01-29 09:31", "2026-02-01 09:30", "2026-02-05 00:00", "2026-02-08 09:30"},
			sched("2026-01-22 09:30", "2026-01-29 09:30", "2026-02-01 09:30", "2026-02-08 09:30"), "2026-02-15 09:30"},
		{"30d runs on the 1st and the 31st", "30d", "2026-01-02 00:00",
			[]string{"2026-01-31 00:00", "2026-02-01 00:00", "2026-02-28 23:59", "2026-03-01 00:00", "2026-03-31 00:00", "2026-04-01 00:00", "2026-04-30 12:00", "2026-05-01 00:00"},
			sched("2026-01-31 00:00", "2026-02-01 00:00", "2026-03-01 00:00", "2026-03-31 00:00", "2026-04-01 00:00", "2026-05-01 00:00"), "2026-05-31 00:00"},
		// The server was down for days: one run, then the schedule resumes.
		{"outage", "1d", "2026-12-06 14:07",
			[]string{"2026-12-10 18:00", "2026-12-10 18:01", "2026-12-11 14:07"},
			sched("2026-12-07 14:07", "2026-12-11 14:07"), "2026-12-12 14:07"},
		{"leap day", "14d", "2028-02-16 10:00",
			[]string{"2028-02-29 10:00", "2028-03-01 10:00"},
			sched("2028-02-29 10:00", "2028-03-01 10:00"), "2028-03-15 10:00"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, false)
			h.clock.Set(mustTime(t, tc.created))
			if _, err := h.eng.Create(t.Context(), workflow.CreateRequest{Config: config("incremental", "nothing", "1.0"), Schedule: tc.schedule}); err != nil {
				t.Fatal(err)
			}
			for _, at := range tc.ticks {
				h.tickAt(at)
			}
			if got := h.scheduledRuns(workflow.DefaultName); !slices.Equal(got, tc.want) {
				t.Errorf("scheduled runs:\n got %q\nwant %q", got, tc.want)
			}
			v, err := h.eng.Show(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			if !v.NextRuns[0].Equal(mustTime(t, tc.next)) {
				t.Errorf("next run %s, want %s", v.NextRuns[0], tc.next)
			}
		})
	}
}

// TestScheduleUpdate: update --schedule takes the time of day again and
// moves the next run; an update of the config alone keeps the schedule.
func TestScheduleUpdate(t *testing.T) {
	h := newHarness(t, false)
	ctx := t.Context()
	h.clock.Set(mustTime(t, "2026-12-06 14:07"))
	if _, err := h.eng.Create(ctx, workflow.CreateRequest{Config: config("incremental", "nothing", "1.0"), Schedule: "1d"}); err != nil {
		t.Fatal(err)
	}
	h.clock.Set(mustTime(t, "2026-12-06 18:30"))
	cfg := config("floating", "other", "2.0")
	res, err := h.eng.Update(ctx, workflow.UpdateRequest{Config: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	if res.Workflow.Cron != "7 14 */1 * *" || !res.Workflow.NextRuns[0].Equal(mustTime(t, "2026-12-07 14:07")) {
		t.Errorf("a config update changed the schedule: %s, next %v", res.Workflow.Cron, res.Workflow.NextRuns)
	}
	s := "10d"
	res, err = h.eng.Update(ctx, workflow.UpdateRequest{Schedule: &s})
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{mustTime(t, "2026-12-11 18:30"), mustTime(t, "2026-12-21 18:30"), mustTime(t, "2026-12-31 18:30")}
	if res.Workflow.Cron != "30 18 */10 * *" || !slices.EqualFunc(res.Workflow.NextRuns, want, time.Time.Equal) {
		t.Errorf("after update --schedule 10d at 18:30: %s, next %v", res.Workflow.Cron, res.Workflow.NextRuns)
	}
	if res.Workflow.Config.TagConvention != workflow.Floating {
		t.Errorf("the schedule update lost the config: %+v", res.Workflow.Config)
	}
	h.tickAt("2026-12-07 14:07") // the old time: nothing
	h.tickAt("2026-12-11 18:30")
	if got := h.scheduledRuns(workflow.DefaultName); !slices.Equal(got, sched("2026-12-11 18:30")) {
		t.Errorf("runs %q", got)
	}
}

// TestServiceErrors is the reference's cases 11 and 22, and the checks
// create and update make before anything is stored.
func TestServiceErrors(t *testing.T) {
	h := newHarness(t, false)
	ctx := t.Context()
	ok := config("incremental", "nginx", "1.27.1")
	sch := "7d"
	for _, tc := range []struct {
		name string
		err  func() error
		want error
		text string
	}{
		{"case 11: dry run and run now", func() error {
			_, err := h.eng.Create(ctx, workflow.CreateRequest{Config: ok, Schedule: "1d", DryRun: true, RunImmediately: true})
			return err
		}, workflow.ErrInvalid, "exclude each other"},
		{"case 11: update without change", func() error {
			_, err := h.eng.Update(ctx, workflow.UpdateRequest{})
			return err
		}, workflow.ErrInvalid, "--config"},
		{"case 22: update before create", func() error {
			_, err := h.eng.Update(ctx, workflow.UpdateRequest{Schedule: &sch})
			return err
		}, workflow.ErrNotFound, "does not exist"},
		{"bad schedule", func() error {
			_, err := h.eng.Create(ctx, workflow.CreateRequest{Config: ok, Schedule: "31d"})
			return err
		}, workflow.ErrInvalidSchedule, "<n>d"},
		{"bad config", func() error {
			_, err := h.eng.Create(ctx, workflow.CreateRequest{Config: `{"version":"v2"}`, Schedule: "1d"})
			return err
		}, workflow.ErrInvalidConfig, "version"},
		{"bad name", func() error {
			_, err := h.eng.Create(ctx, workflow.CreateRequest{Name: "Bad Name", Config: ok, Schedule: "1d"})
			return err
		}, workflow.ErrInvalid, "workflow name"},
		{"bad status filter", func() error {
			_, err := h.eng.ImageStatuses(ctx, workflow.StatusRequest{Status: "done"})
			return err
		}, workflow.ErrInvalid, "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if !errorsIs(err, tc.want) || err == nil || !contains(err.Error(), tc.text) {
				t.Errorf("got %v, want %v mentioning %q", err, tc.want, tc.text)
			}
		})
	}
	// Case 22: a second create is refused, even as a dry run.
	if _, err := h.eng.Create(ctx, workflow.CreateRequest{Config: ok, Schedule: "1d"}); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{false, true} {
		if _, err := h.eng.Create(ctx, workflow.CreateRequest{Config: ok, Schedule: "1d", DryRun: dry}); !errorsIs(err, workflow.ErrExists) {
			t.Errorf("second create (dry run %v): %v, want ErrExists", dry, err)
		}
	}
	// Another name is another workflow.
	if _, err := h.eng.Create(ctx, workflow.CreateRequest{Name: "weekly", Config: ok, Schedule: "7d"}); err != nil {
		t.Errorf("a second workflow under another name: %v", err)
	}
	if vs, _ := h.eng.List(ctx); len(vs) != 2 {
		t.Errorf("%d workflows, want 2", len(vs))
	}
}
