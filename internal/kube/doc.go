// Package kube is drydock's Kubernetes side: the admission webhooks that
// let only this drydock's live/ images (with a passing verdict) run, the
// rollout of patched tags to the workloads that run an image, and the
// inventory of which workloads run which digests, kept from Pod informers,
// with the questions asked of it ("which images run", "who runs CVE-X").
//
// The pieces and what they join:
//
//   - ParseImage is the one place an image reference is normalised (host,
//     repository, tag, digest) as container runtimes read it; namespace and
//     host checks compare its parts exactly, never by prefix or substring.
//   - Admitter decides on the images of one pod spec: in drydock's live/
//     namespace under one of the configured registry hosts, found in the
//     embedded registry (a tag resolves to its digest in process, no
//     network call), and, when verdicts are checked, passing now.
//     Webhook serves it as Kubernetes' validating and mutating admission
//     webhooks (AdmissionReview v1) and counts, audits and announces what
//     it decides.
//   - WebhookConfigurations renders what `drydock kube install-webhook`
//     applies to a cluster.
//   - Watcher keeps the Inventory (an InventoryStore) from client-go
//     informers; Images and Affected answer from it and the stored scans.
//   - Rollout moves the workloads that run a repository to a patched tag
//     by digest, waits for the rollout and rolls back when it fails.
package kube

import "errors"

// ErrNotConfigured is returned for a Kubernetes feature the server's
// configuration leaves off.
var ErrNotConfigured = errors.New("not configured")
