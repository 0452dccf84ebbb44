package gc

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/kube"
)

// TestRunningWorkloadKeptFromInventory: with the Kubernetes inventory
// (its SQL store on the shared database, filled directly as the watcher
// would) wired as the service's RunningDigests, a live/ image a pod runs
// survives both retention (its tag, selected by keepDays, is protected)
// and the collection (untagged, it stays whole), while the same kinds of
// image that no pod runs are deleted.
func TestRunningWorkloadKeptFromInventory(t *testing.T) {
	tg := dbtest.SQLite(t)
	s := newSetup(t, tg)
	inv, err := kube.OpenInventory(t.Context(), tg.Opener(t))
	if err != nil {
		t.Fatal(err)
	}
	const repo = "live/app"
	runsTagged := s.pushImage(repo, "1.0", 1, nil, nil)
	idleTagged := s.pushImage(repo, "0.9", 1, nil, nil)
	runsUntagged := s.pushImage(repo, "tmp-a", 1, nil, nil)
	idleUntagged := s.pushImage(repo, "tmp-b", 1, nil, nil)
	for _, tag := range []string{"tmp-a", "tmp-b"} {
		if code, _, body := s.do("DELETE", "/v2/"+repo+"/manifests/"+tag, nil); code != http.StatusAccepted {
			t.Fatalf("untag %s: %d %s", tag, code, body)
		}
	}
	for i, img := range []image{runsTagged, runsUntagged} {
		err := inv.PutPod(t.Context(), kube.PodRecord{Cluster: "prod", Namespace: "web", Name: "app-" + string(rune('a'+i)), UID: "uid-" + string(rune('a'+i)),
			Workload: kube.Workload{Kind: "Deployment", Name: "app"}, ObservedAt: time.Now(),
			Containers: []kube.RunningContainer{{Kind: "container", Name: "app", Image: "drydock.example/" + repo + "@" + img.desc.Digest.String(),
				Repository: repo, Digest: img.desc.Digest.String(), DigestFrom: kube.FromStatus}}})
		if err != nil {
			t.Fatal(err)
		}
	}

	policy := config.RetentionPolicy{Repositories: []string{"live/**"}, KeepDays: intp(30)}
	svc, _ := newService(t, s, tg, 100, Guards{RunningDigests: InventoryDigests(inv)}, policy)
	run := runToEnd(t, svc, Request{Actor: "alice"})

	if got := deletedTags(run.Report.Retention); strings.Join(got, " ") != repo+":0.9" {
		t.Errorf("retention deleted %v, want only %s:0.9 (1.0 runs)", got, repo)
	}
	protected := false
	for _, p := range run.Report.Retention.Protected {
		protected = protected || (p.Tag == "1.0" && strings.Contains(p.Reason, "running"))
	}
	if !protected {
		t.Errorf("%s:1.0 not protected as running: %+v", repo, run.Report.Retention.Protected)
	}
	s.mustPull(repo, "1.0", runsTagged)
	s.mustPull(repo, runsUntagged.desc.Digest.String(), runsUntagged)
	for _, img := range []image{idleTagged, idleUntagged} {
		if code := s.status("/v2/" + repo + "/manifests/" + img.desc.Digest.String()); code != http.StatusNotFound {
			t.Errorf("idle image %s: %d, want 404 (collected)", img.desc.Digest, code)
		}
	}
	deleted := deletedBlobs(run.Report.Collection)
	for _, b := range runsUntagged.blobs {
		if deleted[b.Digest] {
			t.Errorf("blob %s of the running untagged image collected", b.Digest)
		}
	}
}
