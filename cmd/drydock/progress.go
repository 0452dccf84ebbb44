package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/drydock-project/drydock/internal/oci"
)

// progressView renders oci.Progress reports: redrawn bars on a terminal,
// one log line per finished blob or manifest otherwise.
type progressView struct {
	w     io.Writer
	tty   bool
	log   *slog.Logger
	now   func() time.Time
	start time.Time

	mu       sync.Mutex
	items    []*progressItem
	byKey    map[string]*progressItem
	drawn    int // lines drawn last time
	lastDraw time.Time
}

type progressItem struct {
	p     oci.Progress
	start time.Time
	end   time.Time
}

func newProgressView(w io.Writer, tty bool, log *slog.Logger) *progressView {
	v := &progressView{w: w, tty: tty, log: log, now: time.Now, byKey: map[string]*progressItem{}}
	v.start = v.now()
	return v
}

// update is the oci.WithProgress callback.
func (v *progressView) update(p oci.Progress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	key := string(p.Phase) + " " + p.Digest.String()
	it, ok := v.byKey[key]
	if !ok {
		it = &progressItem{start: v.now()}
		v.byKey[key] = it
		if p.Phase != oci.PhaseCleanup {
			v.items = append(v.items, it)
		}
	}
	wasDone := it.p.Done
	it.p = p
	if p.Done && !wasDone {
		it.end = v.now()
		if !v.tty {
			v.logDone(it)
		}
	}
	if v.tty && (p.Done || v.now().Sub(v.lastDraw) > 100*time.Millisecond) {
		v.draw()
	}
}

func (v *progressView) logDone(it *progressItem) {
	p := it.p
	attrs := []any{"digest", p.Digest.String(), "size", p.Total}
	if p.MediaType != "" {
		attrs = append(attrs, "mediaType", string(p.MediaType))
	}
	switch {
	case p.Phase == oci.PhaseCleanup:
		v.log.Warn("removed after failure", "digest", p.Digest.String())
	case p.Skipped:
		v.log.Info(string(p.Phase)+" already present", attrs...)
	case p.Phase == oci.PhasePrepare:
		v.log.Info("layer read and checked", attrs...)
	default:
		d := it.end.Sub(it.start)
		attrs = append(attrs, "elapsed", d.Round(time.Millisecond).String())
		if p.Phase == oci.PhaseBlob {
			attrs = append(attrs, "rate", rate(p.Complete, d))
		}
		v.log.Info(string(p.Phase)+" copied", attrs...)
	}
}

// finish draws the final state.
func (v *progressView) finish() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tty && len(v.items) > 0 {
		v.draw()
	}
}

func (v *progressView) draw() {
	v.lastDraw = v.now()
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn)
	}
	var done, total int64
	for _, it := range v.items {
		p := it.p
		if p.Phase != oci.PhasePrepare {
			done += p.Complete
			total += p.Total
		}
		b.WriteString("\x1b[2K")
		b.WriteString(v.line(it))
		b.WriteByte('\n')
	}
	b.WriteString("\x1b[2K")
	elapsed := v.now().Sub(v.start)
	fmt.Fprintf(&b, "%-9s %-19s %s %s / %s  %s  %s\n", "total", "", bar(done, total, 20), size(done), size(total), rate(done, elapsed), elapsed.Round(100*time.Millisecond))
	v.drawn = len(v.items) + 1
	io.WriteString(v.w, b.String())
}

func (v *progressView) line(it *progressItem) string {
	p := it.p
	short := p.Digest.Hex
	if len(short) > 12 {
		short = short[:12]
	}
	label := string(p.Phase)
	if p.Phase == oci.PhasePrepare {
		label = "checking"
	}
	status := ""
	switch {
	case p.Skipped:
		status = "already present"
	case p.Done:
		status = "done"
	}
	end := it.end
	if end.IsZero() {
		end = v.now()
	}
	speed := rate(p.Complete, end.Sub(it.start))
	if p.Skipped || p.Phase == oci.PhaseManifest {
		speed = ""
	}
	return fmt.Sprintf("%-9s %-19s %s %s / %s  %s  %s", label, p.Digest.Algorithm+":"+short, bar(p.Complete, p.Total, 20), size(p.Complete), size(p.Total), speed, status)
}

func bar(done, total int64, width int) string {
	n := width
	if total > 0 && done < total {
		n = int(done * int64(width) / total)
	}
	return "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "]"
}

// size formats a byte count with binary units.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return size(int64(float64(n)/d.Seconds())) + "/s"
}
