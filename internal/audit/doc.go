// Package audit keeps drydock's append-only, tamper-evident audit log: every
// push, delete, import, scan, verdict, promotion, refused bypass, failed
// login and policy, user or token change, with who did it, when, and to
// which repository and digest.
//
// # Storage
//
// A [Log] records entries through a [Backend], the one interface storage
// implements: [NewSQL] (table audit_log on SQLite or PostgreSQL, with
// triggers that refuse UPDATE and DELETE) and [NewMemory] (for tests of
// other packages); both pass internal/audit/audittest. Backend.Append reads
// the last entry and inserts the next one in one write transaction holding
// the append lock, so concurrent writers, in one process or several
// replicas, always extend the chain one entry at a time.
//
// # The hash chain
//
// Entries are numbered 1, 2, 3, ... without gaps. Each entry stores the hash
// of the entry before it (PrevHash; the first entry stores [GenesisHash], 64
// zeros) and its own hash:
//
//	Hash = lowercase hex(SHA-256(canonical encoding of the entry))
//
// The canonical encoding (version 1) is the ASCII domain tag
// "drydock-audit-v1\n" followed by ten fields, each written as its length in
// bytes as an 8-byte big-endian unsigned integer and then its bytes:
//
//  1. Seq, in decimal ASCII;
//  2. Time, in UTC, formatted with time.RFC3339Nano (Record truncates times
//     to whole microseconds, the resolution of PostgreSQL's timestamptz);
//  3. Actor; 4. Action; 5. Repository; 6. Reference; 7. Digest; 8. Outcome;
//  9. Detail, the canonical JSON of the detail object: encoding/json output
//     of the value decoded with json.Decoder.UseNumber (object keys sorted,
//     no insignificant space, numbers kept verbatim), or empty when there
//     is no detail;
//  10. PrevHash.
//
// Every field but Hash is covered, and the length prefixes make the encoding
// injective: no two different entries encode to the same bytes.
//
// # What verification detects
//
// [Log.Verify] walks the log from the first entry and recomputes every hash.
//
//   - Editing any field of a stored entry changes its canonical encoding, so
//     its recomputed hash no longer matches the stored one (hash_mismatch);
//     rewriting the stored hash too breaks the next entry's PrevHash
//     (prev_mismatch), unless every later entry is rewritten as well.
//   - Deleting an entry leaves a gap in the sequence (seq_gap); deleting it
//     and renumbering the rest changes the renumbered entries' hashes.
//   - Inserting an entry needs a sequence number that is already taken, or
//     one outside the chain, which shows up as a gap or an out-of-order seq.
//   - Reordering (swapping two entries' contents) puts entries at seqs they
//     were not hashed for and after entries whose hash they do not carry.
//
// The limit: the hashes are not keyed, so someone who can write the store
// can truncate the tail, rewrite every entry from some point to the end, or
// append well-formed entries, and what is left is a valid chain. Truncation
// and rewriting are caught only by comparing against a head recorded
// elsewhere; entries appended after that head cannot be told from genuine
// ones. [Log.Head] returns the latest (seq, hash) as an [Anchor], `drydock
// audit verify` prints it, and [Log.VerifyFrom] checks that the chain still
// passes through an anchor an operator pinned earlier (in a ticket, another
// system's log, a signed note).
package audit
