package kube

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/drydock-project/drydock/internal/buildinfo"
)

// ClientOptions say how to reach a cluster.
type ClientOptions struct {
	// Kubeconfig is a kubeconfig file; empty means $KUBECONFIG, then
	// ~/.kube/config, then in-cluster credentials when running in a pod.
	Kubeconfig string
	// Context is a context of the kubeconfig (empty: its current one).
	Context string
}

// RESTConfig resolves the client configuration: kubeconfig or in-cluster
// credentials, as kubectl does.
func RESTConfig(o ClientOptions) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		rules.ExplicitPath = o.Kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.Context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		where := "kubeconfig"
		if o.Kubeconfig != "" {
			where = "kubeconfig " + o.Kubeconfig
		}
		return nil, fmt.Errorf("%s (or in-cluster credentials): %w", where, err)
	}
	cfg.UserAgent = buildinfo.Get().UserAgent()
	return cfg, nil
}

// NewClient returns a clientset for o.
func NewClient(o ClientOptions) (kubernetes.Interface, error) {
	cfg, err := RESTConfig(o)
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, nil
}
