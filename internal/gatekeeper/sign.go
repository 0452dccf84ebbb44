package gatekeeper

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/store"
)

// Key returns the key the gate signs promotions with (nil when it signs
// none).
func (k *Keeper) Key() *attest.Key { return k.key }

// checkSignedBy applies the policy's requireSignedBy to the digest in
// srcRepo: nil when every listed key has signed it (a cosign signature,
// either form, or a Notary Project signature), else the reason.
func (k *Keeper) checkSignedBy(ctx context.Context, srcRepo string, d digest.Digest) (*gate.Reason, error) {
	pol, _, err := k.policy.Get()
	if err != nil || pol == nil || len(pol.RequireSignedBy) == 0 {
		return nil, nil
	}
	var keys []attest.PublicKey
	var problems []string
	for _, p := range pol.RequireSignedBy {
		if !filepath.IsAbs(p) {
			if k.policy.Path() == "" {
				// Stored before SetPolicy refused it: no directory to
				// resolve it against.
				problems = append(problems, fmt.Sprintf("requireSignedBy: %q is a relative path in the stored policy: name the key by its absolute path", p))
				continue
			}
			p = filepath.Join(filepath.Dir(k.policy.Path()), p)
		}
		pk, err := attest.ReadPublicKey(p)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		keys = append(keys, pk)
	}
	if len(problems) > 0 {
		return &gate.Reason{Rule: gate.RuleRequireSignedBy, Message: "the policy's keys do not load, nothing is promotable: " + strings.Join(problems, "; ")}, nil
	}
	rep, err := attest.Verify(ctx, k.reg, srcRepo, d, attest.VerifyOptions{Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("checking the signatures of %s@%s: %w", srcRepo, d, err)
	}
	var missing []string
	for _, pk := range keys {
		if !rep.SignedBy(pk.ID) {
			missing = append(missing, fmt.Sprintf("key %s (%s)", pk.Name, pk.ID))
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	msg := "not signed by " + strings.Join(missing, ", ")
	var seen []string
	for _, s := range rep.Signatures {
		if s.Format != attest.FormatDSSE {
			seen = append(seen, fmt.Sprintf("%s %s: %s", s.Form, s.Format, cmp.Or(s.Error, "signed by "+s.Signer)))
		}
	}
	slices.Sort(seen)
	if len(seen) == 0 {
		msg += "; it carries no signature"
	} else {
		msg += "; its signatures: " + strings.Join(slices.Compact(seen), "; ")
	}
	return &gate.Reason{Rule: gate.RuleRequireSignedBy, Message: msg}, nil
}

// signPromotion signs the promoted digest in dstRepo with the gate's key:
// a cosign signature (both forms), a Notary Project signature carrying
// the verdict as signed metadata, and the promotion attestation (both
// forms). Everything is written as the gate's own write.
func (k *Keeper) signPromotion(ctx context.Context, req PromoteRequest, dstRepo, target string, d digest.Digest, v gate.Verdict) (*attest.Written, error) {
	if k.key == nil {
		return nil, nil
	}
	desc, err := k.reg.Resolve(ctx, dstRepo, d.String())
	if err != nil {
		return nil, err
	}
	path := k.policy.Path()
	_, hash, _ := k.policy.Get()
	p := attest.VerdictPredicate{Source: req.Source, Target: target, Actor: req.Actor, PromotedAt: k.now().UTC(),
		Verdict:    attest.VerdictState{State: string(v.State), At: v.At.UTC(), Reasons: reasonSummary(v.Reasons)},
		Policy:     attest.PolicyRef{Path: path, SHA256: hash},
		Exceptions: v.Applied}
	if sc, err := k.store.Scan(ctx, d.String()); err == nil {
		p.Scan = scanRef(sc)
	}
	st, err := attest.VerdictStatement(dstRepo, d, p)
	if err != nil {
		return nil, err
	}
	meta := map[string]string{"dev.drydock.verdict": string(v.State), "dev.drydock.policy.sha256": hash}
	return attest.Write(WithGateWrite(ctx), k.reg, dstRepo, desc, k.key, attest.WriteRequest{
		Ref: dstRepo, Signature: true, Notary: true, NotaryMetadata: meta, Statements: []*attest.Statement{st}, Now: k.now()})
}

func scanRef(sc *store.Scan) attest.ScanRef {
	r := attest.ScanRef{ScannedAt: sc.ScannedAt.UTC(), Images: []attest.ScannedImage{}}
	for _, pr := range sc.Reports {
		im := attest.ScannedImage{Platform: pr.Platform, Digest: pr.Digest}
		if rep := pr.Report; rep != nil {
			im.Status, im.Findings = string(rep.Status), len(rep.Findings)
			if !rep.DB.BuiltAt.IsZero() {
				r.DBBuiltAt = rep.DB.BuiltAt.UTC()
			}
			if c := rep.Counts(); len(c) > 0 {
				im.Counts = map[string]int{}
				for sev, n := range c {
					im.Counts[string(sev)] = n
				}
			}
		}
		r.Images = append(r.Images, im)
	}
	return r
}

// VerifyRequest asks which signatures of an image verify.
type VerifyRequest struct {
	// Ref is the image: NAMESPACE/NAME:TAG or NAMESPACE/NAME@DIGEST.
	Ref string `json:"ref"`
	// Keys are more public keys (PEM) to verify with, besides drydock's.
	Keys []NamedPEM `json:"keys,omitempty"`
	// Roots are trusted certificates (PEM) for Notary Project signatures;
	// Identity, when set, must be the signing certificate's subject.
	Roots    []string `json:"roots,omitempty"`
	Identity string   `json:"identity,omitempty"`
}

// NamedPEM is a PEM document and the name to show for it.
type NamedPEM struct {
	Name string `json:"name"`
	PEM  string `json:"pem"`
}

// VerifyResult is what `drydock verify` prints.
type VerifyResult struct {
	Repository string `json:"repository"`
	Reference  string `json:"reference"`
	Digest     string `json:"digest"`
	// DrydockKey is the ID of the gate's key ("" when it signs nothing).
	DrydockKey string                   `json:"drydockKey,omitempty"`
	Signatures []attest.Signature       `json:"signatures"`
	Attached   []attest.Attached        `json:"attached"`
	Promotion  *attest.VerdictPredicate `json:"promotion,omitempty"`
}

// KeyName is how drydock's own key is named in verification results.
const KeyName = "drydock"

// Verify checks the signatures and attestations of an image on the
// server: drydock's own (with the gate's key) and, with the keys, roots
// and identity of req, anyone's.
func (k *Keeper) Verify(ctx context.Context, req VerifyRequest) (*VerifyResult, error) {
	repo, reference, d, err := k.Resolve(ctx, req.Ref)
	if err != nil {
		return nil, err
	}
	var o attest.VerifyOptions
	res := &VerifyResult{Repository: repo, Reference: reference, Digest: d}
	if k.key != nil {
		pub := k.key.PublicKey(KeyName)
		o.Keys = append(o.Keys, pub)
		res.DrydockKey = pub.ID
	}
	for i, np := range req.Keys {
		pub, err := attest.ParsePublicKey(cmp.Or(np.Name, fmt.Sprintf("key %d", i+1)), []byte(np.PEM))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
		}
		o.Keys = append(o.Keys, pub)
	}
	for i, r := range req.Roots {
		cs, err := attest.ParseCertificates([]byte(r))
		if err != nil {
			return nil, fmt.Errorf("%w: roots[%d]: %w", ErrInvalidRequest, i, err)
		}
		o.Roots = append(o.Roots, cs...)
	}
	o.Identity, o.Now = req.Identity, k.now
	rep, attached, err := attest.Inspect(ctx, k.reg, repo, digest.Digest(d), o)
	if err != nil {
		return nil, err
	}
	res.Signatures, res.Attached = rep.Signatures, attached
	if a := rep.Attestation(attest.PredicateVerdict, res.DrydockKey); a != nil && res.DrydockKey != "" {
		var p attest.VerdictPredicate
		if json.Unmarshal(a.Statement.Predicate, &p) == nil {
			res.Promotion = &p
		}
	}
	return res, nil
}
