package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/metrics"
)

// Paths of the webhooks on their listener.
const (
	ValidatePath = "/validate"
	MutatePath   = "/mutate"
)

// maxReviewBody bounds an AdmissionReview: the API server sends the object
// and the old object, each at most etcd's 1.5 MiB request limit.
const maxReviewBody = 8 << 20

// Decisions, as counted in metrics.
const (
	DecisionAllowed = "allowed"
	DecisionDenied  = "denied"
	// DecisionWarned: audit-only mode admitted what it would have denied,
	// with warnings.
	DecisionWarned = "warned"
	// DecisionExempt: the namespace is exempt.
	DecisionExempt = "exempt"
	// DecisionSkipped: not an object or operation admission checks.
	DecisionSkipped = "skipped"
	// DecisionPatched: the mutating webhook pinned tags to digests.
	DecisionPatched = "patched"
	DecisionError   = "error"
)

// ActorPrefix prefixes the Kubernetes user in audit entries.
const ActorPrefix = "kube:"

// Publisher sends events; *events.Dispatcher implements it.
type Publisher interface {
	Publish(e events.Event) error
}

// WebhookOptions configure a Webhook.
type WebhookOptions struct {
	// Admitter decides on images; required.
	Admitter *Admitter
	// ExemptNamespaces are admitted without a check.
	ExemptNamespaces []string
	// AuditOnly admits everything and returns warnings (and audit
	// entries) for what would have been denied.
	AuditOnly bool
	// Audit records denials (nil: none); Events announces them.
	Audit   *audit.Log
	Events  Publisher
	Metrics *metrics.Kube
	Log     *slog.Logger
}

// Webhook serves the validating and mutating admission webhooks.
type Webhook struct {
	o      WebhookOptions
	exempt map[string]bool
}

// NewWebhook validates o and returns a Webhook.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	if o.Admitter == nil {
		return nil, errors.New("kube webhook: no admitter")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	w := &Webhook{o: o, exempt: map[string]bool{}}
	for _, ns := range o.ExemptNamespaces {
		w.exempt[ns] = true
	}
	return w, nil
}

// Handler serves ValidatePath, MutatePath and /healthz.
func (w *Webhook) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ValidatePath, func(rw http.ResponseWriter, r *http.Request) { w.serve(rw, r, false) })
	mux.HandleFunc("POST "+MutatePath, func(rw http.ResponseWriter, r *http.Request) { w.serve(rw, r, true) })
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(rw, "ok\n") })
	return mux
}

// reviewError is a review that could not be answered; status is the HTTP
// status to send (the API server then applies the failure policy).
type reviewError struct {
	status int
	err    error
}

func (e *reviewError) Error() string { return e.err.Error() }
func (e *reviewError) Unwrap() error { return e.err }

func (w *Webhook) serve(rw http.ResponseWriter, r *http.Request, mutate bool) {
	start := time.Now()
	name := "validate"
	if mutate {
		name = "mutate"
	}
	review, err := readReview(rw, r)
	var resp *admissionv1.AdmissionResponse
	decision, rules := DecisionError, []string(nil)
	if err == nil {
		if mutate {
			resp, decision, err = w.mutate(r.Context(), review.Request)
		} else {
			resp, decision, rules, err = w.validate(r.Context(), review.Request)
		}
	}
	w.o.Metrics.Admission(name, decision, time.Since(start), rules)
	if err != nil {
		status := http.StatusInternalServerError
		var re *reviewError
		if errors.As(err, &re) {
			status = re.status
		}
		w.o.Log.Error("admission review failed: the API server applies the webhook's failure policy", "webhook", name, "err", err)
		http.Error(rw, err.Error(), status)
		return
	}
	resp.UID = review.Request.UID
	out := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Response: resp}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_, _ = rw.Write(b)
}

func readReview(rw http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, error) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return nil, &reviewError{http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %q: want application/json", ct)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxReviewBody))
	if err != nil {
		return nil, &reviewError{http.StatusRequestEntityTooLarge, fmt.Errorf("reading the admission review: %w", err)}
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, &reviewError{http.StatusBadRequest, fmt.Errorf("decoding the admission review: %w", err)}
	}
	if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
		return nil, &reviewError{http.StatusBadRequest, fmt.Errorf("%s %s: want an admission.k8s.io/v1 AdmissionReview", review.APIVersion, review.Kind)}
	}
	if review.Request == nil || review.Request.UID == "" {
		return nil, &reviewError{http.StatusBadRequest, errors.New("admission review without a request or its uid")}
	}
	return &review, nil
}

// reviewed is what a request asks admission to decide on.
type reviewed struct {
	meta       ObjectMeta
	containers []Container // the containers to check
	what       string      // "Deployment team-a/web"
}

// target reads the containers to check from a request, or says why there
// are none (decision skipped or exempt).
func (w *Webhook) target(req *admissionv1.AdmissionRequest) (*reviewed, string, error) {
	if w.exempt[req.Namespace] {
		return nil, DecisionExempt, nil
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return nil, DecisionSkipped, nil
	}
	if req.SubResource != "" && !(req.Kind.Kind == "Pod" && req.SubResource == "ephemeralcontainers") {
		return nil, DecisionSkipped, nil
	}
	path, ok := PodSpecPath(req.Kind.Group, req.Kind.Kind)
	if !ok {
		return nil, DecisionSkipped, nil
	}
	meta, cs, err := PodContainers(req.Object.Raw, path)
	if err != nil {
		return nil, "", &reviewError{http.StatusBadRequest, fmt.Errorf("%s %s/%s: %w", req.Kind.Kind, req.Namespace, req.Name, err)}
	}
	if meta.Name == "" {
		meta.Name = req.Name
	}
	if meta.Namespace == "" {
		meta.Namespace = req.Namespace
	}
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		// An update is checked for the images it brings: an unchanged
		// image never blocks scaling, labelling or finalizing an object
		// whose image's verdict has since turned (the inventory shows
		// those).
		_, old, err := PodContainers(req.OldObject.Raw, path)
		if err != nil {
			return nil, "", &reviewError{http.StatusBadRequest, fmt.Errorf("old %s %s/%s: %w", req.Kind.Kind, req.Namespace, req.Name, err)}
		}
		had := map[string]bool{}
		for _, c := range old {
			had[c.Image] = true
		}
		cs = slices.DeleteFunc(cs, func(c Container) bool { return had[c.Image] })
	}
	what := req.Kind.Kind + " " + meta.Namespace + "/" + meta.DisplayName()
	if req.Kind.Kind == "Pod" && req.SubResource == "ephemeralcontainers" {
		what += " (ephemeral containers)"
	}
	return &reviewed{meta: meta, containers: cs, what: what}, "", nil
}

func (w *Webhook) validate(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, string, []string, error) {
	t, skip, err := w.target(req)
	if err != nil {
		return nil, DecisionError, nil, err
	}
	if t == nil || len(t.containers) == 0 {
		if skip == "" {
			skip = DecisionAllowed
		}
		return &admissionv1.AdmissionResponse{Allowed: true}, skip, nil, nil
	}
	checked, err := w.o.Admitter.Check(ctx, t.containers)
	if err != nil {
		return nil, DecisionError, nil, fmt.Errorf("%s: %w", t.what, err)
	}
	var vs []Violation
	var rules []string
	for _, c := range checked {
		if c.Violation != nil {
			vs = append(vs, *c.Violation)
			rules = append(rules, c.Violation.Rule)
		}
	}
	if len(vs) == 0 {
		return &admissionv1.AdmissionResponse{Allowed: true}, DecisionAllowed, nil, nil
	}
	dryRun := req.DryRun != nil && *req.DryRun
	if !dryRun {
		w.record(ctx, req, t, checked, vs)
	}
	if w.o.AuditOnly {
		return &admissionv1.AdmissionResponse{Allowed: true, Warnings: warnings(vs)}, DecisionWarned, rules, nil
	}
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
		Message: denial(t.what, vs),
	}}, DecisionDenied, rules, nil
}

// maxListed bounds the violations a denial or the warnings name one by one.
const maxListed = 10

// denial is the message of a denied review.
func denial(what string, vs []Violation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "drydock: %s:", what)
	for i, v := range vs {
		if i == maxListed {
			fmt.Fprintf(&b, " (and %d more)", len(vs)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s [rule %s]", v, v.Rule)
	}
	return b.String()
}

// warnings are audit-only mode's warnings, one per violation; the API
// server shows each to the client (kubectl prints them).
func warnings(vs []Violation) []string {
	var out []string
	for i, v := range vs {
		if i == maxListed {
			out = append(out, fmt.Sprintf("drydock (audit only): and %d more images would be denied", len(vs)-maxListed))
			break
		}
		out = append(out, truncate(fmt.Sprintf("drydock (audit only) would deny: %s [rule %s]", v, v.Rule), 250))
	}
	return out
}

// record audits and announces a denial (or an audit-only warning).
func (w *Webhook) record(ctx context.Context, req *admissionv1.AdmissionRequest, t *reviewed, checked []Checked, vs []Violation) {
	type item struct {
		Kind      string `json:"kind"`
		Container string `json:"container"`
		Image     string `json:"image"`
		Rule      string `json:"rule"`
		Message   string `json:"message"`
	}
	items := make([]item, len(vs))
	for i, v := range vs {
		items[i] = item{v.Container.Kind, v.Container.Name, v.Container.Image, v.Rule, v.Message}
	}
	mode, outcome := "enforce", audit.OutcomeRefused
	if w.o.AuditOnly {
		mode, outcome = "audit", audit.OutcomeOK
	}
	detail := map[string]any{
		"namespace": t.meta.Namespace, "kind": req.Kind.Kind, "name": t.meta.DisplayName(),
		"operation": string(req.Operation), "user": req.UserInfo.Username, "mode": mode, "violations": items,
	}
	if req.SubResource != "" {
		detail["subresource"] = req.SubResource
	}
	first := checkedFor(checked, vs[0].Container)
	if w.o.Audit != nil {
		actor := ActorPrefix + req.UserInfo.Username
		if req.UserInfo.Username == "" {
			actor = ActorPrefix + "unknown"
		}
		e := audit.Entry{Actor: actor, Action: audit.ActionAdmission, Repository: first.Ref.Repository,
			Reference: truncate(vs[0].Container.Image, 512), Digest: first.Digest, Outcome: outcome}
		e.Detail, _ = audit.Detail(detail)
		if _, err := w.o.Audit.Record(context.WithoutCancel(ctx), e); err != nil {
			w.o.Log.Error("audit: recording an admission denial failed", "object", t.what, "err", err)
		}
	}
	if w.o.Events != nil {
		if err := w.o.Events.Publish(events.Event{Type: events.TypeAdmissionDenied, Subject: t.meta.Namespace + "/" + req.Kind.Kind + "/" + t.meta.DisplayName(), Data: detail}); err != nil {
			w.o.Log.Warn("publishing an admission denial", "object", t.what, "err", err)
		}
	}
	w.o.Log.Info("admission denied", "object", t.what, "mode", mode, "user", req.UserInfo.Username, "violations", len(vs), "first", vs[0].String())
}

func checkedFor(cs []Checked, c Container) Checked {
	for _, x := range cs {
		if x.Container == c {
			return x
		}
	}
	return Checked{}
}

// jsonPatchOp is one RFC 6902 operation.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
}

// mutate pins each image of this drydock's live/ that is named by tag to
// the digest the tag resolves to now. Images it cannot pin are left as
// they are for the validating webhook to decide on.
func (w *Webhook) mutate(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, string, error) {
	t, skip, err := w.target(req)
	if err != nil {
		return nil, DecisionError, err
	}
	if t == nil || len(t.containers) == 0 {
		if skip == "" {
			skip = DecisionAllowed
		}
		return &admissionv1.AdmissionResponse{Allowed: true}, skip, nil
	}
	pins, err := w.o.Admitter.Pin(ctx, t.containers)
	if err != nil {
		return nil, DecisionError, fmt.Errorf("%s: %w", t.what, err)
	}
	if len(pins) == 0 {
		return &admissionv1.AdmissionResponse{Allowed: true}, DecisionAllowed, nil
	}
	ops := make([]jsonPatchOp, len(pins))
	for i, p := range pins {
		ops[i] = jsonPatchOp{Op: "replace", Path: p.Container.Path, Value: p.Image}
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return nil, DecisionError, err
	}
	pt := admissionv1.PatchTypeJSONPatch
	w.o.Log.Debug("admission pinned images", "object", t.what, "count", len(pins))
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: patch, PatchType: &pt}, DecisionPatched, nil
}
