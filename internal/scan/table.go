package scan

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// maxTitle bounds the Title column of the table (runes).
const maxTitle = 60

// WriteTable writes r as a human-readable table, in Trivy's shape: an
// end-of-life or unsupported notice first, then a header line per target
// ("NAME (debian 11.11)"), the rows Library | Vulnerability | Severity |
// Status | Installed Version | Fixed Version | Title (the description's
// start when the feed gives no title), the source packages
// whose security support ended, and a closing
// "Total: N (UNKNOWN: a, LOW: b, MEDIUM: c, HIGH: d, CRITICAL: e)".
// An unsupported OS has no Total line: nothing was checked.
func WriteTable(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	switch r.Status {
	case StatusEndOfLife:
		ew.printf("END OF LIFE: %s\n", r.StatusReason)
		ew.printf("This OS gets no more public security fixes; the findings below are not all there is.\n\n")
	case StatusUnsupported:
		ew.printf("UNSUPPORTED: %s\n", r.StatusReason)
		ew.printf("drydock cannot scan this OS: no vulnerabilities were checked (this is not a clean result).\n")
		writeWarnings(ew, r)
		return ew.err
	}
	target := r.Target()
	ew.printf("%s\n%s\n", target, strings.Repeat("=", len([]rune(target))))
	if len(r.Findings) > 0 {
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LIBRARY\tVULNERABILITY\tSEVERITY\tSTATUS\tINSTALLED VERSION\tFIXED VERSION\tTITLE")
		for _, f := range r.Findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.PkgName, f.VulnerabilityID, f.Severity,
				f.Status, f.InstalledVersion, f.FixedVersion, clip(oneLine(cmp.Or(f.Title, f.Description)), maxTitle))
		}
		if err := tw.Flush(); err != nil && ew.err == nil {
			ew.err = err
		}
	}
	if len(r.PackageSupport) > 0 {
		ew.printf("\nSecurity support of these source packages is limited or has ended (debian-security-support):\n")
		for _, p := range r.PackageSupport {
			line := fmt.Sprintf("  %s (%s)", p.SrcName, p.Kind)
			if p.LastVersion != "" {
				line += " last supported version " + p.LastVersion
			}
			if !p.EndDate.IsZero() {
				line += " ended " + p.EndDate.Format(time.DateOnly)
			}
			if p.Details != "" {
				line += ": " + oneLine(p.Details)
			}
			ew.printf("%s\n", line)
		}
	}
	writeWarnings(ew, r)
	c := r.Counts()
	ew.printf("\nTotal: %d (UNKNOWN: %d, LOW: %d, MEDIUM: %d, HIGH: %d, CRITICAL: %d)\n",
		len(r.Findings), c["UNKNOWN"], c["LOW"], c["MEDIUM"], c["HIGH"], c["CRITICAL"])
	return ew.err
}

func writeWarnings(ew *errWriter, r *Report) {
	if len(r.Warnings) == 0 {
		return
	}
	ew.printf("\n")
	for _, warn := range r.Warnings {
		ew.printf("WARNING: %s\n", warn)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
