package workflow_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/apt"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/workflow"
)

// offsetClock is the real clock moved back: durations are real, and the
// date is one when bullseye still had LTS support, so that all three
// releases are patched.
type offsetClock struct{ d time.Duration }

func (c offsetClock) Now() time.Time { return time.Now().Add(-c.d) }

// benchTags are 10 tags of 3 releases (bookworm, trixie, bullseye): two
// indexes, a distroless image, and two digests under two tags each.
func benchTags(b *testing.B) []struct {
	tag string
	art any
	oci string
} {
	b.Helper()
	img := func(s testimage.Spec) (any, string) {
		ti := testimage.Require(b, s)
		i, err := ti.Open()
		if err != nil {
			b.Fatal(err)
		}
		return i, ti.OCIReference()
	}
	idx := func(n string, specs []testimage.Spec) (any, string) {
		x := testimage.RequireIndex(b, n, specs)
		i, err := x.Open()
		if err != nil {
			b.Fatal(err)
		}
		return i, x.OCIReference()
	}
	type entry = struct {
		tag string
		art any
		oci string
	}
	var out []entry
	add := func(tag string, a any, ref string) { out = append(out, entry{tag, a, ref}) }
	a, r := img(testimage.BookwormNginx)
	add("nginx:1.27.1", a, r)
	add("nginx:latest", a, r)
	a, r = img(testimage.Bookworm)
	add("debian:12", a, r)
	a, r = img(testimage.DistrolessBookworm)
	add("base:12", a, r)
	a, r = idx(testimage.MultiArchDistroless, testimage.MultiArchDistrolessSpecs)
	add("base-multi:12", a, r)
	a, r = img(testimage.Trixie)
	add("debian:13", a, r)
	add("debian:stable", a, r)
	a, r = img(testimage.TrixieAmd64)
	add("minimal:13", a, r)
	a, r = idx(testimage.MultiArchTrixie, testimage.MultiArchSpecs)
	add("multi:13", a, r)
	a, r = img(testimage.BullseyeNginxCurl)
	add("web:11", a, r)
	return out
}

// resetPeakRSS returns the heap the test itself holds to the system and
// makes VmHWM start again from the current RSS (Linux), which it returns:
// the peak read after the run is then the engine's.
func resetPeakRSS() string {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return procStatus("VmRSS:")
}

func procStatus(field string) string {
	b, _ := os.ReadFile("/proc/self/status")
	for l := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			return strings.TrimSpace(strings.TrimPrefix(l, field))
		}
	}
	return "?"
}

// BenchmarkRunTenTags runs one workflow run over 10 tags of 3 releases
// with a cold archive cache, then the same run warm, then 10 separate
// `drydock patch` processes (warm), and prints the figures: total and
// per-image times, archive requests per URL, peak RSS. It asserts
// nothing (make bench-workflow).
func BenchmarkRunTenTags(b *testing.B) {
	tags := benchTags(b)
	m, err := testimage.Mirror()
	if err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		for _, cold := range []bool{true, false} {
			benchRun(b, tags, m, cold)
		}
		benchCLI(b, tags, m)
	}
}

func benchRun(b *testing.B, tags []struct {
	tag string
	art any
	oci string
}, m testimage.MirrorInfo, cold bool) {
	cache, err := testimage.DefaultCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	cache = filepath.Join(cache, "patch") // patch.Run's default
	if cold {
		cache = b.TempDir()
	}
	h := newBenchHarness(b, cache, m)
	var repos []string
	for _, e := range tags {
		h.push(e.art, "quarantine/"+e.tag)
		name, tag, _ := strings.Cut(e.tag, ":")
		repos = append(repos, `{"repository":"`+name+`","tags":["`+tag+`"]}`)
	}
	cfg := `{"version":"v1","repositories":[` + strings.Join(repos, ",") + `]}`
	base := resetPeakRSS()
	start := time.Now()
	res, err := h.eng.Create(b.Context(), workflow.CreateRequest{Config: cfg, Schedule: "1d", RunImmediately: true})
	if err != nil {
		b.Fatal(err)
	}
	r := h.waitRun(res.Run.ID, 30*time.Minute)
	total := time.Since(start)
	label := "warm"
	if cold {
		label = "cold"
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	logf("workflow run, %s archive cache: %s, %s, %d images, peak RSS %s (%s before the run)", label, total.Round(10*time.Millisecond), r.State, len(tags), procStatus("VmHWM:"), base)
	for _, tk := range r.Tasks {
		if tk.Kind == workflow.TaskTrigger {
			continue
		}
		what := ""
		switch {
		case tk.Scan != nil && !tk.Scan.Patch:
			what = "skip: " + tk.Scan.SkipReason
		case tk.Patch != nil && tk.Patch.TagWritten:
			what = fmt.Sprintf("wrote %s, %d packages", tk.Patch.Tag, len(tk.Patch.Packages))
			if tk.Patch.SharedWith != "" {
				what += ", built by " + tk.Patch.SharedWith
			}
		case tk.Patch != nil:
			what = tk.Patch.SkipReason
		}
		if tk.Error != "" {
			what = "error: " + tk.Error
		}
		logf("  %-6s %-16s %-9s %6.1fs  %s", tk.Kind, tk.Image, tk.State, tk.EndedAt.Sub(tk.StartedAt).Seconds(), what)
	}
	urls := slices.Sorted(func(yield func(string) bool) {
		for u := range r.Fetches {
			if !yield(u) {
				return
			}
		}
	})
	for _, u := range urls {
		if strings.Contains(u, "/dists/") {
			logf("  fetched %dx %s", r.Fetches[u], u)
		}
	}
	debs := 0
	for u, n := range r.Fetches {
		if strings.HasSuffix(u, ".deb") {
			debs += n
		}
	}
	logf("  fetched %d .deb files", debs)
}

func newBenchHarness(b *testing.B, cache string, m testimage.MirrorInfo) *harness {
	h := newHarnessN(b, true, 1, func(o *workflow.Options) {
		o.Clock = offsetClock{d: 280 * 24 * time.Hour}
		o.Patcher = &workflow.LibraryPatcher{Options: []patch.Option{patch.WithCacheDir(cache)}, HostKeyring: apt.DebianArchiveKeyring,
			Mirror: m.URI, SecurityMirror: m.SecurityURI, Sandbox: os.Geteuid() == 0, Tool: "drydock-bench", Clock: offsetClock{d: 280 * 24 * time.Hour}}
	})
	h.start()
	return h
}

// benchCLI patches each tag with its own `drydock patch` process, as a
// user without workflows would, and prints each one's time and peak RSS.
func benchCLI(b *testing.B, tags []struct {
	tag string
	art any
	oci string
}, m testimage.MirrorInfo) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "drydock")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/drydock-project/drydock/cmd/drydock").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	var total time.Duration
	var maxRSS int64
	for i, e := range tags {
		args := []string{"patch", e.oci, "--update-all", "--allow-eol", "--mirror", m.URI, "--security-mirror", m.SecurityURI,
			"--host-keyring", apt.DebianArchiveKeyring, "-o", "oci:" + filepath.Join(dir, "out"+strconv.Itoa(i)) + ":patched", "--format", "json"}
		if os.Geteuid() != 0 {
			args = append(args, "--sandbox", "never") // as the engine's harness: the sandbox as root only
		}
		// GNU time measures the child's own peak RSS (Go's exec folds the
		// parent's peak into the child's rusage).
		cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", bin}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		total += took
		rss, _ := strconv.ParseInt(lastLine(stderr.String()), 10, 64)
		maxRSS = max(maxRSS, rss)
		status := "ok"
		if err != nil {
			status = "error: " + stderr.String()
		}
		fmt.Fprintf(os.Stderr, "  drydock patch %-16s %6.1fs  peak RSS %d MB  %s\n", e.tag, took.Seconds(), rss/1024, status)
	}
	fmt.Fprintf(os.Stderr, "10 separate drydock patch runs (warm cache): %s, highest peak RSS %d MB\n", total.Round(10*time.Millisecond), maxRSS/1024)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		s = s[i+1:]
	}
	return s
}
