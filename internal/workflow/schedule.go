package workflow

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MaxScheduleDays is the longest schedule, as ACR allows it.
const MaxScheduleDays = 30

// Schedule is when a workflow runs: ACR's `--schedule Nd`, the cron
// expression "MIN HOUR */N * *" in UTC taken at the time the schedule is
// set. It runs on days 1, 1+N, 1+2N ... of every month at HOUR:MIN UTC, and
// starts again on the 1st: 7d runs on the 1st, 8th, 15th, 22nd and 29th;
// 30d on the 1st and the 31st. It is not a rolling interval.
type Schedule struct {
	Days   int `json:"days"`
	Hour   int `json:"hour"`
	Minute int `json:"minute"`
}

// ErrInvalidSchedule is wrapped by schedule errors.
var ErrInvalidSchedule = errors.New("schedule value is invalid")

var scheduleRE = regexp.MustCompile(`^[0-9]+d$`)

// ParseSchedule reads "Nd" (1 <= N <= 30; "01d" is 1) and fixes the hour
// and minute of the day at now's UTC time, as ACR does.
func ParseSchedule(s string, now time.Time) (Schedule, error) {
	if !scheduleRE.MatchString(s) {
		return Schedule{}, fmt.Errorf("--schedule %q: %w: want <n>d with n from 1 to %d, e.g. 1d or 7d", s, ErrInvalidSchedule, MaxScheduleDays)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
	if err != nil || n < 1 || n > MaxScheduleDays {
		return Schedule{}, fmt.Errorf("--schedule %q: %w: want <n>d with n from 1 to %d (the longest is %dd)", s, ErrInvalidSchedule, MaxScheduleDays, MaxScheduleDays)
	}
	u := now.UTC()
	return Schedule{Days: n, Hour: u.Hour(), Minute: u.Minute()}, nil
}

// Validate checks a schedule read from storage or a request.
func (s Schedule) Validate() error {
	if s.Days < 1 || s.Days > MaxScheduleDays || s.Hour < 0 || s.Hour > 23 || s.Minute < 0 || s.Minute > 59 {
		return fmt.Errorf("%w: %d days at %02d:%02d", ErrInvalidSchedule, s.Days, s.Hour, s.Minute)
	}
	return nil
}

// String is the schedule as users write it: "7d".
func (s Schedule) String() string { return strconv.Itoa(s.Days) + "d" }

// Cron is the schedule's cron expression: "MIN HOUR */N * *".
func (s Schedule) Cron() string { return fmt.Sprintf("%d %d */%d * *", s.Minute, s.Hour, s.Days) }

// ScheduleFromCron maps a cron expression of the form "MIN HOUR */N * *"
// to its schedule, as ACR's show does; any other expression is not a
// schedule of this kind (false).
func ScheduleFromCron(expr string) (Schedule, bool) {
	f := strings.Fields(expr)
	if len(f) != 5 || f[3] != "*" || f[4] != "*" || !strings.HasPrefix(f[2], "*/") {
		return Schedule{}, false
	}
	var s Schedule
	var err error
	if s.Minute, err = strconv.Atoi(f[0]); err != nil {
		return Schedule{}, false
	}
	if s.Hour, err = strconv.Atoi(f[1]); err != nil {
		return Schedule{}, false
	}
	if s.Days, err = strconv.Atoi(f[2][2:]); err != nil {
		return Schedule{}, false
	}
	if s.Validate() != nil {
		return Schedule{}, false
	}
	return s, true
}

// runsOn reports whether the schedule runs on day-of-month d.
func (s Schedule) runsOn(d int) bool { return (d-1)%s.Days == 0 }

// Next returns the first run time strictly after t, in UTC; the zero
// time for an invalid schedule.
func (s Schedule) Next(t time.Time) time.Time {
	if s.Validate() != nil {
		return time.Time{}
	}
	u := t.UTC()
	day := time.Date(u.Year(), u.Month(), u.Day(), s.Hour, s.Minute, 0, 0, time.UTC)
	// A run happens at least once a month (the 1st), so two months of
	// days always hold the next one.
	for range 64 {
		if s.runsOn(day.Day()) && day.After(u) {
			return day
		}
		day = day.AddDate(0, 0, 1)
	}
	return time.Time{} // unreachable: the 1st of every month matches
}

// NextN returns the next n run times after t.
func (s Schedule) NextN(t time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	for range n {
		t = s.Next(t)
		out = append(out, t)
	}
	return out
}

// Window is how far back list-runs looks, as ACR's list derives it from
// the schedule: N days.
func (s Schedule) Window() time.Duration { return time.Duration(s.Days) * 24 * time.Hour }
