// Package attest is drydock's home for signatures and attestations: what
// belongs to a subject digest rather than being an image itself.
//
//   - Keys: drydock's signing key, generated in the data directory or read
//     from a key file (PEM, or cosign's encrypted format), with a
//     self-signed code-signing certificate for Notary Project signatures.
//   - Formats cosign verifies (simple signing signatures, in-toto
//     statements in DSSE envelopes) and Notary Project JWS envelopes
//     (notation-core-go), written in both forms clients read: OCI 1.1
//     referrers and cosign's tag scheme (sha256-<hex>.sig, .att).
//   - Verify: every signature and attestation of a subject, in both forms,
//     checked against keys and trusted certificates; who signed what.
//   - The statements drydock signs: the gate's verdict at promotion, and a
//     patched image's SLSA provenance, OpenVEX and SBOM.
//
// What may follow a subject into live/ is decided by imgref (NonRunnable,
// TagSchemeArtifact), not here.
package attest
