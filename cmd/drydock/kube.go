package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/drydock-project/drydock/internal/kube"
)

// kubeFlags are the flags of the commands that talk to a cluster.
type kubeFlags struct {
	kubeconfig, context string
}

func (k *kubeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, ~/.kube/config, or in-cluster credentials)")
	cmd.Flags().StringVar(&k.context, "context", "", "kubeconfig context (default: its current one)")
}

func (k *kubeFlags) options() kube.ClientOptions {
	return kube.ClientOptions{Kubeconfig: k.kubeconfig, Context: k.context}
}

func newKubeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kube",
		Short: "Kubernetes: admission webhooks, running images, exposure to a CVE",
		Long: `The kube commands work with drydock's Kubernetes side (see "drydock serve"
and the kube.* configuration): install the admission webhooks that let only
this drydock's live/ images run, list the images clusters run with their
verdicts, and answer which running workloads a vulnerability reaches.

The images and affected commands read the server's running-image inventory
(kube.watch: true). They need the promote role on live.`,
	}
	cmd.AddCommand(newKubeImagesCmd(g), newKubeAffectedCmd(g), newKubeInstallWebhookCmd(g))
	return cmd
}

func newKubeImagesCmd(g *globals) *cobra.Command {
	var (
		server            string
		asJSON            bool
		cluster, namespac string
	)
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List the images running in the watched clusters, with their verdicts",
		Long: `Images lists every digest the server's inventory has seen running, with the
references pods name it by, the gate's verdict on it (unknown: not an image
of this drydock), and the workloads and pods that run it. An image whose
digest is not known yet (named by tag, from another registry, before the
kubelet reports what it pulled) is listed by reference at the end.

--json prints the API's answer: {"images": [{"digest", "images", "verdict",
"promoted", "pods", "workloads": [{"cluster", "namespace", "kind", "name",
"pods"}]}]}.`,
		Example: `  drydock kube images
  drydock kube images --namespace team-a --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			var rep kube.ImagesReport
			if err := c.do(cmd.Context(), "GET", "/api/v1/kube/images?"+filterQuery(cluster, namespac).Encode(), nil, &rep); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, rep)
			}
			return writeRunningImages(g.stdout, rep.Images)
		},
	}
	addServerFlag(cmd.Flags(), &server)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVarP(&namespac, "namespace", "n", "", "only this namespace")
	cmd.Flags().StringVar(&cluster, "cluster", "", "only this cluster (the server's kube.cluster names)")
	return cmd
}

func filterQuery(cluster, namespace string) url.Values {
	q := url.Values{}
	if cluster != "" {
		q.Set("cluster", cluster)
	}
	if namespace != "" {
		q.Set("namespace", namespace)
	}
	return q
}

func writeRunningImages(w io.Writer, images []kube.RunningImage) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DIGEST\tVERDICT\tPODS\tWORKLOADS\tIMAGE")
	for _, im := range images {
		verdict := string(im.Verdict)
		if im.Promoted {
			verdict += " (promoted)"
		}
		var ws []string
		for _, wl := range im.Workloads {
			ws = append(ws, workloadName(wl))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", orDash(shortDigest(im.Digest)), verdict, im.Pods, strings.Join(ws, ","), strings.Join(im.Images, ","))
	}
	return tw.Flush()
}

func workloadName(w kube.WorkloadRef) string {
	s := w.Namespace + "/" + strings.ToLower(w.Kind) + "/" + w.Name
	if w.Cluster != "" && w.Cluster != "default" {
		s = w.Cluster + ":" + s
	}
	return s
}

func newKubeAffectedCmd(g *globals) *cobra.Command {
	var (
		server             string
		asJSON             bool
		cluster, namespace string
		exitCode           int
	)
	cmd := &cobra.Command{
		Use:   "affected VULNERABILITY-ID",
		Short: "Which running workloads are exposed to a vulnerability",
		Long: `Affected answers the first question when a CVE lands: which running workloads
are exposed to it. It reads the server's running-image inventory and, for each
digest pods run, the gate's stored scan of that digest (one scan per digest,
however many pods run it), and lists the workloads and pods with the finding:
package, installed and fixed version, severity, and the platform for an index.

Images the answer cannot speak for are listed after it: digests without a
stored scan (images from other registries, failed scans) and containers whose
digest is not known. "drydock kube images" shows them all.

--json prints the API's answer: {"vulnerability", "workloads": [{"cluster",
"namespace", "kind", "name", "pods", "images": [{"digest", "images",
"findings": [{"platform", "package", "installedVersion", "fixedVersion",
"severity", "status"}]}]}], "pods", "runningDigests", "scannedDigests",
"unscanned": [...]}.`,
		Example: `  drydock kube affected CVE-2023-4911
  drydock kube affected CVE-2023-4911 --namespace team-a --json
  # in a script: exit 3 when any running workload is exposed
  drydock kube affected CVE-2023-4911 --exit-code 3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			q := filterQuery(cluster, namespace)
			q.Set("id", args[0])
			var rep kube.AffectedReport
			if err := c.do(cmd.Context(), "GET", "/api/v1/kube/affected?"+q.Encode(), nil, &rep); err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(g.stdout, rep); err != nil {
					return err
				}
			} else if err := writeAffected(g.stdout, &rep); err != nil {
				return err
			}
			if exitCode != 0 && rep.Pods > 0 {
				return &exitError{code: exitCode, err: fmt.Errorf("%d running pods are exposed to %s", rep.Pods, rep.Vulnerability)}
			}
			return nil
		},
	}
	addServerFlag(cmd.Flags(), &server)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "only this namespace")
	cmd.Flags().StringVar(&cluster, "cluster", "", "only this cluster")
	cmd.Flags().IntVar(&exitCode, "exit-code", 0, "exit with this code when any pod is exposed")
	return cmd
}

func writeAffected(w io.Writer, rep *kube.AffectedReport) error {
	if len(rep.Workloads) == 0 {
		fmt.Fprintf(w, "No running workload is exposed to %s (%d of %d running digests scanned).\n", rep.Vulnerability, rep.ScannedDigests, rep.RunningDigests)
	} else {
		fmt.Fprintf(w, "%s: %d pods in %d workloads (%d of %d running digests scanned)\n", rep.Vulnerability, rep.Pods, len(rep.Workloads), rep.ScannedDigests, rep.RunningDigests)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKLOAD\tPODS\tDIGEST\tPACKAGE\tINSTALLED\tFIXED\tSEVERITY")
		for _, wl := range rep.Workloads {
			for _, im := range wl.Images {
				for _, f := range im.Findings {
					pkg := f.Package
					if f.Platform != "" {
						pkg += " (" + f.Platform + ")"
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", workloadName(wl.WorkloadRef), len(wl.Pods), shortDigest(im.Digest), pkg,
						f.InstalledVersion, orDash(f.FixedVersion), f.Severity)
				}
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(rep.Unscanned) > 0 {
		pods := 0
		for _, im := range rep.Unscanned {
			pods += im.Pods
		}
		fmt.Fprintf(w, "\nNot covered: %d running images (%d pods) have no stored scan or no known digest:\n", len(rep.Unscanned), pods)
		for _, im := range rep.Unscanned {
			fmt.Fprintf(w, "  %s  %s (%d pods)\n", orDash(shortDigest(im.Digest)), strings.Join(im.Images, ","), im.Pods)
		}
	}
	return nil
}

func newKubeInstallWebhookCmd(g *globals) *cobra.Command {
	var (
		server   string
		kf       kubeFlags
		dryRun   bool
		mutating bool
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "install-webhook",
		Short: "Print or apply the admission webhook configurations",
		Long: `Install-webhook asks the drydock server for its admission webhook
configurations (the ValidatingWebhookConfiguration "drydock-images", and with
--mutating, or kube.webhook.mutate in the server's configuration, the
MutatingWebhookConfiguration "drydock-pin"): the URL the API server calls
(kube.webhook.url), the CA bundle of the webhook's certificate, the failure
policy, the time-out and the exempt namespaces (left out by a namespace
selector, so the API server never calls drydock for them).

Without --dry-run it creates or updates them in the cluster of --kubeconfig
(needs rights on admissionregistration.k8s.io); with --dry-run it prints them
as YAML (or JSON) for kubectl apply -f - or a GitOps repository.

Failure policy: Fail (the default) denies pods while the webhook cannot be
reached; Ignore admits them. Exempt drydock's own namespace (and
kube-system, the default) so the cluster can always start drydock itself.`,
		Example: `  drydock kube install-webhook --dry-run > drydock-webhooks.yaml
  drydock kube install-webhook --kubeconfig ~/.kube/prod --mutating`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			var m kube.WebhookManifests
			if err := c.do(cmd.Context(), "GET", fmt.Sprintf("/api/v1/kube/webhook-configurations?mutating=%v", mutating), nil, &m); err != nil {
				return err
			}
			if dryRun {
				if asJSON {
					return writeJSON(g.stdout, m)
				}
				return writeManifestsYAML(g.stdout, &m)
			}
			return applyWebhooks(cmd.Context(), g, kf, &m)
		},
	}
	addServerFlag(cmd.Flags(), &server)
	kf.add(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the configurations instead of applying them")
	cmd.Flags().BoolVar(&mutating, "mutating", false, "include the mutating webhook that pins tags to digests")
	cmd.Flags().BoolVar(&asJSON, "json", false, "with --dry-run, print JSON instead of YAML")
	return cmd
}

func writeManifestsYAML(w io.Writer, m *kube.WebhookManifests) error {
	var b bytes.Buffer
	docs := []any{m.Validating}
	if m.Mutating != nil {
		docs = append(docs, m.Mutating)
	}
	for i, d := range docs {
		y, err := yaml.Marshal(d)
		if err != nil {
			return err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func applyWebhooks(ctx context.Context, g *globals, kf kubeFlags, m *kube.WebhookManifests) error {
	client, err := kube.NewClient(kf.options())
	if err != nil {
		return err
	}
	applied, err := kube.ApplyWebhooks(ctx, client, m, false)
	for _, a := range applied {
		fmt.Fprintf(g.stdout, "%s %s %s\n", a.Kind, a.Name, a.Action)
	}
	return err
}
