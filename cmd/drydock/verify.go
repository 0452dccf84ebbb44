package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/gatekeeper"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var (
		server           string
		asJSON           bool
		keys, roots      []string
		identity         string
		requireKeys      bool
		requirePromotion bool
	)
	cmd := &cobra.Command{
		Use:   "verify REF",
		Short: "Check an image's signatures and attestations, and say who signed what",
		Long: `Verify lists the signatures and attestations of an image in the drydock
server, in both forms clients write them (OCI 1.1 referrers, and cosign's tag
scheme: sha256-<hex>.sig and .att), checks each, and prints who signed what:
cosign signatures, cosign attestations (in-toto statements in DSSE envelopes,
by predicate type) and Notary Project signatures.

drydock's own signatures are checked with the server's key (GET
/api/v1/keys): every promotion is signed (a cosign and a Notary Project
signature of the live/ digest, and the promotion attestation, which names the
verdict, the policy's SHA-256, the scan and the exceptions used).

--key FILE checks signatures by anyone's key as well (a PEM public key, as
cosign generate-key-pair writes it, or a certificate); --ca-cert FILE trusts
Notary Project signatures whose certificate chain ends in those certificates,
and --cert-identity limits them to one signer (the certificate's subject, or
its common name).

A signature that does not verify is listed with the reason: signed by a key
not given, signed for another digest (a signature or attestation copied onto
the wrong image), content missing. With --require, verify exits 1 unless every
--key has signed the image; with --require-promotion, unless drydock's
promotion attestation verifies with a pass or exempt verdict.

REF is quarantine/NAME:TAG, live/NAME@DIGEST, ... Credentials as for
"drydock verdict"; needs the pull role on the namespace.`,
		Example: `  drydock verify live/nginx:1.27.1
  drydock verify quarantine/app:1 --key cosign.pub --require
  drydock verify live/app@sha256:0123... --ca-cert release-ca.crt --cert-identity "CN=release"
  drydock verify live/app:1 --require-promotion --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := gatekeeper.ParseRef(args[0]); err != nil {
				return err
			}
			req := gatekeeper.VerifyRequest{Ref: args[0], Identity: identity}
			var ids []string
			for _, p := range keys {
				b, err := os.ReadFile(p)
				if err != nil {
					return fmt.Errorf("--key: %w", err)
				}
				pk, err := attest.ParsePublicKey(p, b)
				if err != nil {
					return fmt.Errorf("--key: %w", err)
				}
				ids = append(ids, pk.ID)
				req.Keys = append(req.Keys, gatekeeper.NamedPEM{Name: p, PEM: string(b)})
			}
			for _, p := range roots {
				b, err := os.ReadFile(p)
				if err != nil {
					return fmt.Errorf("--ca-cert: %w", err)
				}
				if _, err := attest.ParseCertificates(b); err != nil {
					return fmt.Errorf("--ca-cert %s: %w", p, err)
				}
				req.Roots = append(req.Roots, string(b))
			}
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			var res gatekeeper.VerifyResult
			if err := c.do(cmd.Context(), "POST", "/api/v1/verify", req, &res); err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(g.stdout, res); err != nil {
					return err
				}
			} else {
				writeVerify(g.stdout, &res)
			}
			var missing []string
			if requireKeys {
				for i, id := range ids {
					if !signedBy(res.Signatures, id) {
						missing = append(missing, "not signed by "+keys[i])
					}
				}
			}
			if requirePromotion && res.Promotion == nil {
				missing = append(missing, "no promotion attestation by drydock's key verifies")
			}
			if len(missing) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%s: %s", args[0], strings.Join(missing, "; "))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	addServerFlag(f, &server)
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.StringArrayVar(&keys, "key", nil, "a public key (PEM) or certificate to verify with, besides drydock's (repeatable)")
	f.StringArrayVar(&roots, "ca-cert", nil, "trusted root certificates (PEM) for Notary Project signatures (repeatable)")
	f.StringVar(&identity, "cert-identity", "", "the Notary Project signer's certificate subject (or common name) to accept")
	f.BoolVar(&requireKeys, "require", false, "exit 1 unless every --key has signed the image")
	f.BoolVar(&requirePromotion, "require-promotion", false, "exit 1 unless drydock's promotion attestation verifies")
	return cmd
}

func signedBy(sigs []attest.Signature, keyID string) bool {
	for _, s := range sigs {
		if s.Verified && s.KeyID == keyID && s.Format != attest.FormatDSSE {
			return true
		}
	}
	return false
}

// writeVerify prints a verification for people: one line per signature,
// verified ones first.
func writeVerify(w io.Writer, res *gatekeeper.VerifyResult) {
	ref := res.Repository
	if res.Reference != "" && !strings.Contains(res.Reference, ":") {
		ref += ":" + res.Reference
	}
	fmt.Fprintf(w, "%s@%s\n", ref, res.Digest)
	if res.DrydockKey != "" {
		fmt.Fprintf(w, "  drydock's key: %s\n", res.DrydockKey)
	}
	ok, bad := 0, 0
	for _, s := range res.Signatures {
		if s.Verified {
			ok++
		} else {
			bad++
		}
	}
	fmt.Fprintf(w, "  %d verified, %d not verified\n", ok, bad)
	for _, pass := range []bool{true, false} {
		for _, s := range res.Signatures {
			if s.Verified != pass {
				continue
			}
			what := s.Format + " signature"
			if s.Format == attest.FormatDSSE {
				what = "attestation " + s.PredicateType
			}
			where := s.Form
			if s.Tag != "" {
				where += " " + s.Tag
			}
			if s.Verified {
				fmt.Fprintf(w, "  OK    %s, signed by %s (%s) [%s]\n", what, s.Signer, shortDigest(s.KeyID), where)
			} else {
				fmt.Fprintf(w, "  FAIL  %s [%s]: %s\n", what, where, cmp.Or(s.Error, "not verified"))
			}
		}
	}
	if p := res.Promotion; p != nil {
		fmt.Fprintf(w, "  promoted by drydock: %s -> %s at %s, verdict %s, policy sha256:%s\n", p.Source, p.Target,
			p.PromotedAt.Format("2006-01-02T15:04:05Z07:00"), p.Verdict.State, p.Policy.SHA256)
	}
	if len(res.Attached) > 0 {
		fmt.Fprintln(w, "  attached:")
		for _, a := range res.Attached {
			extra := a.ArtifactType
			if a.Tag != "" {
				extra = fmt.Sprintf("%s, %d entries", a.Tag, a.Layers)
			}
			fmt.Fprintf(w, "    %-12s %-8s %s %s\n", a.Class, a.Form, shortDigest(a.Digest.String()), extra)
		}
	}
}
