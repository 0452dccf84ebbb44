package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/store"
)

// The dashboard's chart of fixable findings by severity over time, drawn
// on the server as an inline SVG (no script: the CSP forbids them), and
// its list of end-of-life images. Both come from the API in process.

// chartDays is how many days the dashboard's chart covers.
const chartDays = 90

// The chart's drawing area, in SVG user units; the SVG scales to the
// width of its card (viewBox), so it reads on a phone as on a laptop.
const (
	chartW, chartH           = 640, 240
	chartLeft, chartRight    = 56, 12
	chartTop, chartBottom    = 12, 28
	chartInnerW, chartInnerH = chartW - chartLeft - chartRight, chartH - chartTop - chartBottom
)

// fixableChart is what the template draws.
type fixableChart struct {
	W, H       int
	From, To   string
	Max        int
	Lines      []chartLine
	YTicks     []chartTick
	XTicks     []chartTick
	Desc       string
	Rows       []chartRow // the numbers, for the table
	Severities []string   // the table's columns: those with a line
}

type chartLine struct {
	Severity, Class string
	Points          string // "x,y x,y ..."
	Last            int
}

type chartTick struct {
	X, Y  float64
	Label string
}

type chartRow struct {
	Day    string
	Counts []int
}

// fixableChart reads the series; a user who may not read it (it covers
// every repository) or a server without it gets a note instead.
func (u *UI) fixableChart(r *http.Request) (*fixableChart, string) {
	var h api.HistoryResponse
	if err := u.call(r, http.MethodGet, "/api/v1/findings/history", url.Values{"days": {strconv.Itoa(chartDays)}}, nil, &h); err != nil {
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
			return nil, "The history covers every repository; it is shown to users who may pull from all of them."
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			return nil, "This server keeps no findings history."
		}
		return nil, "The findings history could not be read: " + err.Error()
	}
	if len(h.Days) == 0 {
		return nil, "No history yet."
	}
	return drawChart(h.Days), ""
}

// drawChart lays out one polyline per severity that has findings on any
// day, on a y axis from 0 to the largest value.
func drawChart(days []store.HistoryPoint) *fixableChart {
	c := &fixableChart{W: chartW, H: chartH, From: days[0].Day, To: days[len(days)-1].Day}
	for _, d := range days {
		for _, n := range d.Fixable {
			c.Max = max(c.Max, n)
		}
	}
	for _, sev := range severities {
		if !hasAny(days, sev) {
			continue
		}
		c.Severities = append(c.Severities, sev)
	}
	top := niceCeil(c.Max)
	x := func(i int) float64 {
		if len(days) == 1 {
			return chartLeft + chartInnerW/2
		}
		return chartLeft + float64(i)*chartInnerW/float64(len(days)-1)
	}
	y := func(n int) float64 { return chartTop + chartInnerH - float64(n)*chartInnerH/float64(top) }
	for _, sev := range c.Severities {
		var pts []string
		for i, d := range days {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(d.Fixable[sev])))
		}
		c.Lines = append(c.Lines, chartLine{Severity: sev, Class: strings.ToLower(sev), Points: strings.Join(pts, " "), Last: days[len(days)-1].Fixable[sev]})
	}
	for i := 0; i <= 4; i++ {
		n := top * i / 4
		c.YTicks = append(c.YTicks, chartTick{X: chartLeft - 6, Y: y(n), Label: strconv.Itoa(n)})
	}
	for _, i := range []int{0, len(days) / 2, len(days) - 1} {
		c.XTicks = append(c.XTicks, chartTick{X: x(i), Y: chartH - 8, Label: days[i].Day[5:]})
	}
	var last []string
	for _, l := range c.Lines {
		last = append(last, fmt.Sprintf("%s %d", l.Severity, l.Last))
	}
	first := days[0]
	total := func(p store.HistoryPoint) int {
		n := 0
		for _, v := range p.Fixable {
			n += v
		}
		return n
	}
	c.Desc = fmt.Sprintf("Fixable findings from %s to %s: %d on the first day, %d on the last", first.Day, c.To, total(first), total(days[len(days)-1]))
	if len(last) > 0 {
		c.Desc += " (" + strings.Join(last, ", ") + ")"
	}
	c.Desc += "."
	// The table lists the days a value changed, and the last day.
	for i, d := range days {
		if i > 0 && i < len(days)-1 && sameCounts(days[i-1], d) {
			continue
		}
		row := chartRow{Day: d.Day}
		for _, sev := range c.Severities {
			row.Counts = append(row.Counts, d.Fixable[sev])
		}
		c.Rows = append(c.Rows, row)
	}
	return c
}

func hasAny(days []store.HistoryPoint, sev string) bool {
	for _, d := range days {
		if d.Fixable[sev] > 0 {
			return true
		}
	}
	return false
}

func sameCounts(a, b store.HistoryPoint) bool {
	if len(a.Fixable) != len(b.Fixable) {
		return false
	}
	for k, v := range a.Fixable {
		if b.Fixable[k] != v {
			return false
		}
	}
	return true
}

// niceCeil is the top of the y axis: four steps of 1, 2 or 5 times a
// power of ten, reaching n.
func niceCeil(n int) int {
	step := (max(n, 1) + 3) / 4
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*p >= step {
				return 4 * m * p
			}
		}
	}
}

// eolList is the dashboard's list of end-of-life images.
type eolList struct {
	api.EOLResponse
	Within int
}

// endOfLife reads the images past (or within 30 days of) the end of their
// OS's public security support, or a note why it cannot.
func (u *UI) endOfLife(r *http.Request) (*eolList, string) {
	var e api.EOLResponse
	if err := u.call(r, http.MethodGet, "/api/v1/images/end-of-life", url.Values{"within": {strconv.Itoa(api.DefaultEOLWithin)}, "limit": {"20"}}, nil, &e); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return nil, "This server does not list end-of-life images."
		}
		return nil, "End-of-life images could not be read: " + err.Error()
	}
	return &eolList{EOLResponse: e, Within: api.DefaultEOLWithin}, ""
}
