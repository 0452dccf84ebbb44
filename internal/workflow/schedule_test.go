package workflow

import (
	"errors"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestParseSchedule is the reference's case 9 and case 10.
func TestParseSchedule(t *testing.T) {
	at := utc("2026-12-06 14:07")
	for _, ok := range []string{"1d", "5d", "10d", "30d", "01d"} {
		if _, err := ParseSchedule(ok, at); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"0d", "31d", "41d", "-1d", "d", "12", "dd", "df", "21dd", "1D", "", " 1d", "1d ", "999999999999999999999d"} {
		if _, err := ParseSchedule(bad, at); !errors.Is(err, ErrInvalidSchedule) {
			t.Errorf("%q: got %v, want ErrInvalidSchedule", bad, err)
		}
	}
	s, _ := ParseSchedule("01d", at)
	if s.Days != 1 {
		t.Errorf("01d = %d days", s.Days)
	}
	// Case 10: "5d" at 14:07 UTC is "7 14 */5 * *"; cron back to Nd.
	s, _ = ParseSchedule("5d", at.In(time.FixedZone("X", 3*3600)))
	if s.Cron() != "7 14 */5 * *" || s.String() != "5d" {
		t.Errorf("5d at 14:07 UTC: cron %q, string %q", s.Cron(), s.String())
	}
	if s, ok := ScheduleFromCron("0 0 */10 * *"); !ok || s.String() != "10d" || s.Hour != 0 || s.Minute != 0 {
		t.Errorf("0 0 */10 * * -> %v %v", s, ok)
	}
	for _, c := range []string{"* * * * *", "0 0 10 * *", "0 0 */31 * *", "0 25 */1 * *", "x 0 */2 * *", "0 0 */2 * 1"} {
		if _, ok := ScheduleFromCron(c); ok {
			t.Errorf("%q mapped to a schedule", c)
		}
	}
}

// TestScheduleNext checks ACR's day-of-month arithmetic: days 1, 1+N,
// 1+2N ... of every month, starting again on the 1st, at the fixed UTC
// time; never rolling.
func TestScheduleNext(t *testing.T) {
	tests := []struct {
		name  string
		days  int
		from  string
		wants []string
	}{
		{"1d every day", 1, "2026-12-06 15:00", []string{"2026-12-07 14:07", "2026-12-08 14:07", "2026-12-09 14:07"}},
		{"1d later today", 1, "2026-12-06 14:00", []string{"2026-12-06 14:07", "2026-12-07 14:07"}},
		{"1d at the instant", 1, "2026-12-06 14:07", []string{"2026-12-07 14:07"}},
		{"7d is 1,8,15,22,29", 7, "2026-01-03 00:00", []string{"2026-01-08 14:07", "2026-01-15 14:07", "2026-01-22 14:07", "2026-01-29 14:07", "2026-02-01 14:07", "2026-02-08 14:07"}},
		{"30d is the 1st and 31st", 30, "2026-01-02 00:00", []string{"2026-01-31 14:07", "2026-02-01 14:07", "2026-03-01 14:07", "2026-03-31 14:07", "2026-04-01 14:07", "2026-05-01 14:07"}},
		{"month end of a leap year", 14, "2028-02-16 00:00", []string{"2028-02-29 14:07", "2028-03-01 14:07"}},
		{"month end of a common year", 14, "2027-02-16 00:00", []string{"2027-03-01 14:07", "2027-03-15 14:07", "2027-03-29 14:07"}},
		{"year end", 10, "2026-12-21 15:00", []string{"2026-12-31 14:07", "2027-01-01 14:07", "2027-01-11 14:07"}},
		{"2d on 31-day months", 2, "2026-01-30 00:00", []string{"2026-01-31 14:07", "2026-02-01 14:07", "2026-02-03 14:07"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Schedule{Days: tc.days, Hour: 14, Minute: 7}
			got := s.NextN(utc(tc.from), len(tc.wants))
			for i, w := range tc.wants {
				if !got[i].Equal(utc(w)) {
					t.Errorf("run %d: got %s, want %s", i, got[i].Format("2006-01-02 15:04"), w)
				}
			}
		})
	}
	if !(Schedule{}).Next(time.Now()).IsZero() {
		t.Error("an invalid schedule has a next run")
	}
}
