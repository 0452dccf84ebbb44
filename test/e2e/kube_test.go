package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/drydock-project/drydock/internal/kube"
	"github.com/drydock-project/drydock/internal/kube/kubetest"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// kubeRegistry is the registry host the test cluster pulls drydock's
// images from (nothing pulls: there are no nodes).
const kubeRegistry = "drydock.test:5000"

// TestKubeRolloutAndAffected is the seed's last step done by drydock: a
// Deployment runs live/nginx:1.27.1; "drydock kube affected" finds its
// pods for a CVE of that image; "drydock rollout nginx" moves it to the
// digest of the patched 1.27.1-1 (the controller manager makes the
// ReplicaSets progress): with no kubelet the wait ends at the time-out
// and the rollout is rolled back; with pods made ready it completes, and
// the CVE the patch fixed no longer reaches the Deployment's pods, while
// one the patch did not fix still does.
func TestKubeRolloutAndAffected(t *testing.T) {
	requireTool(t, "skopeo")
	ti := testimage.Require(t, testimage.BookwormNginx)
	c := kubetest.Shared(t)
	data := t.TempDir()
	realdb.Copy(t, vulndb.DefaultPath(data))
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte("version: v1\nmaxSeverity: CRITICAL\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "gate: {policy: "+policy+"}\n"+
		"kube:\n  registry: [\""+kubeRegistry+"\"]\n  kubeconfig: "+c.Kubeconfig+"\n  cluster: test\n  watch: true\n"+
		"  webhook: {addr: \"127.0.0.1:0\"}\n")
	srv := startServe(t, data, "--config", cfg)
	server := []string{"--server", srv.URL()}
	kc := []string{"--kubeconfig", c.Kubeconfig}

	// The original and its patch, scanned and promoted.
	// The image as old as the vulnerability data expects it for libssl3,
	// so that the patch fixes CVEs whatever the mirror holds today (the
	// test image is built from today's mirror).
	base, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	orig, err := testimage.DowngradedTo(base, map[string]string{"libssl3": "3.0.11-1~deb12u2"})
	if err != nil {
		t.Fatal(err)
	}
	dir := writeLayout(t, orig, ti.Ref)
	mustDrydock(t, nil, append([]string{"import", "oci:" + dir + ":" + ti.Ref, "--as", "nginx:1.27.1"}, server...)...)
	waitVerdict(t, nil, srv.URL(), "quarantine/nginx:1.27.1")
	mustDrydock(t, nil, append([]string{"promote", "quarantine/nginx:1.27.1"}, server...)...)
	report := filepath.Join(t.TempDir(), "trivy.json")
	os.WriteFile(report, []byte(`{"SchemaVersion": 2, "ArtifactName": "nginx", "Results": [
	  {"Target": "x", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
	    {"VulnerabilityID": "CVE-A", "PkgName": "libssl3", "InstalledVersion": "0", "FixedVersion": "3.0.0-1"}]}]}`), 0o644)
	mustDrydock(t, nil, append([]string{"patch", "quarantine/nginx:1.27.1", "-r", report, "-t", "1.27.1-1"}, server...)...)
	waitVerdict(t, nil, srv.URL(), "quarantine/nginx:1.27.1-1")
	mustDrydock(t, nil, append([]string{"promote", "quarantine/nginx:1.27.1-1"}, server...)...)
	patched := digestOf(t, srv, "live/nginx:1.27.1-1").String()
	fixed, kept := fixedAndKept(t, orig, srv.Addr+"/live/nginx:1.27.1-1")
	t.Logf("the patch fixes %s (libssl3); %s is in both images", fixed, kept)

	// The webhooks, as an operator installs them; then the Deployment.
	mustDrydock(t, nil, append(append([]string{"kube", "install-webhook"}, kc...), server...)...)
	t.Cleanup(func() {
		_ = c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), kube.ValidatingConfigName, metav1.DeleteOptions{})
	})
	ns := c.Namespace(t, "rollout")
	ctx := t.Context()
	if err := kubetest.Eventually(ctx, 30*time.Second, func() (bool, error) {
		_, err := c.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: kubeRegistry + "/quarantine/nginx:1.27.1"}}}},
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "drydock:"), nil
	}); err != nil {
		t.Fatalf("the webhook is not called: %v", err)
	}
	original := kubeRegistry + "/live/nginx:1.27.1"
	two := int32(2)
	labels := map[string]string{"app": "web"}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: original}}}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Before the rollout: both CVEs reach the Deployment's two pods.
	for _, id := range []string{fixed, kept} {
		waitAffected(t, server, id, ns, func(pods []string) bool { return len(pods) == 2 })
	}
	images := mustDrydock(t, nil, append([]string{"kube", "images", "--namespace", ns}, server...)...)
	if !strings.Contains(images.Stdout, original) || !strings.Contains(images.Stdout, ns+"/deployment/web") || !strings.Contains(images.Stdout, "pass (promoted)") {
		t.Errorf("kube images:\n%s", images.Stdout)
	}

	// A dry run changes nothing.
	dry := mustDrydock(t, nil, append(append([]string{"rollout", "nginx", "--namespace", ns, "--dry-run"}, kc...), server...)...)
	if !strings.Contains(dry.Stdout, "planned") || deploymentImage(t, c.Client, ns) != original {
		t.Fatalf("dry run:\n%s", dry.Stdout)
	}

	// No kubelet: the new pods never become ready, the wait ends at the
	// time-out, and the rollout is rolled back.
	r := drydock(t, nil, append(append([]string{"rollout", "nginx", "--namespace", ns, "--timeout", "8s"}, kc...), server...)...)
	if r.Code != 1 || !strings.Contains(r.Stdout, "rolled-back") || !strings.Contains(r.Stdout, "not rolled out within 8s") {
		t.Fatalf("rollout without nodes: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "Deployment "+ns+"/web: moving container nginx to 1.27.1-1 ("+patched+")") || !strings.Contains(r.Stderr, "of 2 updated") {
		t.Errorf("progress:\n%s", r.Stderr)
	}
	if got := deploymentImage(t, c.Client, ns); got != original {
		t.Fatalf("after the rollback the Deployment runs %s, want %s", got, original)
	}

	// With a kubelet stand-in making every pod ready, the rollout
	// completes by digest.
	stop := fakeKubelet(t, c.Client, ns)
	r = mustDrydock(t, nil, append(append([]string{"rollout", "nginx", "--namespace", ns, "--timeout", "3m"}, kc...), server...)...)
	stop()
	pinned := kubeRegistry + "/live/nginx@" + patched
	if got := deploymentImage(t, c.Client, ns); got != pinned || !strings.Contains(r.Stdout, "done") {
		t.Fatalf("after the rollout the Deployment runs %s, want %s\n%s", got, pinned, r.Stdout)
	}

	// After it: the fixed CVE reaches none of its pods, the other one all
	// of the new pods.
	waitAffected(t, server, fixed, ns, func(pods []string) bool { return len(pods) == 0 })
	waitAffected(t, server, kept, ns, func(pods []string) bool { return len(pods) == 2 })

	// The server audited both rollouts.
	audit := mustDrydock(t, nil, "audit", "--data", data, "--json")
	if n := strings.Count(audit.Stdout, `"action":"rollout"`); n != 2 {
		t.Errorf("%d rollout audit entries, want 2:\n%s", n, audit.Stdout)
	}
}

// fixedAndKept scans the original and the patched image with the real
// data: a CVE found in the original's libssl3 and not in the patch, and
// one found in both.
func fixedAndKept(t *testing.T, orig v1.Image, patchedRef string) (fixed, kept string) {
	t.Helper()
	db, err := vulndb.Open(realdb.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pimg, err := remote.Image(ref(t, patchedRef))
	if err != nil {
		t.Fatal(err)
	}
	ids := func(img v1.Image) map[string]string {
		rep, err := scan.Scan(t.Context(), img, db, scan.WithClock(func() time.Time { return realdb.DataDate }))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, f := range rep.Findings {
			out[f.VulnerabilityID] = f.PkgName
		}
		return out
	}
	before, after := ids(orig), ids(pimg)
	var fixedIDs, keptIDs []string
	for id, pkg := range before {
		if _, still := after[id]; !still && pkg == "libssl3" {
			fixedIDs = append(fixedIDs, id)
		} else if still {
			keptIDs = append(keptIDs, id)
		}
	}
	if len(fixedIDs) == 0 || len(keptIDs) == 0 {
		t.Fatalf("no CVE fixed by the libssl3 patch (%v) or none kept (%v)", fixedIDs, keptIDs)
	}
	slices.Sort(fixedIDs)
	slices.Sort(keptIDs)
	return fixedIDs[0], keptIDs[0]
}

// waitAffected polls `drydock kube affected ID --json` until the pods of
// Deployment web in ns satisfy ok.
func waitAffected(t *testing.T, server []string, id, ns string, ok func(pods []string) bool) {
	t.Helper()
	var pods []string
	var last string
	deadline := time.Now().Add(time.Minute)
	for {
		r := mustDrydock(t, nil, append([]string{"kube", "affected", id, "--namespace", ns, "--json"}, server...)...)
		var rep kube.AffectedReport
		if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
			t.Fatalf("affected --json: %v\n%s", err, r.Stdout)
		}
		pods = nil
		for _, w := range rep.Workloads {
			if w.Kind == "Deployment" && w.Name == "web" {
				pods = w.Pods
			}
		}
		last = r.Stdout
		if ok(pods) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube affected %s: pods %v after a minute:\n%s", id, pods, last)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func deploymentImage(t *testing.T, c kubernetes.Interface, ns string) string {
	t.Helper()
	d, err := c.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// fakeKubelet stands in for the nodes of namespace ns: every pod is
// marked running and ready, with the digest it names as what it pulled.
// The returned function stops it.
func fakeKubelet(t *testing.T, c kubernetes.Interface, ns string) func() {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err == nil {
				for i := range l.Items {
					p := &l.Items[i]
					if p.Status.Phase == corev1.PodRunning || p.DeletionTimestamp != nil {
						continue
					}
					now := metav1.Now()
					p.Status.Phase = corev1.PodRunning
					p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
						{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
					p.Status.ContainerStatuses = nil
					for _, ct := range p.Spec.Containers {
						id := "" // what a runtime reports: the repository digest
						if strings.Contains(ct.Image, "@") {
							id = ct.Image
						}
						p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: ct.Name, Image: ct.Image,
							ImageID: id, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
					}
					_, _ = c.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}
