package main

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drydock-project/drydock/internal/workflow"
)

// The workflow commands' output for people (--json prints the server's
// answer instead).

func utcTime(t time.Time) string {
	if t.IsZero() {
		return workflow.NotAvailable
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func printSelection(w io.Writer, sel *workflow.Selection) {
	if sel == nil {
		return
	}
	fmt.Fprintf(w, "Configured Tag Convention: %s\n", sel.Convention)
	for _, nf := range sel.NotFound {
		fmt.Fprintf(w, "Not found: %s\n", nf)
	}
	if len(sel.NotFound) > 0 {
		fmt.Fprintf(w, "Not found: %d\n", len(sel.NotFound))
	}
	for _, ig := range sel.Ignored {
		fmt.Fprintf(w, "Ignored: %s (%s)\n", ig.Image, ig.Reason)
	}
	if len(sel.Matches) == 0 {
		fmt.Fprintln(w, "No matching repository and tag found!")
		return
	}
	fmt.Fprintln(w, "Repo,Tag,Latest patch")
	for _, m := range sel.Matches {
		fmt.Fprintf(w, "%s,%s,%s\n", m.Name, m.Tag, cmp.Or(m.Latest, "N/A"))
	}
	fmt.Fprintf(w, "Matches found: %d\n", len(sel.Matches))
}

func printDryRun(w io.Writer, d *workflow.DryRunReport) {
	fmt.Fprintln(w, "DRY RUN mode enabled: nothing is created or written")
	fmt.Fprintf(w, "Configured Tag Convention: %s\n", d.Convention)
	for _, ig := range d.Ignored {
		fmt.Fprintf(w, "Ignored: %s (%s)\n", ig.Image, ig.Reason)
	}
	if len(d.Images) == 0 {
		fmt.Fprintln(w, "No matching repository and tag found!")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tACTION\tTAG\tREASON")
	for _, im := range d.Images {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", im.Image, im.Action, cmp.Or(im.Tag, "-"), im.Reason)
	}
	tw.Flush()
	fmt.Fprintf(w, "Matches found: %d\n", d.Matches)
	if len(d.NotFound) > 0 {
		fmt.Fprintf(w, "Not found: %d\n", len(d.NotFound))
	}
}

func printResult(w io.Writer, res *workflow.Result, verb string) {
	if res.DryRun != nil {
		printDryRun(w, res.DryRun)
		return
	}
	printSelection(w, res.Selection)
	if v := res.Workflow; v != nil {
		fmt.Fprintf(w, "workflow %s %s: schedule %s (cron %q, UTC)", v.Name, verb, v.Schedule, v.Cron)
		if len(v.NextRuns) > 0 {
			fmt.Fprintf(w, ", next run %s", utcTime(v.NextRuns[0]))
		}
		fmt.Fprintln(w)
	}
	if res.Run != nil {
		fmt.Fprintf(w, "run %s queued: drydock workflow show-run %s --follow\n", res.Run.ID, res.Run.ID)
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off (vulnerability database only, as ACR)"
}

func printView(w io.Writer, v *workflow.View) {
	fmt.Fprintf(w, "Name:            %s\n", v.Name)
	fmt.Fprintf(w, "Type:            %s\n", v.Type)
	fmt.Fprintf(w, "Schedule:        %s (cron %q, UTC)\n", v.Schedule, v.Cron)
	fmt.Fprintf(w, "Tag convention:  %s\n", v.Config.TagConvention)
	fmt.Fprintf(w, "Security suite:  %s\n", onOff(v.SecuritySuite))
	fmt.Fprintf(w, "Created:         %s\n", utcTime(v.CreatedAt))
	fmt.Fprintf(w, "Updated:         %s\n", utcTime(v.UpdatedAt))
	fmt.Fprintln(w, "Next runs:")
	for _, t := range v.NextRuns {
		fmt.Fprintf(w, "  %s\n", utcTime(t))
	}
	for _, p := range v.Pending {
		fmt.Fprintf(w, "Pending trigger: %s: %s (%d images), seen %s\n", p.Kind, p.Detail, len(p.Images), utcTime(p.LastSeen))
	}
	if r := v.LastRun; r != nil {
		fmt.Fprintf(w, "Last run:        %s %s (%s%s), queued %s", r.ID, strings.ToUpper(string(r.State)), r.Trigger, detail(r.Detail), utcTime(r.CreatedAt))
		if !r.EndedAt.IsZero() {
			fmt.Fprintf(w, ", ended %s", utcTime(r.EndedAt))
		}
		fmt.Fprintf(w, "\n                 %d images: %d patched, %d skipped, %d failed\n", r.Images, r.Patched, r.Skipped, r.Failed)
		if len(r.Tags) > 0 {
			fmt.Fprintf(w, "                 wrote %s\n", strings.Join(r.Tags, ", "))
		}
		if r.Error != "" {
			fmt.Fprintf(w, "                 %s\n", r.Error)
		}
	} else {
		fmt.Fprintln(w, "Last run:        none yet")
	}
	fmt.Fprintln(w, "Config:")
	for l := range strings.SplitSeq(strings.TrimRight(v.ConfigText, "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", l)
	}
}

func detail(d string) string {
	if d == "" {
		return ""
	}
	return ": " + d
}

func printWorkflowList(w io.Writer, vs []workflow.View) {
	if len(vs) == 0 {
		fmt.Fprintln(w, "no workflow")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCHEDULE\tNEXT RUN\tIMAGES\tLAST RUN")
	for _, v := range vs {
		next := workflow.NotAvailable
		if len(v.NextRuns) > 0 {
			next = utcTime(v.NextRuns[0])
		}
		last := "none"
		if v.LastRun != nil {
			last = v.LastRun.ID + " " + string(v.LastRun.State)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", v.Name, v.Schedule, next, len(v.Config.Repositories), last)
	}
	tw.Flush()
}

func dash(s string) string { return cmp.Or(s, workflow.NotAvailable) }

func stateText(s workflow.State) string {
	if s == "" {
		return workflow.NotAvailable
	}
	return strings.ToUpper(string(s[:1])) + string(s[1:])
}

func printStatusList(w io.Writer, l *workflow.StatusList) {
	fmt.Fprintf(w, "Images of workflow %s scanned since %s\n", l.Workflow, utcTime(l.Since))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tSCAN STATUS\tSCAN DATE\tSCAN TASK\tPATCH STATUS\tPATCH DATE\tPATCH TASK\tLAST PATCHED IMAGE\tREASON")
	for _, s := range l.Images {
		reason := cmp.Or(s.ScanErrorReason, s.PatchErrorReason, s.PatchSkipReason)
		if reason == "" && len(s.Signals) > 0 {
			reason = "patched for: " + strings.Join(s.Signals, ", ")
		}
		patchDate := workflow.NotAvailable
		if !s.PatchDate.IsZero() {
			patchDate = utcTime(s.PatchDate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Image, stateText(s.ScanStatus), utcTime(s.ScanDate), s.ScanTask,
			stateText(s.PatchStatus), patchDate, dash(s.PatchTask), s.LastPatchedImage, dash(reason))
	}
	tw.Flush()
	fmt.Fprintf(w, "Total images: %d\n", len(l.Images))
}

func taskResult(t *workflow.Task) string {
	switch {
	case t.Error != "":
		return "error: " + t.Error
	case t.Trigger != nil:
		return fmt.Sprintf("%d matched, %d not found, tag convention %s", len(t.Trigger.Matches), len(t.Trigger.NotFound), t.Trigger.Convention)
	case t.Scan != nil && t.State == workflow.StateSucceeded:
		s := fmt.Sprintf("%s: %d fixable%s", t.Scan.Target, t.Scan.Fixable.Total(), countsBrief(t.Scan.Fixable))
		if n := len(t.Scan.SecurityUpdates); n > 0 {
			s += fmt.Sprintf(", %d from the security suite", n)
		}
		if t.Scan.Patch {
			return s + "; patch into " + cmp.Or(t.Scan.Tag, "(none: "+t.Scan.Match.NextErr+")")
		}
		return s + "; skip: " + t.Scan.SkipReason
	case t.Patch != nil:
		p := t.Patch
		if p.SkipReason != "" {
			return "skipped: " + p.SkipReason
		}
		s := fmt.Sprintf("%d packages updated, fixable %d -> %d", len(p.Packages), p.FixableBefore.Total(), p.FixableAfter.Total())
		if p.TagWritten {
			s += fmt.Sprintf(", wrote %s:%s (%s)", p.Repository, p.Tag, p.Digest)
		}
		if p.SharedWith != "" {
			s += ", built by " + p.SharedWith
		}
		return s
	}
	return ""
}

func countsBrief(c workflow.Counts) string {
	var parts []string
	for _, s := range []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"} {
		if c[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d", s, c[s]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func duration(t *workflow.Task) string {
	if t.StartedAt.IsZero() || t.EndedAt.IsZero() {
		return "-"
	}
	return t.EndedAt.Sub(t.StartedAt).Round(100 * time.Millisecond).String()
}

func printRun(w io.Writer, d *workflow.RunDetail, withLog bool) {
	r := d.Run
	fmt.Fprintf(w, "Run:       %s (workflow %s)\n", r.ID, r.Workflow)
	fmt.Fprintf(w, "Trigger:   %s%s\n", r.Trigger.Kind, detail(r.Trigger.Detail))
	fmt.Fprintf(w, "State:     %s\n", stateText(r.State))
	fmt.Fprintf(w, "Queued:    %s\n", utcTime(r.CreatedAt))
	fmt.Fprintf(w, "Started:   %s\n", utcTime(r.StartedAt))
	fmt.Fprintf(w, "Ended:     %s\n", utcTime(r.EndedAt))
	if r.Error != "" {
		fmt.Fprintf(w, "Error:     %s\n", r.Error)
	}
	s := d.Summary
	fmt.Fprintf(w, "Images:    %d: %d patched, %d skipped, %d failed\n", s.Images, s.Patched, s.Skipped, s.Failed)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tKIND\tIMAGE\tSTATE\tSTARTED\tTOOK\tRESULT")
	for i := range r.Tasks {
		t := &r.Tasks[i]
		started := "-"
		if !t.StartedAt.IsZero() {
			started = t.StartedAt.UTC().Format("15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Kind, cmp.Or(t.Image, "-"), t.State, started, duration(t), taskResult(t))
	}
	tw.Flush()
	if withLog {
		fmt.Fprintln(w, "Log:")
		for _, l := range d.Log {
			printLogLine(w, l)
		}
	}
}

func printLogLine(w io.Writer, l workflow.LogLine) {
	fmt.Fprintf(w, "%s %-14s %s\n", l.At.UTC().Format("15:04:05"), l.Task, l.Text)
}
