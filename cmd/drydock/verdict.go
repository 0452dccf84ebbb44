package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gatekeeper"
)

func newVerdictCmd(g *globals) *cobra.Command {
	var (
		server   string
		asJSON   bool
		exitCode int
	)
	cmd := &cobra.Command{
		Use:   "verdict REF",
		Short: "Show the gate's verdict on an image and why",
		Long: `Verdict shows the gate's verdict on an image in the drydock server: pending,
pass, fail or exempt, with the reasons (which findings, which policy rule),
the exceptions applied and those expired, a pass -> fail flip waiting out its
grace window, and whether the digest is promoted.

REF is quarantine/NAME:TAG, quarantine/NAME@DIGEST or the same in live/. The
verdict belongs to the digest and is decided again, at the server's current
time, every time it is asked for: an exception that expired an hour ago no
longer applies.

Only pass and exempt are promotable. Pending means the scan has not finished;
a scan that failed or is stuck, an OS drydock cannot scan and a policy file
that does not load all fail (the gate fails closed).

Credentials: $DRYDOCK_TOKEN (an API token), else user:pass@ in --server, else
the docker config's login for the server. Needs the pull role on the
namespace.`,
		Example: `  drydock verdict quarantine/nginx:1.27.1
  drydock verdict quarantine/nginx@sha256:0123... --json
  # in a script: exit 3 unless the image may be promoted
  drydock verdict quarantine/nginx:1.27.1 --exit-code 3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := gatekeeper.ParseRef(args[0]); err != nil {
				return err
			}
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			var st gatekeeper.Status
			if err := c.do(cmd.Context(), "GET", "/api/v1/verdict?ref="+url.QueryEscape(args[0]), nil, &st); err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(g.stdout, st); err != nil {
					return err
				}
			} else {
				writeVerdict(g.stdout, &st)
			}
			if exitCode != 0 && !st.Verdict.Promotable() {
				return &exitError{code: exitCode, err: fmt.Errorf("the verdict is %s: not promotable", st.Verdict.State)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	addServerFlag(f, &server)
	f.BoolVar(&asJSON, "json", false, "print the status as JSON")
	f.IntVar(&exitCode, "exit-code", 0, "exit with this status when the verdict is not promotable (not pass or exempt)")
	return cmd
}

// writeVerdict prints a verdict for people.
func writeVerdict(w io.Writer, st *gatekeeper.Status) {
	v := st.Verdict
	ref := st.Repository
	if st.Reference != "" && !strings.Contains(st.Reference, ":") {
		ref += ":" + st.Reference
	}
	fmt.Fprintf(w, "%s@%s\n", ref, st.Digest)
	promotable := "not promotable"
	if v.Promotable() {
		promotable = "promotable"
	}
	fmt.Fprintf(w, "  verdict:   %s (%s), since %s\n", strings.ToUpper(string(v.State)), promotable, v.At.UTC().Format(time.RFC3339))
	pol := cmp.Or(st.Policy, "built-in policy")
	if st.PolicyHash != "" {
		pol += " (sha256:" + st.PolicyHash[:min(12, len(st.PolicyHash))] + ")"
	}
	fmt.Fprintf(w, "  policy:    %s\n", pol)
	switch {
	case st.Scan.Error != "":
		fmt.Fprintf(w, "  scan:      failed: %s\n", st.Scan.Error)
	case st.Scan.ScannedAt.IsZero():
		fmt.Fprintf(w, "  scan:      not done yet\n")
	default:
		fmt.Fprintf(w, "  scanned:   %s\n", st.Scan.ScannedAt.UTC().Format(time.RFC3339))
		for _, p := range st.Scan.Platforms {
			fmt.Fprintf(w, "    %-12s %s, %s, %d finding(s)%s\n", cmp.Or(p.Platform, "image"), orDash(p.OS), p.Status, p.Findings, countText(p.Counts))
		}
	}
	if st.Scan.Source != "" {
		fmt.Fprintf(w, "  source:    %s\n", st.Scan.Source)
	}
	fmt.Fprintf(w, "  promoted:  %s\n", yesNo(st.Promoted))
	if len(v.Reasons) > 0 {
		fmt.Fprintln(w, "  reasons:")
		writeReasons(w, "    ", v.Reasons)
	}
	if len(v.Applied) > 0 {
		fmt.Fprintf(w, "  exceptions applied: %s\n", strings.Join(v.Applied, ", "))
	}
	if len(v.ExpiredExceptions) > 0 {
		fmt.Fprintf(w, "  exceptions expired: %s\n", strings.Join(v.ExpiredExceptions, ", "))
	}
	if f := v.PendingFlip; f != nil {
		fmt.Fprintf(w, "  coming:    %s -> %s at %s (grace window; first seen %s)\n", f.From, f.To,
			f.EffectiveAt.UTC().Format(time.RFC3339), f.FirstSeen.UTC().Format(time.RFC3339))
	}
	if db := st.Database; db != nil && db.Stale {
		fmt.Fprintf(w, "  WARNING:   %s\n", db.Warning())
	}
}

// severities is the order countText lists the known severities in.
var severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}

// countText is " (N SEVERITY, ...)" for findings counted by severity: the
// known severities first, then any others by name.
func countText(c map[string]int) string {
	if len(c) == 0 {
		return ""
	}
	others := slices.Sorted(maps.Keys(c))
	others = slices.DeleteFunc(others, func(s string) bool { return slices.Contains(severities, s) })
	var parts []string
	for _, s := range slices.Concat(severities, others) {
		if c[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[s], s))
		}
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// writeJSON writes v to w as indented JSON, for --json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newPromoteCmd(g *globals) *cobra.Command {
	var (
		server, to string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "promote quarantine/NAME:TAG|quarantine/NAME@DIGEST",
		Short: "Copy an image that passed the gate from quarantine/ to live/, by digest",
		Long: `Promote copies an image from quarantine/ to live/ when its verdict, decided
again at this moment, is pass or exempt. The copy is by digest: live/ gets the
same manifest bytes and digest, the blobs are shared (nothing is uploaded
again), and it holds exactly what was judged: for an index, every manifest
reachable from it (each an image its scan judged, or a non-runnable artifact).

Referrers follow their subject when they are non-runnable artifacts
(drydock's scan report, SBOMs, signatures, attestations, VEX documents: no
image config, no image layer) or passed the gate themselves. Any other
referrer, such as an image that names a subject, is left behind: the output
lists it with the reason, and the audit log records it as a refused
promotion.

Promotion is the only way into live/: pushes, tag changes and blob mounts
there are refused by the registry. A refused promotion prints the verdict's
reasons and exits 1; it is recorded in the audit log like every promotion.

--to defaults to live/NAME with the source's tag (no tag for a source given by
digest). Needs the pull role on quarantine and the promote role on live.
Credentials as for "drydock verdict".`,
		Example: `  drydock promote quarantine/nginx:1.27.1              # -> live/nginx:1.27.1
  drydock promote quarantine/nginx:1.27.1 --to live/nginx:stable
  drydock promote quarantine/nginx@sha256:0123... --to live/nginx:1.27.1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := gatekeeper.PromoteRequest{Source: args[0], Target: to}
			if _, _, _, _, err := gatekeeper.PlanPromotion(req); err != nil {
				return err
			}
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			var p gatekeeper.Promotion
			err = c.do(cmd.Context(), "POST", "/api/v1/promote", req, &p)
			var ae *apiError
			if errors.As(err, &ae) && ae.Body.Error.Code == "PROMOTION_REFUSED" && ae.Body.Verdict != nil {
				writeRefusal(g.stderr, args[0], ae.Body)
				return &exitError{code: 1, err: errors.New("promotion refused")}
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, p)
			}
			fmt.Fprintf(g.stdout, "promoted %s -> %s@%s (%s)\n", p.Source, p.Target, p.Digest, p.Verdict.State)
			fmt.Fprintf(g.stdout, "  %d manifest(s), %d blob(s) linked, %d referrer(s) copied\n", p.Copy.Manifests, p.Copy.BlobsLinked, len(p.Copy.Referrers))
			for _, lb := range p.Copy.LeftBehind {
				fmt.Fprintf(g.stdout, "  referrer %s of %s left behind: %s\n", lb.Referrer.Digest, lb.Subject, lb.Reason)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "target live/NAME[:TAG] (default: live/NAME with the source's tag)")
	addServerFlag(f, &server)
	f.BoolVar(&asJSON, "json", false, "print the promotion as JSON")
	return cmd
}

func writeRefusal(w io.Writer, src string, b api.ErrorBody) {
	v := b.Verdict
	fmt.Fprintf(w, "promotion of %s refused: the verdict is %s, only pass or exempt may enter live/\n", src, strings.ToUpper(string(v.State)))
	writeReasons(w, "  ", v.Reasons)
	if len(v.ExpiredExceptions) > 0 {
		fmt.Fprintf(w, "  expired exceptions: %s\n", strings.Join(v.ExpiredExceptions, ", "))
	}
	if v.State == gate.StatePending {
		fmt.Fprintln(w, "  the scan has not finished; try again when `drydock verdict` shows its result")
	}
}

// writeReasons prints a verdict's reasons, each with its findings.
func writeReasons(w io.Writer, indent string, rs []gate.Reason) {
	for _, r := range rs {
		fmt.Fprintf(w, "%s[%s] %s\n", indent, r.Rule, r.Message)
		for _, f := range r.Findings {
			fmt.Fprintf(w, "%s  %s\n", indent, f)
		}
	}
}

func newRescanCmd(g *globals) *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "rescan REF",
		Short: "Queue a new scan of an image by the server's gate",
		Long: `Rescan queues a new scan of the image REF (quarantine/NAME:TAG or
quarantine/NAME@DIGEST, or the same in live/) by the server's gate and returns
at once; "drydock verdict REF" shows the result when it is done. While the
scan runs the digest keeps its verdict (a promoted image never shows pending).

The gate rescans by itself after a database update, when a scan is older than
half the policy's maxScanAge, and when a database appears after scans failed
for want of one; rescan is for the other times. Needs the push role on the
namespace.`,
		Example: `  drydock rescan quarantine/nginx:1.27.1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := gatekeeper.ParseRef(args[0]); err != nil {
				return err
			}
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			var out struct {
				Job int64 `json:"job"`
			}
			if err := c.do(cmd.Context(), "POST", "/api/v1/rescan", api.RescanRequest{Reference: args[0]}, &out); err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "scan of %s queued (job %d); see drydock verdict %s\n", args[0], out.Job, args[0])
			return err
		},
	}
	addServerFlag(cmd.Flags(), &server)
	return cmd
}
