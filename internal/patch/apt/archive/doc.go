// Package archive is the archive client of drydock's Debian-family patch
// backend (internal/patch/apt): it reads an image's apt configuration,
// fetches and verifies the archive's indexes as apt would, picks the
// upgrade candidates of the installed packages, and downloads verified .deb
// files. Resolution is internal/patch/apt/resolve's job, installing
// internal/patch/apt/dpkg's.
//
// Sources come from the image through an fs.FS (a rootfs.FS): one-line
// etc/apt/sources.list and sources.list.d/*.list, and deb822
// sources.list.d/*.sources (ReadSources). Only "deb" entries over http(s)
// are used. CompleteSuites adds the release's -updates and -security suites
// when the image lacks them (the security archive is the main archive's
// "-security" sibling path, ".../debian" -> ".../debian-security", unless a
// security mirror is given; Ubuntu keeps it in the main archive), and
// WithMirror replaces the archive URI, e.g. for a local mirror.
//
// The chain of trust is apt's:
//
//   - each suite's InRelease (or Release + Release.gpg) must carry a valid
//     OpenPGP signature by a key the image trusts for that source: its
//     Signed-By keyring files or inline key, else etc/apt/trusted.gpg and
//     trusted.gpg.d. For images without keyrings (distroless) the host's
//     Debian archive keyring can be trusted explicitly (WithHostKeyring);
//     never silently. An expired Valid-Until is refused. Refusals are
//     *ReleaseError wrapping ErrUnsigned, ErrBadSignature, ErrExpired or
//     ErrWrongSuite or ErrMalformed;
//   - each Packages index must match the size and SHA256 the verified
//     Release lists, checked before it is decompressed or parsed (and the
//     decompressed content is checked against the plain file's hash when
//     listed);
//   - each .deb must match the size and SHA256 its index lists.
//
// A mismatch is a *HashMismatchError (errors.Is ErrHashMismatch) and nothing
// of it is kept. WithInsecureSkipVerify skips only the signature and
// Valid-Until checks, and logs each at error level.
//
// Everything read is untrusted and bounded: sources and keyring files, the
// Release file, compressed and decompressed index sizes, lines, stanzas and
// fields. Fetched indexes and .debs are cached by SHA256 under
// DefaultCacheDir() (${DRYDOCK_CACHE:-$HOME/.cache/drydock}/patch/deb); a cached
// file is re-hashed before use.
package archive
