package kube

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Names of the webhook configurations and webhooks drydock installs.
const (
	ValidatingConfigName = "drydock-images"
	MutatingConfigName   = "drydock-pin"
	ValidatingWebhook    = "images.drydock.dev"
	MutatingWebhook      = "pin.drydock.dev"
)

// WebhookSettings is what the webhook configurations are made from.
type WebhookSettings struct {
	// URL is the base URL the API server reaches drydock's webhook
	// listener at (https://HOST:PORT); the paths are appended.
	URL string `json:"url"`
	// CABundle verifies the listener's certificate (PEM); empty means the
	// API server's system roots.
	CABundle []byte `json:"caBundle,omitempty"`
	// FailurePolicy is Fail or Ignore.
	FailurePolicy    string   `json:"failurePolicy"`
	TimeoutSeconds   int32    `json:"timeoutSeconds"`
	ExemptNamespaces []string `json:"exemptNamespaces,omitempty"`
	// Mutating asks for the mutating (tag pinning) configuration too.
	Mutating bool `json:"mutating"`
}

// WebhookManifests are the configurations to apply to a cluster.
type WebhookManifests struct {
	Validating *admissionregistrationv1.ValidatingWebhookConfiguration `json:"validating"`
	Mutating   *admissionregistrationv1.MutatingWebhookConfiguration   `json:"mutating,omitempty"`
}

// admissionRules are the objects the webhooks review: pods (and the
// subresource kubectl debug adds ephemeral containers through) and every
// built-in kind with a pod template.
func admissionRules() []admissionregistrationv1.RuleWithOperations {
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	scope := admissionregistrationv1.NamespacedScope
	rule := func(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{Operations: ops, Rule: admissionregistrationv1.Rule{
			APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources, Scope: &scope}}
	}
	return []admissionregistrationv1.RuleWithOperations{
		rule("", "pods", "pods/ephemeralcontainers", "replicationcontrollers", "podtemplates"),
		rule("apps", "deployments", "statefulsets", "daemonsets", "replicasets"),
		rule("batch", "jobs", "cronjobs"),
	}
}

// WebhookConfigurations renders the ValidatingWebhookConfiguration (and
// the MutatingWebhookConfiguration when s.Mutating) for s. Exempt
// namespaces are left out by a namespace selector, so the API server
// does not call drydock for them at all (drydock's own namespace can be
// one: its pods then never wait on itself).
func WebhookConfigurations(s WebhookSettings) (*WebhookManifests, error) {
	u, err := url.Parse(s.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("webhook URL %q: want https://HOST[:PORT]", s.URL)
	}
	base := strings.TrimSuffix(s.URL, "/")
	var fp admissionregistrationv1.FailurePolicyType
	switch s.FailurePolicy {
	case "Fail", "":
		fp = admissionregistrationv1.Fail
	case "Ignore":
		fp = admissionregistrationv1.Ignore
	default:
		return nil, fmt.Errorf("failure policy %q: want Fail or Ignore", s.FailurePolicy)
	}
	timeout := s.TimeoutSeconds
	if timeout == 0 {
		timeout = 5
	}
	sideEffects := admissionregistrationv1.SideEffectClassNoneOnDryRun
	var selector *metav1.LabelSelector
	if len(s.ExemptNamespaces) > 0 {
		ns := slices.Sorted(slices.Values(s.ExemptNamespaces))
		selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: slices.Compact(ns)}}}
	}
	labels := map[string]string{"app.kubernetes.io/managed-by": "drydock"}
	validateURL, mutateURL := base+ValidatePath, base+MutatePath
	m := &WebhookManifests{Validating: &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: ValidatingConfigName, Labels: labels},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    ValidatingWebhook,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &validateURL, CABundle: s.CABundle},
			Rules:                   admissionRules(),
			FailurePolicy:           &fp,
			SideEffects:             &sideEffects,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector:       selector,
		}},
	}}
	if s.Mutating {
		reinvoke := admissionregistrationv1.IfNeededReinvocationPolicy
		m.Mutating = &admissionregistrationv1.MutatingWebhookConfiguration{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
			ObjectMeta: metav1.ObjectMeta{Name: MutatingConfigName, Labels: labels},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{
				Name:                    MutatingWebhook,
				ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &mutateURL, CABundle: s.CABundle},
				Rules:                   admissionRules(),
				FailurePolicy:           &fp,
				SideEffects:             &sideEffects,
				TimeoutSeconds:          &timeout,
				AdmissionReviewVersions: []string{"v1"},
				NamespaceSelector:       selector,
				ReinvocationPolicy:      &reinvoke,
			}},
		}
	}
	return m, nil
}

// Applied says what ApplyWebhooks did to each configuration.
type Applied struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Action string `json:"action"` // created, updated, unchanged-by-dry-run...
}

// ApplyWebhooks creates or updates the configurations in the cluster.
// With dryRun the API server validates them and stores nothing.
func ApplyWebhooks(ctx context.Context, c kubernetes.Interface, m *WebhookManifests, dryRun bool) ([]Applied, error) {
	if m == nil || m.Validating == nil {
		return nil, errors.New("no webhook configuration to apply")
	}
	a, err := applyOne(ctx, c.AdmissionregistrationV1().ValidatingWebhookConfigurations(), m.Validating.DeepCopy(), "ValidatingWebhookConfiguration", dryRun)
	if err != nil {
		return nil, err
	}
	out := []Applied{a}
	if m.Mutating != nil {
		a, err := applyOne(ctx, c.AdmissionregistrationV1().MutatingWebhookConfigurations(), m.Mutating.DeepCopy(), "MutatingWebhookConfiguration", dryRun)
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}

// objectClient is the part of a typed client ApplyWebhooks uses.
type objectClient[T any] interface {
	Get(ctx context.Context, name string, o metav1.GetOptions) (*T, error)
	Create(ctx context.Context, obj *T, o metav1.CreateOptions) (*T, error)
	Update(ctx context.Context, obj *T, o metav1.UpdateOptions) (*T, error)
}

// applyOne creates obj, or updates the stored object of its name to it.
func applyOne[T any, PT interface {
	*T
	metav1.Object
}](ctx context.Context, c objectClient[T], obj PT, kind string, dryRun bool) (Applied, error) {
	var dr []string
	suffix := ""
	if dryRun {
		dr, suffix = []string{metav1.DryRunAll}, " (dry run)"
	}
	old, err := c.Get(ctx, obj.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := c.Create(ctx, (*T)(obj), metav1.CreateOptions{DryRun: dr}); err != nil {
			return Applied{}, fmt.Errorf("creating %s %s: %w", kind, obj.GetName(), err)
		}
		return Applied{obj.GetName(), kind, "created" + suffix}, nil
	case err != nil:
		return Applied{}, fmt.Errorf("reading %s %s: %w", kind, obj.GetName(), err)
	}
	obj.SetResourceVersion(PT(old).GetResourceVersion())
	if _, err := c.Update(ctx, (*T)(obj), metav1.UpdateOptions{DryRun: dr}); err != nil {
		return Applied{}, fmt.Errorf("updating %s %s: %w", kind, obj.GetName(), err)
	}
	return Applied{obj.GetName(), kind, "updated" + suffix}, nil
}
