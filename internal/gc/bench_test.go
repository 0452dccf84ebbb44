package gc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/registry"
)

// populate stores n small blobs in repos repositories: half of them as
// the layers of manifests of 50 layers, tagged, the other half
// unreferenced (linked long ago, so that a collection with a grace of an
// hour deletes them). The blobs and their links are written straight into the
// filesystem driver's layout (the registry's uploads would take most of
// the benchmark's time); the manifests go through the registry.
func populate(b *testing.B, s *setup, n, repos int) {
	b.Helper()
	ctx := context.Background()
	var g errgroup.Group
	g.SetLimit(4)
	per := n / repos
	v2 := filepath.Join(s.root, "docker", "registry", "v2")
	write := func(p string, data []byte) error {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	}
	for r := range repos {
		g.Go(func() error {
			repo := fmt.Sprintf("bench/r%d", r)
			var layers []ocispec.Descriptor
			for i := range per {
				buf := make([]byte, 64)
				binary.LittleEndian.PutUint64(buf, uint64(r*per+i))
				d := digest.FromBytes(buf)
				if err := write(filepath.Join(v2, "blobs", "sha256", d.Encoded()[:2], d.Encoded(), "data"), buf); err != nil {
					return err
				}
				if err := write(filepath.Join(v2, "repositories", repo, "_layers", "sha256", d.Encoded(), "link"), []byte(d.String())); err != nil {
					return err
				}
				if i%2 == 1 {
					// Unreferenced, and linked two hours ago: garbage
					// past any grace.
					old := time.Now().Add(-2 * time.Hour)
					if err := os.Chtimes(filepath.Join(v2, "repositories", repo, "_layers", "sha256", d.Encoded(), "link"), old, old); err != nil {
						return err
					}
					continue
				}
				layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: 64})
				if len(layers) == 50 || i >= per-2 {
					cfg, err := s.reg.PutBlob(ctx, repo, fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","n":"%d-%d"}`, r, i))
					if err != nil {
						return err
					}
					cfg.MediaType = ocispec.MediaTypeImageConfig
					m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers}
					m.SchemaVersion = 2
					body, _ := json.Marshal(m)
					if _, err := s.reg.PutManifest(ctx, repo, ocispec.MediaTypeImageManifest, body, fmt.Sprintf("t%d", i)); err != nil {
						return err
					}
					layers = nil
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

func maxRSS() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss << 10
}

// BenchmarkCollect100kBlobs: one collection (dry, then real) over
// 100,000 blobs on the filesystem driver, half of them unreferenced.
// Reports the time of each, the bytes allocated and the peak heap during
// the real one.
//
//	go test -run '^$' -bench Collect100k -benchtime 1x ./internal/gc/
func BenchmarkCollect100kBlobs(b *testing.B) {
	for range b.N {
		b.StopTimer()
		s := newSetup(b, dbtest.SQLite(b))
		populate(b, s, 100_000, 20)
		runtime.GC()
		start := time.Now()
		dry := s.collect(registry.CollectOptions{DryRun: true, MaxItems: 1000})
		dryTime := time.Since(start)
		var peak atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		start = time.Now()
		rep := s.collect(registry.CollectOptions{MaxItems: 1000})
		realTime := time.Since(start)
		b.StopTimer()
		close(stop)
		wg.Wait()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(dryTime.Seconds(), "dry-s")
		b.ReportMetric(realTime.Seconds(), "gc-s")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/(1<<20), "alloc-MiB")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(maxRSS())/(1<<20), "maxrss-MiB")
		b.Logf("scanned %d blobs; dry run listed %d blobs, the run deleted %d (%d bytes)", rep.Blobs, dry.Deleted[registry.KindBlob],
			rep.Deleted[registry.KindBlob], rep.FreedBytes)
	}
}

// BenchmarkPushDuringGC: 4 clients push images (3 blobs of 4 KiB and a
// manifest each, as fast as the registry answers) through three phases
// of one run, on one store: idle, then collections, then idle again.
// Both idle phases together are the figure the collection phase is
// compared with, so a change of the machine's load during the run shows
// as a difference between them. Reported: pushes per second in each
// phase, and per request class (blob upload, manifest put) the p99 and
// the slowest request that started in the phase.
//
//   - once: one collection over 100,000 blobs (half of them garbage) at
//     the default gc.pace, gc.yield and storage.writeback (in all three
//     phases, as the server does), what a scheduled collection is; the
//     phase lasts as long as it does.
//
//   - once-nowriteback: the same with storage.writeback 0 (the kernel
//     writes the pushes' and deletions' metadata back in its own periodic
//     bursts).
//
//   - once-noyield: the same with gc.yield 0 (deletions never wait for
//     the pushes).
//
//   - once-unpaced: pace 1 (no rests; the collection still gives the
//     processor up between units of work) and the default yield.
//
//   - backtoback: collections one after another for 8 s over 20,000
//     blobs at the defaults: a stress (a store collected
//     continuously), not the schedule's case.
//
// What the collection costs a request is not its latency during the
// phase alone: pushes are slow now and then with no collection at all
// (the disk's syncs, the machine's other work). So beside each class's
// p99 and slowest request per phase, the bench reports the excess of the
// collection phase over the idle ones (p99 and slowest, during minus
// idle; negative: within the idle noise), and the time writes spent on
// the collection's barrier (Protect: their marks and any wait for the
// collector's claims), the one place where a request waits for the
// collector rather than sharing the machine with it. It also counts the
// events with requests over 100 ms in each phase (slowEvents: a stall of
// the disk slows every request in flight at once), per minute: whether
// such stalls come more often during a collection than without one.
//
// Run it with:
//
//	go test -run '^$' -bench PushDuringGC -benchtime 1x ./internal/gc/
//
// DRYDOCK_BENCH_GC_BLOBS=N stores N blobs instead of 100,000 in the once
// cases (a shorter run on a busy machine; the figures say which).
//
// DRYDOCK_BENCH_GC_YIELD=D runs the once case with gc.yield D instead of
// the default.
//
// DRYDOCK_BENCH_GC_TRACE=DIR keeps the last seconds of the execution
// trace in memory and writes them to DIR when a request takes over 100 ms
// (up to 8 files, named by the request's start in Unix milliseconds and its
// duration), for go tool trace -pprof=syscall|sync|sched to say what it
// waited for.
//
// The store and its database live under TMPDIR (TMPDIR=/some/dir runs the
// bench on another filesystem), and the bench logs that directory's
// filesystem first: the latency figures mean little without it. On ext4
// without a journal the kernel makes each new inode skip the free inodes of
// its block group deleted in the last minute (five more while their inode
// table block is dirty), one buffer-cache lookup each, lest a crash
// before that block is written leave an old and a new file on one inode;
// after a sweep's tens of thousands of unlinks every file or directory a
// push creates costs up to a millisecond of CPU, during the collection and
// for minutes after it. There, the figures also depend on what else was
// deleted on that filesystem in the minutes before (the previous run's
// store, other programs' temporary files). It also logs the phases' bounds
// in Unix time, to cut a profile of the whole run recorded with
// perf record -k realtime (perf report --time START,END), and the block
// device's writes, discards, flushes and busy time in each phase (from
// /proc/diskstats: every user of the device counts, not only the bench).
func BenchmarkPushDuringGC(b *testing.B) {
	onceBlobs := 100_000
	if v := os.Getenv("DRYDOCK_BENCH_GC_BLOBS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("DRYDOCK_BENCH_GC_BLOBS=%q: want a number of blobs, at least 1000", v)
		}
		onceBlobs = n
	}
	onceYield := envDuration(b, "DRYDOCK_BENCH_GC_YIELD", config.DefaultGCYield, 0)
	for _, tc := range []struct {
		name       string
		blobs      int
		backToBack time.Duration
		pace       float64
		yield      time.Duration
		writeback  time.Duration
	}{
		{"once", onceBlobs, 0, config.DefaultGCPace, onceYield, config.DefaultStorageWriteback},
		{"once-nowriteback", onceBlobs, 0, config.DefaultGCPace, config.DefaultGCYield, 0},
		{"once-noyield", onceBlobs, 0, config.DefaultGCPace, 0, config.DefaultStorageWriteback},
		{"once-unpaced", onceBlobs, 0, 1, config.DefaultGCYield, config.DefaultStorageWriteback},
		{"backtoback", 20_000, 8 * time.Second, config.DefaultGCPace, config.DefaultGCYield, config.DefaultStorageWriteback},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				s := newSetup(b, dbtest.SQLite(b))
				populate(b, s, tc.blobs, 20)
				// populate's 200,000 files are written without syncs:
				// their write-back would otherwise join the journal
				// commits of the first phase's pushes.
				syscall.Sync()
				runtime.GC()
				b.StartTimer()
				pushDuringGC(b, s, tc.backToBack, collectOptions{tc.pace, tc.yield, tc.writeback})
			}
		})
	}
}

// idlePhase is how long each idle phase of BenchmarkPushDuringGC lasts
// by default; DRYDOCK_BENCH_GC_IDLE (a Go duration) changes it. Idle
// phases as long as the kernel's dirty-page expiry (30 s by default) see
// its writeback bursts too, which a collection of minutes always does.
const idlePhase = 4 * time.Second

// envDuration is the Go duration in the environment variable name (no
// shorter than least), or def when it is unset.
func envDuration(b *testing.B, name string, def, least time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < least {
		b.Fatalf("%s=%q: want a Go duration of at least %s, such as %s", name, v, least, def)
	}
	return d
}

// request is one timed request of BenchmarkPushDuringGC.
type request struct {
	class      string // "blob" or "manifest" (requests), "sync" (storage syncs)
	start, end time.Time
}

// collectOptions are the pacing options BenchmarkPushDuringGC's cases vary.
type collectOptions struct {
	pace             float64
	yield, writeback time.Duration
}

func pushDuringGC(b *testing.B, s *setup, backToBack time.Duration, co collectOptions) {
	ctx := context.Background()
	// The server's writeback runs through every phase.
	wbCtx, stopWriteback := context.WithCancel(ctx)
	var wbDone sync.WaitGroup
	wbDone.Go(func() { s.reg.Writeback(wbCtx, co.writeback) })
	defer func() { stopWriteback(); wbDone.Wait() }()
	var mu sync.Mutex
	var reqs []request
	var protects []time.Duration // Protect's durations (only while a cycle runs)
	s.member.protects.Store(new(func(d time.Duration) {
		mu.Lock()
		protects = append(protects, d)
		mu.Unlock()
	}))
	var ops []keyOp // the key operations during cycles
	s.member.trace.Store(new(keyTrace(func(op string, keys int, tm keyTimes, waited time.Duration) {
		mu.Lock()
		ops = append(ops, keyOp{op, keys, tm, waited})
		mu.Unlock()
	})))
	var syncs []request // the storage syncs, class "sync"
	s.synced.Store(new(func(start time.Time, d time.Duration) {
		mu.Lock()
		syncs = append(syncs, request{"sync", start, start.Add(d)})
		mu.Unlock()
	}))
	defer s.synced.Store(nil)
	dirty0 := meminfo("Dirty")
	idleLen := envDuration(b, "DRYDOCK_BENCH_GC_IDLE", idlePhase, time.Millisecond)
	tracer := newSlowTracer(b)
	defer tracer.stop()
	timed := func(class, method, path string, body []byte, h ...string) int {
		t0 := time.Now()
		code, _, _ := s.do(method, path, body, h...)
		t1 := time.Now()
		mu.Lock()
		reqs = append(reqs, request{class, t0, t1})
		mu.Unlock()
		tracer.observe(t0, t1.Sub(t0))
		return code
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			repo := fmt.Sprintf("push/c%d", c)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var layers []ocispec.Descriptor
				for range 3 {
					content := randomBytes(4096)
					d := digest.FromBytes(content)
					if code := timed("blob", "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content); code != http.StatusCreated {
						b.Errorf("push blob: %d", code)
						return
					}
					layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: 4096})
				}
				m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: layers[0], Layers: layers[1:]}
				m.SchemaVersion = 2
				body, _ := json.Marshal(m)
				if code := timed("manifest", "PUT", fmt.Sprintf("/v2/%s/manifests/t%d", repo, i), body, "Content-Type: "+ocispec.MediaTypeImageManifest); code != http.StatusCreated {
					b.Errorf("push manifest: %d", code)
					return
				}
			}
		})
	}
	facts, dev := fsFacts(s.root)
	b.Logf("data directory: %s", facts)
	// Phases: [t0,t1) idle, [t1,t2) collections, [t2,t3) idle.
	var disk [4]diskStats
	disk[0] = readDiskStats(dev)
	t0 := time.Now()
	time.Sleep(idleLen)
	t1 := time.Now()
	disk[1] = readDiskStats(dev)
	cycles := 0
	var last *registry.Report
	var phases []string // the last collection's phases with their start, from t1
	var phaseMu sync.Mutex
	lastPhase := ""
	progress := func(p registry.Progress) {
		phaseMu.Lock()
		defer phaseMu.Unlock()
		if p.Phase != lastPhase {
			lastPhase = p.Phase
			phases = append(phases, fmt.Sprintf("%s@%.1fs", p.Phase, time.Since(t1).Seconds()))
		}
	}
	for {
		phaseMu.Lock()
		phases, lastPhase = nil, ""
		phaseMu.Unlock()
		c, err := s.member.Lead(ctx)
		if err != nil {
			b.Fatal(err)
		}
		last, err = s.reg.Collect(ctx, registry.CollectOptions{Coordinator: c, Grace: time.Hour, Pace: co.pace, Yield: co.yield, Progress: progress})
		if ferr := c.Finish(ctx); err == nil {
			err = ferr
		}
		if err != nil {
			b.Fatal(err)
		}
		cycles++
		if time.Since(t1) >= backToBack {
			break
		}
	}
	t2 := time.Now()
	disk[2] = readDiskStats(dev)
	time.Sleep(idleLen)
	t3 := time.Now()
	disk[3] = readDiskStats(dev)
	close(stop)
	wg.Wait()
	b.StopTimer()
	// The phases' bounds in Unix time, to cut a profile recorded with
	// perf record -k realtime (perf script --time T1,T2).
	unix := func(t time.Time) string { return fmt.Sprintf("%.3f", float64(t.UnixMicro())/1e6) }
	b.Logf("phases (Unix time): idle %s, collections %s, idle %s, end %s", unix(t0), unix(t1), unix(t2), unix(t3))
	if dev != "" {
		b.Logf("device %s (all its users, not only the bench): first idle phase %v; collections %v; second idle phase %v", dev,
			disk[1].sub(disk[0]), disk[2].sub(disk[1]), disk[3].sub(disk[2]))
	}

	type phase struct {
		pushes int
		lat    map[string][]time.Duration
	}
	idle, gc := phase{lat: map[string][]time.Duration{}}, phase{lat: map[string][]time.Duration{}}
	in := func(t, from, to time.Time) bool { return !t.Before(from) && t.Before(to) }
	for _, r := range reqs {
		p := (*phase)(nil)
		switch {
		case in(r.start, t0, t1), in(r.start, t2, t3):
			p = &idle
		case in(r.start, t1, t2):
			p = &gc
		default:
			continue
		}
		p.lat[r.class] = append(p.lat[r.class], r.end.Sub(r.start))
		if r.class == "manifest" {
			p.pushes++
		}
	}
	rate := func(p phase, d time.Duration) float64 { return float64(p.pushes) / d.Seconds() }
	idleRate, gcRate := rate(idle, t1.Sub(t0)+t3.Sub(t2)), rate(gc, t2.Sub(t1))
	b.ReportMetric(idleRate, "pushes/s-idle")
	b.ReportMetric(gcRate, "pushes/s-gc")
	b.ReportMetric(100*(1-gcRate/idleRate), "%slower")
	b.ReportMetric(t2.Sub(t1).Seconds(), "gc-s")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	type stat struct{ max, p99 time.Duration }
	stats := func(lat []time.Duration) stat {
		if len(lat) == 0 {
			return stat{}
		}
		slices.Sort(lat)
		return stat{lat[len(lat)-1], lat[len(lat)*99/100]}
	}
	for _, class := range []string{"blob", "manifest"} {
		si, sg := stats(idle.lat[class]), stats(gc.lat[class])
		b.ReportMetric(ms(si.max), "max-ms-"+class+"-idle")
		b.ReportMetric(ms(si.p99), "p99-ms-"+class+"-idle")
		b.ReportMetric(ms(sg.max), "max-ms-"+class+"-gc")
		b.ReportMetric(ms(sg.p99), "p99-ms-"+class+"-gc")
		b.ReportMetric(ms(sg.max-si.max), "excess-max-ms-"+class)
		b.ReportMetric(ms(sg.p99-si.p99), "excess-p99-ms-"+class)
	}
	mu.Lock()
	sp := stats(protects)
	nprotects := len(protects)
	mu.Unlock()
	b.ReportMetric(ms(sp.max), "max-ms-barrier")
	b.ReportMetric(ms(sp.p99), "p99-ms-barrier")
	mu.Lock()
	reportKeyOps(b, ops)
	mu.Unlock()
	// Requests over 100 ms in stalls of the disk or the machine: how often
	// they come during the collections and when idle.
	evGC := slowEvents(reqs, t1, t2, 100*time.Millisecond)
	evIdle := slowEvents(reqs, t0, t1, 100*time.Millisecond) + slowEvents(reqs, t2, t3, 100*time.Millisecond)
	b.ReportMetric(float64(evGC)/t2.Sub(t1).Minutes(), "slow-events/min-gc")
	b.ReportMetric(float64(evIdle)/(t1.Sub(t0)+t3.Sub(t2)).Minutes(), "slow-events/min-idle")
	b.Logf("first idle phase (page cache %d kB dirty at its start): slowest requests %s", dirty0, slowestList(reqs, t0, t1, 5))
	b.Logf("second idle phase: slowest requests %s", slowestList(reqs, t2, t3, 5))
	b.Logf("collections: slowest requests %s; over 100 ms: %d of %d in %d events (idle phases: %d of %d in %d events)", slowestList(reqs, t1, t2, 8),
		countOver(reqs, t1, t2, 100*time.Millisecond), countOver(reqs, t1, t2, 0), evGC,
		countOver(reqs, t0, t1, 100*time.Millisecond)+countOver(reqs, t2, t3, 100*time.Millisecond), countOver(reqs, t0, t1, 0)+countOver(reqs, t2, t3, 0), evIdle)
	mu.Lock()
	reportSyncs(b, reqs, syncs, t0, t1, t2, t3)
	mu.Unlock()
	b.ReportMetric(last.Yielded.Seconds(), "yielded-s")
	b.Logf("idle before %.1f pushes/s (slowest request %s), after %.1f (%s); %d collection(s) in %s: %.1f pushes/s; last collection: %d blobs scanned, %d deleted, yielded %s; %d writebacks in all phases; its phases: %v; %d protects during cycles",
		float64(countPushes(reqs, t0, t1))/t1.Sub(t0).Seconds(), slowest(reqs, t0, t1), float64(countPushes(reqs, t2, t3))/t3.Sub(t2).Seconds(),
		slowest(reqs, t2, t3), cycles, t2.Sub(t1).Round(time.Millisecond), gcRate, last.Blobs, last.Deleted[registry.KindBlob], last.Yielded.Round(time.Millisecond), s.reg.Writebacks(), phases, nprotects)
}

func countPushes(reqs []request, from, to time.Time) int {
	n := 0
	for _, r := range reqs {
		if r.class == "manifest" && !r.start.Before(from) && r.start.Before(to) {
			n++
		}
	}
	return n
}

// slowest is the longest request that started in [from, to).
func slowest(reqs []request, from, to time.Time) time.Duration {
	var m time.Duration
	for _, r := range reqs {
		if !r.start.Before(from) && r.start.Before(to) {
			m = max(m, r.end.Sub(r.start))
		}
	}
	return m.Round(time.Millisecond)
}

// keyOp is one key operation of BenchmarkPushDuringGC (see keyTrace).
type keyOp struct {
	op     string
	keys   int
	tm     keyTimes
	waited time.Duration
}

// reportKeyOps reports, per kind of key operation, how many ran and the
// slowest with where its time went, and the largest of each part over
// all of them: the wait for the key store (see keyTimes), BEGIN, the
// statements, COMMIT and, for marks, the waits for claimed keys.
func reportKeyOps(b *testing.B, ops []keyOp) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, kind := range []string{"mark", "claim", "release"} {
		var slowest keyOp
		var most keyOp
		n, keys := 0, 0
		for _, o := range ops {
			if o.op != kind {
				continue
			}
			n++
			keys += o.keys
			if o.tm.total()+o.waited > slowest.tm.total()+slowest.waited {
				slowest = o
			}
			most.tm.turn = max(most.tm.turn, o.tm.turn)
			most.tm.begin = max(most.tm.begin, o.tm.begin)
			most.tm.run = max(most.tm.run, o.tm.run)
			most.tm.commit = max(most.tm.commit, o.tm.commit)
			most.waited = max(most.waited, o.waited)
			most.tm.txs = max(most.tm.txs, o.tm.txs)
		}
		if n == 0 {
			continue
		}
		b.ReportMetric(ms(slowest.tm.total()+slowest.waited), "max-ms-"+kind)
		b.Logf("%s: %d operations, %d keys; slowest %.1f ms (%d keys, %d txs: turn %.1f, begin %.1f, statements %.1f, commit %.1f, claimed-key waits %.1f); largest parts: turn %.1f, begin %.1f, statements %.1f, commit %.1f, claimed-key waits %.1f",
			kind, n, keys, ms(slowest.tm.total()+slowest.waited), slowest.keys, slowest.tm.txs, ms(slowest.tm.turn), ms(slowest.tm.begin), ms(slowest.tm.run), ms(slowest.tm.commit), ms(slowest.waited),
			ms(most.tm.turn), ms(most.tm.begin), ms(most.tm.run), ms(most.tm.commit), ms(most.waited))
	}
}

// slowestList lists the n slowest requests that started in [from, to),
// with their class and start after from.
func slowestList(reqs []request, from, to time.Time, n int) string {
	in := startedIn(reqs, from, to)
	slices.SortFunc(in, func(a, b request) int { return int(b.end.Sub(b.start) - a.end.Sub(a.start)) })
	var out []string
	for _, r := range in[:min(n, len(in))] {
		out = append(out, fmt.Sprintf("%s %s at +%.2fs", r.class, r.end.Sub(r.start).Round(time.Millisecond), r.start.Sub(from).Seconds()))
	}
	return strings.Join(out, ", ")
}

// countOver counts the requests that started in [from, to) and took
// longer than d.
func countOver(reqs []request, from, to time.Time, d time.Duration) int {
	n := 0
	for _, r := range startedIn(reqs, from, to) {
		if r.end.Sub(r.start) > d {
			n++
		}
	}
	return n
}

// slowEvents counts the events over d among the requests that started in
// [from, to): runs of requests over d, each starting less than a second
// after the previous one of its run ended. A stall of the disk or the
// machine slows every request in flight at once; one stall is one event.
func slowEvents(reqs []request, from, to time.Time, d time.Duration) int {
	var slow []request
	for _, r := range startedIn(reqs, from, to) {
		if r.end.Sub(r.start) > d {
			slow = append(slow, r)
		}
	}
	slices.SortFunc(slow, func(a, b request) int { return a.start.Compare(b.start) })
	n := 0
	var end time.Time
	for _, r := range slow {
		if n == 0 || r.start.Sub(end) >= time.Second {
			n++
			end = r.end
		}
		if r.end.After(end) {
			end = r.end
		}
	}
	return n
}

// startedIn returns the requests that started in [from, to).
func startedIn(reqs []request, from, to time.Time) []request {
	var in []request
	for _, r := range reqs {
		if !r.start.Before(from) && r.start.Before(to) {
			in = append(in, r)
		}
	}
	return in
}

// meminfo returns a /proc/meminfo field in kB (-1 when unknown).
func meminfo(field string) int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
