package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	godigest "github.com/opencontainers/go-digest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gate/gatetest"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/kube"
	"github.com/drydock-project/drydock/internal/kube/kubetest"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// registryHost is the registry host the clusters of these tests pull
// drydock's images from. Nothing pulls (there are no nodes), so it need
// not resolve; it must only match exactly.
const registryHost = "drydock.test:5000"

const lenientPolicy = "version: v1\nmaxSeverity: CRITICAL\n"

// withKube turns on the admission webhooks (on loopback) for registryHost.
func withKube(mod func(k *config.Kube)) gateOption {
	return withConfig(func(c *config.Config) {
		c.Kube.Registry = []string{registryHost}
		c.Kube.Webhook.Addr = "127.0.0.1:0"
		if mod != nil {
			mod(&c.Kube)
		}
	})
}

// installWebhooks applies the server's webhook configurations to the
// cluster, as `drydock kube install-webhook` does, removes them when the
// test ends, and waits until the API server calls drydock.
func installWebhooks(t testing.TB, g *gateServer, c *kubetest.Cluster, mutating bool) {
	t.Helper()
	var m kube.WebhookManifests
	if code := g.api("GET", fmt.Sprintf("/api/v1/kube/webhook-configurations?mutating=%v", mutating), nil, &m); code != http.StatusOK {
		t.Fatalf("webhook configurations: %d", code)
	}
	if !strings.HasPrefix(*m.Validating.Webhooks[0].ClientConfig.URL, "https://127.0.0.1:") || len(m.Validating.Webhooks[0].ClientConfig.CABundle) == 0 {
		t.Fatalf("webhook client config %+v", m.Validating.Webhooks[0].ClientConfig)
	}
	if _, err := kube.ApplyWebhooks(t.Context(), c.Client, &m, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, kube.ValidatingConfigName, metav1.DeleteOptions{})
		_ = c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, kube.MutatingConfigName, metav1.DeleteOptions{})
	})
	// Registration is asynchronous: a dry-run create of a pod that only
	// drydock refuses (or, audit-only, warns about) shows it is on.
	ns := c.Namespace(t, "probe")
	warnings := &warningLog{}
	probe := clientWithWarnings(t, c, warnings)
	err := kubetest.Eventually(t.Context(), 30*time.Second, func() (bool, error) {
		_, err := probe.CoreV1().Pods(ns).Create(t.Context(), pod("probe", "evil.example/x:1"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return (err != nil && strings.Contains(err.Error(), "drydock:")) || warnings.has("drydock (audit only)"), nil
	})
	if err != nil {
		t.Fatalf("the API server never called drydock's webhook: %v\n%s", err, c.Logs())
	}
}

// warningLog collects the warnings the API server sends to a client.
type warningLog struct {
	mu   sync.Mutex
	list []string
}

func (w *warningLog) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warningLog) has(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, x := range w.list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

func clientWithWarnings(t testing.TB, c *kubetest.Cluster, w rest.WarningHandler) kubernetes.Interface {
	cfg := rest.CopyConfig(c.Config)
	cfg.WarningHandler = w
	cl, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func pod(name string, images ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for i, im := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("app%d", i), Image: im})
	}
	return p
}

func deploymentOf(name string, replicas int32, images ...string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod(name, images...).Spec}}}
}

// promoteLive pushes a test image as quarantine/REPO:TAG, waits for its
// verdict and promotes it to live/REPO:TAG; it returns the digest.
func promoteLive(t testing.TB, g *gateServer, ti *testimage.Image, repoTag string) string {
	t.Helper()
	d := g.push(ti, "quarantine/"+repoTag)
	if st := g.waitScanned("quarantine/" + repoTag); !st.Verdict.Promotable() {
		t.Fatalf("%s: verdict %+v", repoTag, st.Verdict)
	}
	if code := g.api("POST", "/api/v1/promote", map[string]string{"source": "quarantine/" + repoTag}, nil); code != http.StatusOK {
		t.Fatalf("promote %s: %d", repoTag, code)
	}
	return d
}

// denial returns the API server's message for a refused create, or fails.
func denial(t *testing.T, err error, what string) string {
	t.Helper()
	if err == nil {
		t.Fatalf("%s was admitted", what)
	}
	if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
		t.Fatalf("%s: %v (want a denial)", what, err)
	}
	return err.Error()
}

// TestKubeAdmission: against a real API server, the validating webhook
// admits only this drydock's live/ images, whatever kind of object or
// container names them, and says which container, image and rule.
func TestKubeAdmission(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	c := kubetest.Shared(t)
	g := startGateServer(t, lenientPolicy, withKube(nil))
	digest := promoteLive(t, g, ti, "nginx:1.27.1")
	installWebhooks(t, g, c, false)
	ns := c.Namespace(t, "admission")
	ctx := t.Context()
	pods := c.Client.CoreV1().Pods(ns)
	live := registryHost + "/live/nginx:1.27.1"

	for _, tc := range []struct {
		name, image, rule, msg string
	}{
		{"quarantine", registryHost + "/quarantine/nginx:1.27.1", "live-namespace", "repository quarantine/nginx is not in live/"},
		{"outside", "docker.io/library/nginx:1.27.1", "registry", "registry docker.io is not this drydock"},
		{"another registry with /live/ in its path", "evil.example/drydock/live/nginx:1.27.1", "registry", "registry evil.example is not this drydock"},
		{"another registry with live/ first", "evil.example/live/nginx:1.27.1", "registry", "registry evil.example is not"},
		{"look-alike host", "drydock.test.evil.example:5000/live/nginx:1.27.1", "registry", "registry drydock.test.evil.example:5000 is not"},
		{"look-alike port", "drydock.test:50000/live/nginx:1.27.1", "registry", "registry drydock.test:50000 is not"},
		{"unknown tag", registryHost + "/live/nginx:9.9", "not-in-live", "live/nginx:9.9 is not in this drydock's live/ namespace"},
		{"unknown digest", registryHost + "/live/nginx@sha256:" + strings.Repeat("ab", 32), "not-in-live", "is not in this drydock's live/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pods.Create(ctx, pod("p", live, tc.image), metav1.CreateOptions{})
			msg := denial(t, err, tc.image)
			for _, want := range []string{`container "app1" image "` + tc.image + `"`, tc.msg, "[rule " + tc.rule + "]", "Pod " + ns + "/p"} {
				if !strings.Contains(msg, want) {
					t.Errorf("denial %q lacks %q", msg, want)
				}
			}
			if strings.Contains(msg, `"app0"`) {
				t.Errorf("the passing container is named in the denial: %q", msg)
			}
			// The same image in a Deployment's template.
			_, err = c.Client.AppsV1().Deployments(ns).Create(ctx, deploymentOf("d", 1, tc.image), metav1.CreateOptions{})
			if msg := denial(t, err, "Deployment with "+tc.image); !strings.Contains(msg, "Deployment "+ns+"/d") || !strings.Contains(msg, tc.msg) {
				t.Errorf("deployment denial %q", msg)
			}
		})
	}

	// Passing live/ images, by tag and by digest, in a pod and in a
	// Deployment whose pods the controller creates.
	if _, err := pods.Create(ctx, pod("ok", live, registryHost+"/live/nginx@"+digest), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a passing live/ image was denied: %v", err)
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, deploymentOf("web", 2, live), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a Deployment of a passing live/ image was denied: %v", err)
	}
	if err := kubetest.Eventually(ctx, 30*time.Second, func() (bool, error) {
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		return err == nil && len(l.Items) == 2, err
	}); err != nil {
		t.Fatalf("the Deployment's pods were not created: %v", err)
	}

	// A bad init container.
	p := pod("init", live)
	p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: registryHost + "/quarantine/nginx:1.27.1"}}
	if msg := denial(t, func() error { _, err := pods.Create(ctx, p, metav1.CreateOptions{}); return err }(), "bad init container"); !strings.Contains(msg, `init container "setup" image "`+registryHost+`/quarantine/nginx:1.27.1"`) {
		t.Errorf("init container denial %q", msg)
	}

	// Ephemeral containers come through their own subresource (kubectl
	// debug): a bad one is denied, a live/ one admitted.
	addEphemeral := func(name, image string) error {
		cur, err := pods.Get(ctx, "ok", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.EphemeralContainers = append(cur.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: name, Image: image}})
		_, err = pods.UpdateEphemeralContainers(ctx, "ok", cur, metav1.UpdateOptions{})
		return err
	}
	if msg := denial(t, addEphemeral("debug", "docker.io/library/busybox:1"), "bad ephemeral container"); !strings.Contains(msg, `ephemeral container "debug" image "docker.io/library/busybox:1": registry docker.io`) ||
		!strings.Contains(msg, "(ephemeral containers)") {
		t.Errorf("ephemeral denial %q", msg)
	}
	if err := addEphemeral("debug2", live); err != nil {
		t.Errorf("a live/ ephemeral container was denied: %v", err)
	}

	// An exempt namespace (kube-system) is never sent to drydock.
	sys := c.Client.CoreV1().Pods("kube-system")
	if _, err := sys.Create(ctx, pod("exempt-"+ns, "docker.io/library/nginx:1.27.1"), metav1.CreateOptions{}); err != nil {
		t.Errorf("a pod in kube-system was denied: %v", err)
	}
	t.Cleanup(func() { _ = sys.Delete(context.Background(), "exempt-"+ns, metav1.DeleteOptions{}) })

	// Denials are audited (dry runs are not), and every decision counted.
	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`drydock_kube_admission_violations_total{rule="registry"}`,
		`drydock_kube_admission_violations_total{rule="live-namespace"}`,
		`drydock_kube_admission_violations_total{rule="not-in-live"}`,
		`drydock_kube_admission_decisions_total{decision="denied",webhook="validate"}`,
		`drydock_kube_admission_decisions_total{decision="allowed",webhook="validate"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	entries := g.auditEntries("admission")
	if len(entries) < 18 {
		t.Errorf("%d admission audit entries for at least 18 denials", len(entries))
	}
	for _, e := range entries {
		if e.Actor != "kube:admin" || e.Outcome != "refused" {
			t.Errorf("audit entry %+v", e)
			break
		}
	}
}

// TestKubeAdmissionAuditOnly: in audit-only mode a bad image is admitted,
// and the client gets the warning that names it.
func TestKubeAdmissionAuditOnly(t *testing.T) {
	c := kubetest.Shared(t)
	realdb.Path(t)
	g := startGateServer(t, lenientPolicy, withKube(func(k *config.Kube) { k.Webhook.Mode = "audit" }))
	installWebhooks(t, g, c, false)
	ns := c.Namespace(t, "auditonly")
	warnings := &warningLog{}
	cl := clientWithWarnings(t, c, warnings)
	if _, err := cl.CoreV1().Pods(ns).Create(t.Context(), pod("p", "docker.io/library/nginx:1.27.1"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("audit-only mode denied: %v", err)
	}
	if !warnings.has(`drydock (audit only) would deny: container "app0" image "docker.io/library/nginx:1.27.1": registry docker.io is not this drydock`) {
		t.Errorf("warnings %q", warnings.list)
	}
	if es := g.auditEntries("admission"); len(es) != 1 || es[0].Outcome != "ok" {
		t.Errorf("audit entries %+v", es)
	}
}

// TestKubeVerdictTurnsFail: a live/ image admitted while an exception
// exempts its findings is denied by the very next admission once the
// exception has expired on the gate's clock (the verdict cache keys on
// that clock too), and admitted again when its verdict passes.
func TestKubeVerdictTurnsFail(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	c := kubetest.Shared(t)
	g := startGateServer(t, strictPolicy, withKube(nil))
	g.push(ti, "quarantine/app:1")
	st := g.waitScanned("quarantine/app:1")
	ids := gatetest.FailingCVEs(st.Verdict)
	if st.Verdict.State != gate.StateFail || len(ids) == 0 {
		t.Fatalf("strict policy: %+v", st.Verdict)
	}
	expires := realdb.DataDate.Add(30 * 24 * time.Hour)
	g.vex("app.json", "quarantine/app", ids, expires)
	var p gatekeeper.Promotion
	if code := g.api("POST", "/api/v1/promote", map[string]string{"source": "quarantine/app:1"}, &p); code != http.StatusOK {
		t.Fatalf("promote: %d", code)
	}
	installWebhooks(t, g, c, false)
	ns := c.Namespace(t, "verdict")
	pods := c.Client.CoreV1().Pods(ns)
	image := registryHost + "/live/app:1"
	if _, err := pods.Create(t.Context(), pod("before", image), metav1.CreateOptions{}); err != nil {
		t.Fatalf("the exempt image was denied: %v", err)
	}

	g.clock.Set(expires.Add(time.Hour))
	start := time.Now()
	_, err := pods.Create(t.Context(), pod("after", image), metav1.CreateOptions{})
	msg := denial(t, err, "the image whose exceptions expired")
	t.Logf("denied %s after the clock passed the expiry", time.Since(start).Round(time.Millisecond))
	for _, want := range []string{`container "app0" image "` + image + `"`, "has verdict fail now", "[rule verdict]", p.Digest} {
		if !strings.Contains(msg, want) {
			t.Errorf("denial %q lacks %q", msg, want)
		}
	}
	// The running pod is not touched, and updating it without a new image
	// is still allowed.
	cur, err := pods.Get(t.Context(), "before", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Labels = map[string]string{"x": "y"}
	if _, err := pods.Update(t.Context(), cur, metav1.UpdateOptions{}); err != nil {
		t.Errorf("relabelling a pod whose image's verdict turned was denied: %v", err)
	}
	// A new exception: admitted again.
	g.vex("app-renewed.json", "quarantine/app", ids, expires.Add(365*24*time.Hour))
	if err := kubetest.Eventually(t.Context(), 5*time.Second, func() (bool, error) {
		_, err := pods.Create(t.Context(), pod("again", image), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil, nil
	}); err != nil {
		t.Errorf("not admitted again with a new exception: %v", err)
	}
}

// TestKubeMutationPins: the mutating webhook pins a tag to the digest it
// names now, in the object the API server stores, for pods and for pod
// templates.
func TestKubeMutationPins(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	c := kubetest.Shared(t)
	g := startGateServer(t, lenientPolicy, withKube(func(k *config.Kube) { k.Webhook.Mutate = true }))
	digest := promoteLive(t, g, ti, "nginx:1.27.1-1")
	installWebhooks(t, g, c, true)
	ns := c.Namespace(t, "mutate")
	ctx := t.Context()
	pinned := registryHost + "/live/nginx@" + digest
	got, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod("p", registryHost+"/live/nginx:1.27.1-1", "docker.io/library/busybox:1"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err == nil {
		t.Fatalf("an outside image was admitted: %+v", got.Spec.Containers)
	}
	d, err := c.Client.AppsV1().Deployments(ns).Create(ctx, deploymentOf("web", 1, registryHost+"/live/nginx:1.27.1-1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := c.Client.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if im := stored.Spec.Template.Spec.Containers[0].Image; im != pinned {
		t.Fatalf("stored Deployment image %q, want %q", im, pinned)
	}
	p, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod("p", registryHost+"/live/nginx:1.27.1-1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.Containers[0].Image != pinned {
		t.Errorf("stored pod image %q, want %q", p.Spec.Containers[0].Image, pinned)
	}
}

// auditEntries returns the audit log's entries of one action.
func (g *gateServer) auditEntries(action string) []audit.Entry {
	g.t.Helper()
	l, closeLog, err := audit.OpenFile(audit.DefaultPath(g.data))
	if err != nil {
		g.t.Fatal(err)
	}
	defer closeLog()
	var out []audit.Entry
	if err := l.Scan(context.Background(), 0, func(e *audit.Entry) error {
		if string(e.Action) == action {
			out = append(out, *e)
		}
		return nil
	}); err != nil {
		g.t.Fatal(err)
	}
	return out
}

// TestKubeWorkflowRollout: a workflow with the rollout option has the
// server roll its promoted patch tag out by itself, with its own cluster
// credentials: the Deployment running the original moves to the patch's
// digest (the controller manager starts a ReplicaSet of it); with no nodes
// the rollout times out and is rolled back, audited as the workflow's.
func TestKubeWorkflowRollout(t *testing.T) {
	orig := testimage.Require(t, testimage.Bookworm)
	patch := testimage.Require(t, testimage.BookwormNginx) // any other image: the planner does not look inside
	c := kubetest.Shared(t)
	g := startGateServer(t, lenientPolicy, withKube(func(k *config.Kube) {
		k.Kubeconfig = c.Kubeconfig
		k.RolloutTimeout = config.Duration(3 * time.Second)
	}))
	promoteLive(t, g, orig, "app:1.0")
	ns := c.Namespace(t, "wfrollout")
	ctx := t.Context()
	original := registryHost + "/live/app:1.0"
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, deploymentOf("web", 1, original), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := `{"version":"v1","tag-convention":"incremental","repositories":[{"repository":"app","tags":["1.0"],"enabled":true}]}`
	if code := g.api("POST", "/api/v1/workflows", map[string]any{"name": "app-patches", "config": cfg, "schedule": "1d", "rollout": true}, nil); code != http.StatusCreated {
		t.Fatalf("create workflow: %d", code)
	}
	// The patch tag a run would write, promoted.
	patched := promoteLive(t, g, patch, "app:1.0-1")
	pinned := registryHost + "/live/app@" + patched
	if err := kubetest.Eventually(ctx, 60*time.Second, func() (bool, error) {
		rs, err := c.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, r := range rs.Items {
			if r.Spec.Template.Spec.Containers[0].Image == pinned {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("no ReplicaSet of %s: the promotion was not rolled out: %v\n%s", pinned, err, c.Logs())
	}
	// No kubelet: timed out, rolled back, audited as the workflow's.
	var rollouts []audit.Entry
	if err := kubetest.Eventually(ctx, 60*time.Second, func() (bool, error) {
		rollouts = g.auditEntries(string(audit.ActionRollout))
		return len(rollouts) > 0, nil
	}); err != nil {
		t.Fatalf("no rollout in the audit log: %v", err)
	}
	if e := rollouts[0]; e.Actor != "workflow:app-patches" || e.Outcome != audit.OutcomeError || e.Repository != "live/app" || e.Reference != "1.0-1" {
		t.Errorf("rollout audit entry %+v", e)
	}
	d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != original {
		t.Errorf("after the rollback the Deployment runs %s, want %s", got, original)
	}
}

// TestKubeAdmissionRequirePromotion: with kube.webhook.requirePromotion,
// a live/ image the gate promoted (and so signed) is admitted, while the
// same digest copied into another live/ repository by the registry's own
// write path, around the gate's promotion (so without drydock's promotion
// attestation there), is denied with the container, the image and the
// rule, though its verdict passes.
func TestKubeAdmissionRequirePromotion(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	c := kubetest.Shared(t)
	g := startGateServer(t, lenientPolicy, withKube(func(k *config.Kube) { k.Webhook.RequirePromotion = true }))
	d := promoteLive(t, g, ti, "nginx:1.27.1")
	ctx := t.Context()
	if _, err := g.srv.Registry().Copy(ctx, "quarantine/nginx", "live/sneaky", godigest.Digest(d), registry.CopyOptions{Tags: []string{"1"}}); err != nil {
		t.Fatal(err)
	}
	installWebhooks(t, g, c, false)
	ns := c.Namespace(t, "promotion")
	pods := c.Client.CoreV1().Pods(ns)

	for _, im := range []string{registryHost + "/live/nginx:1.27.1", registryHost + "/live/nginx@" + d} {
		if _, err := pods.Create(ctx, pod("ok", im), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("a promoted live/ image (%s) was denied: %v", im, err)
		}
	}
	sneaky := registryHost + "/live/sneaky:1"
	_, err := pods.Create(ctx, pod("p", registryHost+"/live/nginx:1.27.1", sneaky), metav1.CreateOptions{})
	msg := denial(t, err, sneaky)
	for _, want := range []string{`container "app1" image "` + sneaky + `"`, "digest " + d + " was not promoted by this drydock",
		"no valid promotion attestation signed by its key", "[rule promotion-attestation]"} {
		if !strings.Contains(msg, want) {
			t.Errorf("denial %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, `"app0"`) {
		t.Errorf("the promoted container is named in the denial: %q", msg)
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, deploymentOf("d", 1, sneaky), metav1.CreateOptions{}); !strings.Contains(denial(t, err, "Deployment of "+sneaky), "[rule promotion-attestation]") {
		t.Errorf("deployment denial %v", err)
	}
}
