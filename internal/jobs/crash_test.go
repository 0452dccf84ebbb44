package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/database/dbtest"
)

// crashHelperEnv switches TestHelperProcess on and names its directory
// (the data directory on SQLite); crashDriverEnv and crashDSNEnv say which
// database the queue is in; crashSingleEnv makes it open its queue
// WithSingleWorker.
const (
	crashHelperEnv = "DRYDOCK_JOBS_CRASH_HELPER_DIR"
	crashDriverEnv = "DRYDOCK_JOBS_CRASH_DRIVER"
	crashDSNEnv    = "DRYDOCK_JOBS_CRASH_DSN"
	crashSingleEnv = "DRYDOCK_JOBS_CRASH_HELPER_SINGLE"
)

const crashJobs = 6

type crashArgs struct {
	N int `json:"n"`
}

func (crashArgs) Kind() string { return "test_crash" }

// TestHelperProcess is the "server" that TestCrashRecovery kills with
// SIGKILL. It enqueues crashJobs jobs, starts two workers whose handler
// announces itself with a file and then hangs, and waits to be killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashHelperEnv)
	if dir == "" {
		t.Skip("child process of TestCrashRecovery")
	}
	ctx := context.Background()
	opts := []Option{WithWorkers(2), WithPollInterval(20 * time.Millisecond)}
	if os.Getenv(crashSingleEnv) != "" {
		opts = append(opts, WithSingleWorker())
	}
	o, err := database.NewOpener(database.Config{Driver: database.Driver(os.Getenv(crashDriverEnv)), DSN: os.Getenv(crashDSNEnv)}, dir)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Open(ctx, o, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := Register(q, func(ctx context.Context, a crashArgs) error {
		if err := os.WriteFile(filepath.Join(dir, "started-"+strconv.Itoa(a.N)), nil, 0o644); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	for n := range crashJobs {
		if _, err := q.Enqueue(ctx, crashArgs{N: n}, EnqueueOptions{UniqueKey: fmt.Sprint("scan-", n)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Minute)
	t.Fatal("helper was not killed")
}

// startedJobs returns the N of the jobs whose handler ran in the child.
func startedJobs(t *testing.T, dir string) map[int]bool {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "started-*"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for _, name := range names {
		n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(name), "started-"))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = true
	}
	return out
}

// argN decodes the N of a crashArgs job.
func argN(t *testing.T, j Job) int {
	t.Helper()
	var a crashArgs
	if err := json.Unmarshal(j.Args, &a); err != nil {
		t.Fatalf("job %d args %s: %v", j.ID, j.Args, err)
	}
	return a.N
}

// crashHelper runs TestHelperProcess in a child process on dir, waits
// until two of its jobs run, calls whileRunning (if set), kills it with
// SIGKILL and returns the jobs that were running.
func crashHelper(t *testing.T, tg dbtest.Target, single bool, whileRunning func()) map[int]bool {
	t.Helper()
	dir := tg.Data
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir, crashDriverEnv+"="+string(tg.Driver()), crashDSNEnv+"="+tg.Config.DSN)
	if single {
		cmd.Env = append(cmd.Env, crashSingleEnv+"=1")
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitOnce sync.Once
	kill := func() {
		waitOnce.Do(func() {
			_ = cmd.Process.Kill() // SIGKILL: no graceful stop, no leader resignation
			_ = cmd.Wait()
		})
	}
	t.Cleanup(kill)
	exited := make(chan struct{})
	go func() { _, _ = cmd.Process.Wait(); close(exited) }()

	deadline := time.Now().Add(30 * time.Second)
	for len(startedJobs(t, dir)) < 2 {
		select {
		case <-exited:
			t.Fatalf("helper exited early:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper did not start two jobs:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if whileRunning != nil {
		whileRunning()
	}
	kill()
	return startedJobs(t, dir)
}

// TestCrashRecovery kills a process with kill -9 while two jobs run and
// four are queued, then restarts the queue on the same file: every job must
// complete exactly once, the interrupted ones on their second attempt.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		tg := newTarget(t)
		interrupted := crashHelper(t, tg, false, nil)
		crashedAt := time.Now()

		q := openTest(t, tg, WithJobTimeout(time.Second), WithRescueStuckAfter(2*time.Second))
		before, err := q.Jobs(t.Context(), Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if !allIn(crashJobs, StateRunning, StateAvailable)(before) {
			t.Fatalf("after the crash, jobs = %+v", before)
		}
		for _, j := range before {
			if want := interrupted[argN(t, j)]; (j.State == StateRunning) != want {
				t.Errorf("job %s: state %s, started in child %v", j.Args, j.State, want)
			}
		}

		var mu sync.Mutex
		done := map[int]int{}
		ledger := filepath.Join(tg.Data, "verdicts")
		if err := Register(q, func(_ context.Context, a crashArgs) error {
			mu.Lock()
			defer mu.Unlock()
			done[a.N]++
			f, err := os.OpenFile(ledger, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(f, "%d\n", a.N)
			return errors.Join(err, f.Close())
		}); err != nil {
			t.Fatal(err)
		}
		start(t, q)
		after := waitJobs(t, q, Filter{}, 50*time.Second, allIn(crashJobs, StateCompleted))
		t.Logf("all %d jobs completed %s after the kill; %d were running at kill time", crashJobs, time.Since(crashedAt).Round(time.Millisecond), len(interrupted))

		for _, j := range after {
			wantAttempt := 1
			if interrupted[argN(t, j)] {
				wantAttempt = 2 // rescued: the first attempt died with the child
			}
			if j.Attempt != wantAttempt || len(j.Errors) != wantAttempt-1 {
				t.Errorf("job %s: attempt %d, want %d (errors %+v)", j.Args, j.Attempt, wantAttempt, j.Errors)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		b, err := os.ReadFile(ledger)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Fields(string(b))
		if len(lines) != crashJobs {
			t.Errorf("ledger has %d records, want %d: %q", len(lines), crashJobs, lines)
		}
		for n := range crashJobs {
			if done[n] != 1 || strings.Count("\n"+string(b), "\n"+strconv.Itoa(n)+"\n") != 1 {
				t.Errorf("job %d completed %d times (ledger %q), want exactly once", n, done[n], lines)
			}
		}
	})
}

// TestCrashRescuedAtStart: with WithSingleWorker, a second worker on the
// same file is refused while the first lives; after the first is killed
// with kill -9, the next Start queues the jobs it left running again at
// once (River's own rescuer would wait an hour here), each with its dead
// attempt counted in Info.Rescued, and every job completes exactly once.
func TestCrashRescuedAtStart(t *testing.T) {
	t.Parallel()
	tg := dbtest.SQLite(t) // one worker process per queue file: SQLite only
	interrupted := crashHelper(t, tg, true, func() {
		q := openTest(t, tg, WithSingleWorker())
		if err := Register(q, func(context.Context, crashArgs) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if err := q.Start(context.WithoutCancel(t.Context())); !errors.Is(err, ErrOtherWorker) {
			t.Errorf("Start of a second worker while the first runs: %v, want ErrOtherWorker", err)
		}
	})
	crashedAt := time.Now()

	q := openTest(t, tg, WithSingleWorker(), WithRescueStuckAfter(time.Hour))
	var mu sync.Mutex
	rescued := map[int]int{}
	done := map[int]int{}
	if err := Register(q, func(ctx context.Context, a crashArgs) error {
		info, _ := JobInfo(ctx)
		mu.Lock()
		defer mu.Unlock()
		rescued[a.N] = info.Rescued
		done[a.N]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	start(t, q)
	after := waitJobs(t, q, Filter{}, 30*time.Second, allIn(crashJobs, StateCompleted))
	t.Logf("all %d jobs completed %s after the kill; %d were running", crashJobs, time.Since(crashedAt).Round(time.Millisecond), len(interrupted))
	mu.Lock()
	defer mu.Unlock()
	for _, j := range after {
		n := argN(t, j)
		want := 0
		if interrupted[n] {
			want = 1
		}
		if rescued[n] != want || j.Attempt != want+1 || done[n] != 1 {
			t.Errorf("job %d: Rescued %d, attempt %d, run %d times; want %d, %d, once", n, rescued[n], j.Attempt, done[n], want, want+1)
		}
	}
}
