package workflow_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/audit"
	drycfg "github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/apt"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/workflow"
)

// offsetClock is the real clock moved back: durations are real, and the
// date is one when bullseye still had LTS support, so that all three
// releases are patched.
type offsetClock struct{ d time.Duration }

// clockOffset is the bench clock's offset.
const clockOffset = 280 * 24 * time.Hour

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

// benchMode is what a run of BenchmarkRunTenTags starts from.
type benchMode int

const (
	// benchCold: an empty archive cache and an empty inventory cache.
	benchCold benchMode = iota
	// benchWarm: the archive cache of earlier runs, an empty inventory
	// cache (images no gate has scanned).
	benchWarm
	// benchGateScanned: warm, and a real gate (gatekeeper.Keeper on the
	// same registry and job queue, sharing the inventory cache as the
	// server wires them) has scanned every image when it was pushed,
	// before the timed part: what a server does.
	benchGateScanned
)

func (m benchMode) String() string {
	return [...]string{"cold archive cache, no prior scan", "warm archive cache, no prior scan", "warm archive cache, images scanned by the gate at import"}[m]
}

// BenchmarkRunTenTags runs one workflow run over 10 tags of 3 releases
// from each start (cold; warm; warm with the gate's scans at import),
// then 10 separate `drydock patch` processes (warm), and prints the
// figures: total and per-image times and phases, archive requests per
// URL, peak RSS. It asserts nothing (make bench-workflow; one part alone:
// -bench 'RunTenTags/warm$').
func BenchmarkRunTenTags(b *testing.B) {
	tags := benchTags(b)
	m, err := testimage.Mirror()
	if err != nil {
		b.Skip(err)
	}
	for _, c := range []struct {
		name string
		mode benchMode
	}{{"cold", benchCold}, {"warm", benchWarm}, {"warm-gate-scanned", benchGateScanned}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				benchRun(b, tags, m, c.mode)
			}
		})
	}
	b.Run("cli", func(b *testing.B) {
		for b.Loop() {
			benchCLI(b, tags, m, benchCache(b, tags, m, benchWarm))
		}
	})
}

func benchRun(b *testing.B, tags []struct {
	tag string
	art any
	oci string
}, m testimage.MirrorInfo, mode benchMode) {
	cache := benchCache(b, tags, m, mode)
	h, gate := newBenchHarness(b, cache, m, mode == benchGateScanned)
	var repos []string
	var digests []string
	for _, e := range tags {
		digests = append(digests, h.push(e.art, "quarantine/"+e.tag))
		name, tag, _ := strings.Cut(e.tag, ":")
		repos = append(repos, `{"repository":"`+name+`","tags":["`+tag+`"]}`)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	if gate != nil {
		took := gate.wait(b, digests)
		logf("the gate scanned the %d pushed digests in %s before the run (not timed); the inventory cache holds %d snapshots",
			len(slices.Compact(slices.Sorted(slices.Values(digests)))), took.Round(10*time.Millisecond), gate.snapshots(b))
	}
	cfg := `{"version":"v1","repositories":[` + strings.Join(repos, ",") + `]}`
	base := resetPeakRSS()
	start := time.Now()
	peak := sampleRSS()
	res, err := h.eng.Create(b.Context(), workflow.CreateRequest{Config: cfg, Schedule: "1d", RunImmediately: true})
	if err != nil {
		b.Fatal(err)
	}
	r := h.waitRun(res.Run.ID, 30*time.Minute)
	total := time.Since(start)
	pk := peak()
	logf("workflow run, %s: %s, %s, %d images, peak RSS %s (%s before the run), load %s", mode, total.Round(10*time.Millisecond), r.State, len(tags), procStatus("VmHWM:"), base, loadavg())
	during := func(at time.Time) string {
		var tasks []string
		for _, tk := range r.Tasks {
			// The ledger's times are the engine's clock: the real time moved back.
			if s, e := tk.StartedAt.Add(clockOffset), tk.EndedAt.Add(clockOffset); !at.Before(s) && !at.After(e) {
				tasks = append(tasks, string(tk.Kind)+" "+tk.Image)
			}
		}
		return strings.Join(tasks, ", ")
	}
	logf("  sampled peak RSS %d MB at +%.1fs (%s), during: %s", pk.kb/1024, pk.at.Sub(start).Seconds(), pk.parts, during(pk.at))
	logf("  highest live heap %d MB at +%.1fs, during: %s; largest Go heap (objects and free not returned) %d MB at +%.1fs, during: %s",
		pk.liveMB, pk.liveAt.Sub(start).Seconds(), during(pk.liveAt), pk.mapMB, pk.mapAt.Sub(start).Seconds(), during(pk.mapAt))
	for _, tk := range r.Tasks {
		what, phases := "", ""
		switch {
		case tk.Kind == workflow.TaskTrigger:
			what = "resolves the tags and reads the images' inventories"
		case tk.Scan != nil:
			phases = phaseText(tk.Scan.Seconds, "read", "scan", "plan")
			if !tk.Scan.Patch {
				what = "skip: " + tk.Scan.SkipReason
			}
		case tk.Patch != nil:
			phases = phaseText(tk.Patch.Seconds, "patch", "patch/read", "patch/index", "patch/resolve", "patch/download", "patch/unpack", "patch/scripts", "patch/layer", "rescan", "write", "sign")
			what = tk.Patch.SkipReason
			if tk.Patch.TagWritten {
				what = fmt.Sprintf("wrote %s, %d packages", tk.Patch.Tag, len(tk.Patch.Packages))
			}
			if tk.Patch.SharedWith != "" {
				what += ", built by " + tk.Patch.SharedWith
			}
		}
		if tk.Error != "" {
			what = "error: " + tk.Error
		}
		logf("  %-6s %-16s %-9s %6.1fs  [%s]  %s", tk.Kind, tk.Image, tk.State, tk.EndedAt.Sub(tk.StartedAt).Seconds(), phases, what)
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

// benchCache returns the patcher's cache directory for a run: the
// bench's own (other tests on the machine evict the shared one), emptied
// for a cold run; for a warm run, filled by an untimed cold run when
// there is none yet, and without the layer records of earlier runs
// (the images' layers are read again: only the archive data is warm).
func benchCache(b *testing.B, tags []struct {
	tag string
	art any
	oci string
}, m testimage.MirrorInfo, mode benchMode) string {
	root, err := testimage.DefaultCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(root, "bench-workflow", "patch")
	if mode == benchCold {
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		return dir
	}
	if _, err := os.Stat(filepath.Join(dir, "deb")); err != nil {
		fmt.Fprintln(os.Stderr, "no warm cache yet: a cold run fills it first")
		benchRun(b, tags, m, benchCold)
	}
	if err := os.RemoveAll(filepath.Join(dir, "images")); err != nil {
		b.Fatal(err)
	}
	return dir
}

// phaseText formats the phases named (in that order) that took time.
func phaseText(sec map[string]float64, names ...string) string {
	var parts []string
	for _, n := range names {
		if v, ok := sec[n]; ok {
			parts = append(parts, fmt.Sprintf("%s %.1f", n, v))
		}
	}
	return strings.Join(parts, ", ")
}

// rssPeak is what sampleRSS saw: the highest RSS sample, its time and
// what made it up then (anonymous and file-backed RSS, the Go heap's
// live objects and the memory the Go runtime held); and the highest live
// heap (at the end of a GC: what the next heap goal doubles) and the
// largest Go heap (objects, live or not, and the free memory the runtime
// had not returned yet), each with its time.
type rssPeak struct {
	at            time.Time
	kb            int64
	parts         string
	liveAt, mapAt time.Time
	liveMB, mapMB int64
}

// sampleRSS samples the process's RSS and the Go runtime's memory every
// 20 ms until the returned function is called. With $DRYDOCK_BENCH_TRACE
// set, it writes a line there every 250 ms (seconds since the start, RSS,
// heap objects, live heap, heap goal, free not returned, in MB).
func sampleRSS() func() rssPeak {
	stop := make(chan struct{})
	done := make(chan struct{})
	var p rssPeak
	var written int64
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"}, {Name: "/memory/classes/heap/released:bytes"}, {Name: "/memory/classes/total:bytes"},
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	var trace *os.File
	if t := os.Getenv("DRYDOCK_BENCH_TRACE"); t != "" {
		trace, _ = os.Create(t)
	}
	go func() {
		defer close(done)
		if trace != nil {
			defer trace.Close()
		}
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		start := time.Now()
		var lastTrace time.Time
		for {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(procStatus("VmRSS:"), " kB"), 10, 64)
			metrics.Read(samples)
			mb := func(i int) int64 { return int64(samples[i].Value.Uint64() >> 20) }
			now := time.Now()
			if mb(5) > p.liveMB {
				if mb(5) > written+4 {
					heapAtPeak()
					written = mb(5)
				}
				p.liveMB, p.liveAt = mb(5), now
			}
			if m := mb(0) + mb(1) + mb(2); m > p.mapMB {
				p.mapMB, p.mapAt = m, now
			}
			if trace != nil && now.Sub(lastTrace) >= 250*time.Millisecond {
				lastTrace = now
				fmt.Fprintf(trace, "%6.2f rss %d objects %d live %d goal %d free %d\n", now.Sub(start).Seconds(), kb>>10, mb(0), mb(5), mb(6), mb(2))
			}
			if kb > p.kb {
				p.kb, p.at = kb, now
				anonKB, _ := strconv.ParseInt(strings.TrimSuffix(procStatus("RssAnon:"), " kB"), 10, 64)
				// Outside Go: anonymous memory the Go runtime did not map
				// or has released (SQLite's pages: modernc's libc
				// allocates them with mmap, not on the Go heap).
				outside := anonKB>>10 - (mb(4) - mb(3))
				p.parts = fmt.Sprintf("RssAnon %d MB, RssFile %s; Go: heap objects %d MB (live at the last GC %d, goal %d), unused in spans %d, free not yet returned %d, other runtime %d; outside Go about %d MB",
					anonKB>>10, procStatus("RssFile:"), mb(0), mb(5), mb(6), mb(1), mb(2), mb(4)-mb(3)-mb(0)-mb(1)-mb(2), outside)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() rssPeak {
		close(stop)
		<-done
		return p
	}
}

// heapAtPeak writes the heap profile (in use at the last GC, and what
// was allocated) to $DRYDOCK_BENCH_HEAP, when set, each time the live
// heap reaches a new high: the last one written is the peak's. (The RSS
// peak is not the moment to look at: the Go runtime returns freed memory
// to the system slowly, so the RSS is highest some time after the heap
// was largest, when what was live then is gone.)
func heapAtPeak() {
	p := os.Getenv("DRYDOCK_BENCH_HEAP")
	if p == "" {
		return
	}
	f, err := os.Create(p)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.Lookup("heap").WriteTo(f, 0)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// benchGate is a real gate beside the engine, as `drydock serve` wires
// them: the registry's manifest listener queues its scans, and it keeps
// its inventories in the cache the engine reads.
type benchGate struct {
	keeper *gatekeeper.Keeper
	store  store.Store
	dir    string
}

// wait waits until the gate has a verdict for every digest, and returns
// how long that took.
func (g *benchGate) wait(b *testing.B, digests []string) time.Duration {
	start := time.Now()
	for _, d := range digests {
		for {
			im, err := g.store.Image(b.Context(), d)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				b.Fatal(err)
			}
			if err == nil && im.Verdict.State != gate.StatePending {
				break
			}
			if time.Since(start) > 30*time.Minute {
				b.Fatalf("the gate has not scanned %s", d)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// snapshots counts the inventories in the cache.
func (g *benchGate) snapshots(b *testing.B) int {
	n := 0
	err := filepath.WalkDir(g.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			n++
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// newBenchHarness builds the engine as the server does: one workflow
// worker, an inventory cache on disk; with withGate, a real gate too.
func newBenchHarness(b *testing.B, cache string, m testimage.MirrorInfo, withGate bool) (*harness, *benchGate) {
	clock := offsetClock{d: clockOffset}
	invDir := b.TempDir()
	inv, err := scan.NewFileCache(invDir)
	if err != nil {
		b.Fatal(err)
	}
	var bg *benchGate
	var parts harnessParts
	if withGate {
		bg = &benchGate{dir: invDir}
		parts.registry = []registry.Option{registry.WithManifestListener(registry.ManifestListenerFunc(func(ctx context.Context, repo, tag string, desc ocispec.Descriptor) error {
			return bg.keeper.ManifestPushed(ctx, repo, tag, desc)
		}))}
		parts.queue = []jobs.Option{jobs.WithWorkers(drycfg.Default().Gate.ScanWorkers)}
	}
	h := newHarnessWith(b, true, drycfg.Default().Workflow.Workers, parts, func(o *workflow.Options) {
		o.Clock = clock
		o.InventoryCache = inv
		o.Patcher = &workflow.LibraryPatcher{Options: []patch.Option{patch.WithCacheDir(cache)}, HostKeyring: apt.DebianArchiveKeyring,
			Mirror: m.URI, SecurityMirror: m.SecurityURI, Sandbox: os.Geteuid() == 0, Tool: "drydock-bench", Clock: clock}
	})
	if withGate {
		st, err := store.Open(b.Context(), h.dbs)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		al, closeAudit, err := audit.Open(b.Context(), h.dbs)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { closeAudit() })
		bg.store = st
		if bg.keeper, err = gatekeeper.New(gatekeeper.Options{Registry: h.reg, Store: st, Queue: h.queue, Audit: al,
			DBPath: h.opts.DBPath, InventoryCache: inv, Now: clock.Now}); err != nil {
			b.Fatal(err)
		}
	}
	h.start()
	return h, bg
}

// benchCLI patches each tag with its own `drydock patch` process, as a
// user without workflows would, and prints each one's time and peak RSS.
func benchCLI(b *testing.B, tags []struct {
	tag string
	art any
	oci string
}, m testimage.MirrorInfo, cache string) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "drydock")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/drydock-project/drydock/cmd/drydock").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	var total time.Duration
	var maxRSS int64
	for i, e := range tags {
		args := []string{"patch", e.oci, "--update-all", "--allow-eol", "--mirror", m.URI, "--security-mirror", m.SecurityURI, "--cache", cache,
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
	fmt.Fprintf(os.Stderr, "10 separate drydock patch runs (warm archive cache, no layer records): %s, highest peak RSS %d MB\n", total.Round(10*time.Millisecond), maxRSS/1024)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		s = s[i+1:]
	}
	return s
}
