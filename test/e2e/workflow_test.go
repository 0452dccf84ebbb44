package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
	"github.com/drydock-project/drydock/internal/workflow"
)

// seedConfig is the seed's continuouspatching.json, byte for byte.
const seedConfig = `{
  "version": "v1",
  "tag-convention": "incremental",
  "repositories": [
    {
      "repository": "nginx",
      "tags": ["1.27.1"],
      "enabled": true
    }
  ]
}
`

// workflowServer starts a server with the real-data vulnerability DB, a
// policy that auto-promotes what passes, and the machine's drydock cache
// (the archive indexes and packages the patcher fetched before).
func workflowServer(t *testing.T, data, extra string) *serveProc {
	t.Helper()
	realdb.Copy(t, vulndb.DefaultPath(data))
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte("version: v1\nmaxSeverity: HIGH\nfixableOnly: true\nautoPromote: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache, err := config.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "gate: {policy: "+policy+"}\n"+extra)
	return startServeEnv(t, data, []string{anonymousAll, "DRYDOCK_CACHE=" + cache}, "--config", cfg)
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var runIDRE = regexp.MustCompile(`run (r[0-9a-f]{8}) queued`)

func runID(t *testing.T, out string) string {
	t.Helper()
	m := runIDRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no run ID in:\n%s", out)
	}
	return m[1]
}

func listRuns(t *testing.T, srv string) workflow.StatusList {
	t.Helper()
	var l workflow.StatusList
	r := mustDrydock(t, nil, "workflow", "list-runs", "--json", "--server", srv)
	if err := json.Unmarshal([]byte(r.Stdout), &l); err != nil {
		t.Fatalf("list-runs --json: %v\n%s", err, r.Stdout)
	}
	return l
}

// TestWorkflowSeedFlow is the seed's steps 4 and 5 against a real server:
// the bookworm+nginx test image imported as nginx:1.27.1, the seed's
// config file, a dry run that lists it with the tag it would write, a run
// that writes nginx:1.27.1-1 with nothing fixable left and nothing pending
// from the security suite, the ledger's three tasks with results and logs,
// a second run that writes no -2, and auto-promotion of the patch.
func TestWorkflowSeedFlow(t *testing.T) {
	ti := testimage.Require(t, testimage.BookwormNginx)
	data := t.TempDir()
	s := workflowServer(t, data, "")
	srv := s.URL()
	mustDrydock(t, nil, "import", ti.OCIReference(), "--as", "nginx:1.27.1", "--server", srv)
	cp := writeFile(t, "continuouspatching.json", seedConfig)

	// Step 4.3: the dry run.
	r := mustDrydock(t, nil, "workflow", "create", "--config", cp, "--schedule", "1d", "--dry-run", "--server", srv)
	if !regexp.MustCompile(`(?m)^nginx:1\.27\.1\s+patch\s+nginx:1\.27\.1-1\s+\d+ updates pending from the security suite`).MatchString(r.Stdout) ||
		!strings.Contains(r.Stdout, "Matches found: 1") || !strings.Contains(r.Stdout, "Configured Tag Convention: incremental") {
		t.Fatalf("dry run:\n%s", r.Stdout)
	}
	if r := drydock(t, nil, "workflow", "show", "--server", srv); r.Code == 0 || !strings.Contains(r.Stderr, "not found") {
		t.Fatalf("a dry run created the workflow: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// Step 4.4: create with --run-immediately, and follow the run.
	r = mustDrydock(t, nil, "workflow", "create", "--config", cp, "--schedule", "1d", "--run-immediately", "--server", srv)
	if !strings.Contains(r.Stdout, "workflow default created: schedule 1d") {
		t.Errorf("create:\n%s", r.Stdout)
	}
	id := runID(t, r.Stdout)
	r = mustDrydock(t, nil, "workflow", "show-run", id, "--follow", "--server", srv)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(id + `-t\s+trigger\s+-\s+succeeded\s.*1 matched`),
		regexp.MustCompile(id + `-s1\s+scan\s+nginx:1\.27\.1\s+succeeded\s.*(live|quarantine)/nginx:1\.27\.1: 0 fixable, \d+ from the security suite; patch into 1\.27\.1-1`),
		regexp.MustCompile(id + `-p1\s+patch\s+nginx:1\.27\.1\s+succeeded\s.*\d+ packages updated, fixable 0 -> 0, wrote quarantine/nginx:1\.27\.1-1 \(sha256:`),
		regexp.MustCompile(id + `-p1\s+linux/amd64: scripts`), // the log, followed
	} {
		if !want.MatchString(r.Stdout) {
			t.Errorf("show-run --follow lacks %s:\n%s", want, r.Stdout)
		}
	}
	if tags := imageTags(tagsOf(t, s, "quarantine/nginx")); !slices.Equal(tags, []string{"1.27.1", "1.27.1-1"}) {
		t.Fatalf("tags after the run: %v", tags)
	}
	// The workflow's write is audited as the workflow's, not anonymous.
	writes := auditOf(t, data, func(e audit.Entry) bool {
		return e.Action == audit.ActionPush && e.Repository == "quarantine/nginx" && e.Reference == "1.27.1-1"
	})
	if len(writes) == 0 || slices.ContainsFunc(writes, func(e audit.Entry) bool { return e.Actor != workflow.ActorWorkflow }) {
		t.Errorf("the push of quarantine/nginx:1.27.1-1 is audited as %+v; want %s", writes, workflow.ActorWorkflow)
	}

	// Step 5: the patched image has nothing fixable, and nothing is
	// pending from the security suite by testimage's own reading of the
	// mirror.
	r = mustDrydock(t, nil, "scan", "quarantine/nginx:1.27.1-1", "--ignore-unfixed", "--server", srv, "--data", data)
	if !strings.Contains(r.Stdout, "Total: 0 (UNKNOWN: 0, LOW: 0, MEDIUM: 0, HIGH: 0, CRITICAL: 0)") {
		t.Errorf("scan of 1.27.1-1:\n%s", r.Stdout)
	}
	patched, err := remote.Image(ref(t, s.Addr+"/quarantine/nginx:1.27.1-1"))
	if err != nil {
		t.Fatal(err)
	}
	pending, err := ti.PendingUpdatesIn(t.Context(), patched)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range pending {
		if strings.HasSuffix(u.Suite, "-security") {
			t.Errorf("still pending from %s in 1.27.1-1: %s %s -> %s", u.Suite, u.Name, u.Version, u.NewVersion)
		}
	}

	// ACR's list columns from the ledger.
	l := listRuns(t, srv)
	if len(l.Images) != 1 {
		t.Fatalf("list-runs: %+v", l)
	}
	st := l.Images[0]
	if st.Image != "nginx:1.27.1" || st.ScanStatus != workflow.StateSucceeded || st.PatchStatus != workflow.StateSucceeded ||
		st.ScanTask != id+"-s1" || st.PatchTask != id+"-p1" || st.LastPatchedImage != "nginx:1.27.1-1" || st.WorkflowType != "continuouspatchv1" ||
		!slices.Equal(st.Signals, []string{workflow.SignalSecuritySuite}) || st.FixableAfter == nil || *st.FixableAfter != 0 {
		t.Errorf("list-runs row: %+v", st)
	}
	text := mustDrydock(t, nil, "workflow", "list-runs", "--server", srv).Stdout
	if !regexp.MustCompile(`(?m)^nginx:1\.27\.1\s+Succeeded\s+\S+ \S+ UTC\s+`+id+`-s1\s+Succeeded\s+\S+ \S+ UTC\s+`+id+`-p1\s+nginx:1\.27\.1-1\s`).MatchString(text) ||
		!strings.Contains(text, "Total images: 1") {
		t.Errorf("list-runs:\n%s", text)
	}

	// With autoPromote, the gate promotes the patch by itself.
	want := digestOf(t, s, "quarantine/nginx:1.27.1-1")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		desc, err := remote.Head(ref(t, s.Addr+"/live/nginx:1.27.1-1"))
		if err == nil {
			if desc.Digest != want {
				t.Fatalf("live/nginx:1.27.1-1 is %s, quarantine/nginx:1.27.1-1 %s", desc.Digest, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live/nginx:1.27.1-1 did not appear: %v\n%s", err, s.Logs())
		}
		time.Sleep(500 * time.Millisecond)
	}

	// A second run with nothing new decides on 1.27.1-1 and writes no -2.
	r = mustDrydock(t, nil, "workflow", "run", "--follow", "--server", srv)
	if !regexp.MustCompile(`(live|quarantine)/nginx:1\.27\.1-1: 0 fixable; skip: no fixable vulnerability found and nothing pending from the security suite`).MatchString(r.Stdout) {
		t.Errorf("second run:\n%s", r.Stdout)
	}
	if tags := imageTags(tagsOf(t, s, "quarantine/nginx")); !slices.Equal(tags, []string{"1.27.1", "1.27.1-1"}) {
		t.Errorf("tags after the second run: %v", tags)
	}
	l = listRuns(t, srv)
	if st := l.Images[0]; st.PatchStatus != workflow.StateSkipped || st.LastPatchedImage != "nginx:1.27.1-1" || st.ScanTarget != "live/nginx:1.27.1-1" && st.ScanTarget != "quarantine/nginx:1.27.1-1" {
		t.Errorf("list-runs after the second run: %+v", st)
	}
	if l := mustDrydock(t, nil, "workflow", "list-runs", "--status", "skipped", "--json", "--server", srv).Stdout; !strings.Contains(l, `"nginx:1.27.1"`) {
		t.Errorf("--status skipped lacks the image:\n%s", l)
	}
	v := mustDrydock(t, nil, "workflow", "show", "--server", srv).Stdout
	for _, want := range []string{"Schedule:        1d (cron", "Next runs:", "Last run:", "SUCCEEDED", `"tags": ["1.27.1"]`} {
		if !strings.Contains(v, want) {
			t.Errorf("show lacks %q:\n%s", want, v)
		}
	}
	if out := mustDrydock(t, nil, "workflow", "list", "--server", srv).Stdout; !regexp.MustCompile(`(?m)^default\s+1d\s`).MatchString(out) {
		t.Errorf("list:\n%s", out)
	}
	if out := mustDrydock(t, nil, "workflow", "cancel-run", "--server", srv).Stdout; !strings.Contains(out, "no run to cancel") {
		t.Errorf("cancel-run with nothing running:\n%s", out)
	}
	// delete asks first; without an answer nothing is deleted.
	if r := drydock(t, nil, "workflow", "delete", "--server", srv); r.Code == 0 || !strings.Contains(r.Stderr, "[y/N]") {
		t.Errorf("delete without -y: exit %d\n%s", r.Code, r.Stderr)
	}
	mustDrydock(t, nil, "workflow", "show", "--server", srv)
	if out := mustDrydock(t, nil, "workflow", "delete", "-y", "--server", srv).Stdout; !strings.Contains(out, "workflow default deleted") {
		t.Errorf("delete -y:\n%s", out)
	}
	if tags := tagsOf(t, s, "quarantine/nginx"); !slices.Contains(tags, "1.27.1-1") {
		t.Errorf("delete removed the patched image: %v", tags)
	}
}

// tagsOf lists a repository's tags.
func tagsOf(t *testing.T, s *serveProc, repo string) []string {
	t.Helper()
	r, err := name.NewRepository(s.Addr+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tags)
	return tags
}

func runDetail(t *testing.T, srv, id string) workflow.RunDetail {
	t.Helper()
	var d workflow.RunDetail
	r := mustDrydock(t, nil, "workflow", "show-run", id, "--json", "--server", srv)
	if err := json.Unmarshal([]byte(r.Stdout), &d); err != nil {
		t.Fatalf("show-run --json: %v\n%s", err, r.Stdout)
	}
	return d
}

// TestWorkflowSurvivesKill: the server is killed (SIGKILL) while a run
// patches an image. After a restart the run is resumed from its ledger
// and completes: one patch tag, pointing at a complete image, and a
// ledger with one task of each kind.
func TestWorkflowSurvivesKill(t *testing.T) {
	ti := testimage.Require(t, testimage.BookwormNginx)
	data := t.TempDir()
	s := workflowServer(t, data, "")
	srv := s.URL()
	mustDrydock(t, nil, "import", ti.OCIReference(), "--as", "nginx:1.27.1", "--server", srv)
	cp := writeFile(t, "continuouspatching.json", seedConfig)
	id := runID(t, mustDrydock(t, nil, "workflow", "create", "--config", cp, "--schedule", "1d", "--run-immediately", "--server", srv).Stdout)

	// Kill it in the middle of the patch (after the packages are unpacked).
	deadline := time.Now().Add(5 * time.Minute)
	for {
		d := runDetail(t, srv, id)
		killNow := false
		for _, l := range d.Log {
			killNow = killNow || (l.Task == id+"-p1" && strings.HasSuffix(l.Text, ": unpack"))
		}
		if d.Run.State.Finished() {
			t.Fatalf("the run ended before the kill: %s", d.Run.State)
		}
		if killNow {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the patch did not start in 5 minutes:\n%s", s.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.Kill()

	s = workflowServer(t, data, "")
	srv = s.URL()
	r := mustDrydock(t, nil, "workflow", "show-run", id, "--follow", "--server", srv)
	d := runDetail(t, srv, id)
	if d.Run.State != workflow.StateSucceeded {
		t.Fatalf("after the restart the run is %s (%s):\n%s", d.Run.State, d.Run.Error, r.Stdout)
	}
	if !strings.Contains(r.Stdout, "resuming "+d.Run.Tasks[1].Group) {
		t.Errorf("the log does not say the run was resumed:\n%s", r.Stdout)
	}
	kinds := map[workflow.TaskKind]int{}
	for _, tk := range d.Run.Tasks {
		kinds[tk.Kind]++
	}
	if kinds[workflow.TaskTrigger] != 1 || kinds[workflow.TaskScan] != 1 || kinds[workflow.TaskPatch] != 1 {
		t.Errorf("tasks after the restart: %+v", kinds)
	}
	if tags := imageTags(tagsOf(t, s, "quarantine/nginx")); !slices.Equal(tags, []string{"1.27.1", "1.27.1-1"}) {
		t.Fatalf("tags after the restart: %v", tags)
	}
	p := d.Run.ImageTask(workflow.TaskPatch, "nginx:1.27.1")
	if got := digestOf(t, s, "quarantine/nginx:1.27.1-1"); !p.Patch.TagWritten || got.String() != p.Patch.Digest {
		t.Errorf("quarantine/nginx:1.27.1-1 is %s; the ledger says %+v", got, p.Patch)
	}
	// The tag points at a whole image: manifest, config and every layer,
	// each matching its digest.
	img, err := remote.Image(ref(t, s.Addr+"/quarantine/nginx:1.27.1-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("quarantine/nginx:1.27.1-1: %v", err)
	}
}

// imageTags drops the tags of cosign's tag scheme (the server's signatures
// and attestations of its patches) from tags.
func imageTags(tags []string) []string {
	return slices.DeleteFunc(slices.Clone(tags), func(tag string) bool {
		_, ok := imgref.ParseTagScheme(tag)
		return ok
	})
}
