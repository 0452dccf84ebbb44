package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/events"
)

type recordedEvents struct {
	mu  sync.Mutex
	got []events.Event
}

func (r *recordedEvents) Publish(e events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, e)
	return nil
}

type webhookFixture struct {
	*admitFixture
	srv    *httptest.Server
	audits *audit.Log
	events *recordedEvents
}

func newWebhookFixture(t *testing.T, auditOnly bool) *webhookFixture {
	t.Helper()
	f := &webhookFixture{admitFixture: newAdmitFixture(t, 0), events: &recordedEvents{}}
	var err error
	if f.audits, err = audit.New(audit.NewMemory()); err != nil {
		t.Fatal(err)
	}
	w, err := NewWebhook(WebhookOptions{Admitter: f.a, ExemptNamespaces: []string{"kube-system"}, AuditOnly: auditOnly,
		Audit: f.audits, Events: f.events})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(w.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func podSpec(images ...string) corev1.PodSpec {
	var s corev1.PodSpec
	for i, im := range images {
		s.Containers = append(s.Containers, corev1.Container{Name: "c" + string(rune('0'+i)), Image: im})
	}
	return s
}

type reviewOpt func(*admissionv1.AdmissionRequest)

func withOld(obj runtime.Object) reviewOpt {
	return func(r *admissionv1.AdmissionRequest) {
		r.Operation = admissionv1.Update
		r.OldObject.Raw, _ = json.Marshal(obj)
	}
}

func dryRun(r *admissionv1.AdmissionRequest) { b := true; r.DryRun = &b }

// review sends obj for review to path and returns the response.
func (f *webhookFixture) review(t *testing.T, path, ns string, gvk metav1.GroupVersionKind, obj any, opts ...reviewOpt) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	req := &admissionv1.AdmissionRequest{UID: "uid-1", Kind: gvk, Namespace: ns, Operation: admissionv1.Create,
		Object: runtime.RawExtension{Raw: raw}, UserInfo: authnv1.UserInfo{Username: "alice"}}
	for _, o := range opts {
		o(req)
	}
	body, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
	resp, err := http.Post(f.srv.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("review: %d %s", resp.StatusCode, b)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &out); err != nil || out.Response == nil || out.Response.UID != "uid-1" {
		t.Fatalf("response %s: %v", b, err)
	}
	return out.Response
}

var (
	podKind        = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	deploymentKind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	cronJobKind    = metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}
	configMapKind  = metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
)

func (f *webhookFixture) auditEntries(t *testing.T) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	if err := f.audits.Scan(context.Background(), 0, func(e *audit.Entry) error { out = append(out, *e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWebhookValidate(t *testing.T) {
	f := newWebhookFixture(t, false)
	good := f.host + "/live/nginx:1.27.1"
	pod := func(s corev1.PodSpec) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a"}, Spec: s}
	}
	withInit := podSpec(good)
	withInit.InitContainers = []corev1.Container{{Name: "setup", Image: f.host + "/quarantine/nginx:1.27.1"}}
	withEphemeral := podSpec(good)
	withEphemeral.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: podSpec(good, "evil.io/live/nginx:1.27.1")}}}
	cron := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "team-a"},
		Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: podSpec(f.host + "/live/nginx:bad")}}}}}

	for _, tc := range []struct {
		name    string
		ns      string
		kind    metav1.GroupVersionKind
		obj     any
		opts    []reviewOpt
		allowed bool
		msg     []string
	}{
		{"passing live image", "team-a", podKind, pod(podSpec(good, good)), nil, true, nil},
		{"quarantine image", "team-a", podKind, pod(podSpec(f.host + "/quarantine/nginx:1.27.1")), nil, false,
			[]string{`drydock: Pod team-a/web: container "c0" image "` + f.host + `/quarantine/nginx:1.27.1": repository quarantine/nginx is not in live/`, "[rule live-namespace]"}},
		{"bad init container", "team-a", podKind, pod(withInit), nil, false, []string{`init container "setup"`, "[rule live-namespace]"}},
		{"bad ephemeral container", "team-a", podKind, pod(withEphemeral), nil, false, []string{`ephemeral container "debug" image "busybox": registry docker.io`, "[rule registry]"}},
		{"deployment with an outside image", "team-a", deploymentKind, deploy, nil, false, []string{`Deployment team-a/web: container "c1" image "evil.io/live/nginx:1.27.1"`}},
		{"cronjob with a failing verdict", "team-a", cronJobKind, cron, nil, false, []string{"CronJob team-a/nightly", "has verdict fail now", "[rule verdict]"}},
		{"exempt namespace", "kube-system", podKind, pod(podSpec("evil.io/x")), nil, true, nil},
		{"not a pod or workload", "team-a", configMapKind, map[string]any{"metadata": map[string]any{"name": "x"}}, nil, true, nil},
		{"update keeping an image", "team-a", podKind, pod(podSpec(f.host + "/live/nginx:bad")),
			[]reviewOpt{withOld(pod(podSpec(f.host + "/live/nginx:bad")))}, true, nil},
		{"update bringing an image", "team-a", podKind, pod(podSpec(f.host+"/live/nginx:bad", "evil.io/x")),
			[]reviewOpt{withOld(pod(podSpec(f.host + "/live/nginx:bad")))}, false, []string{`container "c1" image "evil.io/x"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.auditEntries(t))
			r := f.review(t, ValidatePath, tc.ns, tc.kind, tc.obj, tc.opts...)
			if r.Allowed != tc.allowed {
				t.Fatalf("allowed %v, want %v: %+v", r.Allowed, tc.allowed, r.Result)
			}
			after := f.auditEntries(t)
			if tc.allowed {
				if len(after) != before {
					t.Errorf("an admitted review was audited: %+v", after[before:])
				}
				return
			}
			if r.Result == nil || r.Result.Code != http.StatusForbidden {
				t.Fatalf("denial without a 403 status: %+v", r.Result)
			}
			for _, m := range tc.msg {
				if !strings.Contains(r.Result.Message, m) {
					t.Errorf("message %q lacks %q", r.Result.Message, m)
				}
			}
			if len(after) != before+1 {
				t.Fatalf("%d audit entries for a denial", len(after)-before)
			}
			e := after[len(after)-1]
			if e.Action != audit.ActionAdmission || e.Outcome != audit.OutcomeRefused || e.Actor != "kube:alice" || !strings.Contains(string(e.Detail), `"mode":"enforce"`) {
				t.Errorf("audit entry %+v %s", e, e.Detail)
			}
		})
	}
	if n := len(f.events.got); n != 6 {
		t.Errorf("%d events for 6 denials", n)
	}
	for _, e := range f.events.got {
		if e.Type != events.TypeAdmissionDenied || !strings.HasPrefix(e.Subject, "team-a/") {
			t.Errorf("event %+v", e)
		}
	}

	// A dry run is decided the same but leaves no audit entry or event.
	before, evs := len(f.auditEntries(t)), len(f.events.got)
	if r := f.review(t, ValidatePath, "team-a", podKind, pod(podSpec("evil.io/x")), dryRun); r.Allowed {
		t.Error("dry run admitted a bad image")
	}
	if len(f.auditEntries(t)) != before || len(f.events.got) != evs {
		t.Error("a dry run was audited or announced")
	}
}

func TestWebhookAuditOnly(t *testing.T) {
	f := newWebhookFixture(t, true)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a"}, Spec: podSpec("evil.io/live/nginx", f.host+"/live/nginx:1.27.1")}
	r := f.review(t, ValidatePath, "team-a", podKind, pod)
	if !r.Allowed || len(r.Warnings) != 1 || !strings.HasPrefix(r.Warnings[0], `drydock (audit only) would deny: container "c0" image "evil.io/live/nginx": registry evil.io`) {
		t.Fatalf("audit only: allowed %v, warnings %q", r.Allowed, r.Warnings)
	}
	es := f.auditEntries(t)
	if len(es) != 1 || es[0].Outcome != audit.OutcomeOK || !strings.Contains(string(es[0].Detail), `"mode":"audit"`) {
		t.Fatalf("audit entries %+v", es)
	}
}

func TestWebhookMutate(t *testing.T) {
	f := newWebhookFixture(t, false)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: podSpec(f.host+"/live/nginx:1.27.1", "evil.io/x", f.host+"/live/nginx@"+f.bad)}}}
	d.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: f.host + "/live/nginx:1.27.1"}}
	r := f.review(t, MutatePath, "team-a", deploymentKind, d)
	if !r.Allowed || r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("mutate: %+v", r)
	}
	var ops []jsonPatchOp
	if err := json.Unmarshal(r.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	pinned := f.host + "/live/nginx@" + f.good
	want := []jsonPatchOp{
		{"replace", "/spec/template/spec/initContainers/0/image", pinned},
		{"replace", "/spec/template/spec/containers/0/image", pinned},
	}
	if len(ops) != len(want) || ops[0] != want[0] || ops[1] != want[1] {
		t.Fatalf("patch %+v, want %+v", ops, want)
	}
	// Nothing to pin: no patch.
	d.Spec.Template.Spec = podSpec(pinned)
	if r := f.review(t, MutatePath, "team-a", deploymentKind, d); !r.Allowed || r.Patch != nil {
		t.Fatalf("pinned already: %+v", r)
	}
}

func TestWebhookBadRequests(t *testing.T) {
	f := newWebhookFixture(t, false)
	for _, tc := range []struct {
		name, ct, body string
		want           int
	}{
		{"not json", "application/json", "{", http.StatusBadRequest},
		{"wrong type", "text/plain", "{}", http.StatusUnsupportedMediaType},
		{"v1beta1", "application/json", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`, http.StatusBadRequest},
		{"no request", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest},
		{"bad object", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"a","object":{"spec":{"containers":"x"}}}}`, http.StatusBadRequest},
		{"too large", "application/json", `{"x":"` + strings.Repeat("a", maxReviewBody) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		resp, err := http.Post(f.srv.URL+ValidatePath, tc.ct, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}
