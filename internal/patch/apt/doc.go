// Package apt is drydock's patch backend for Debian, Ubuntu and their
// derivatives (backend.Backend): dpkg images, distroless ones (status.d)
// included. It composes four packages, one job each:
//
//   - archive: the image's apt sources and keys, signed Release files,
//     verified Packages indexes, upgrade candidates, verified .deb
//     downloads;
//   - resolve: dependency resolution (Depends, Pre-Depends, Provides,
//     Breaks, Conflicts, Multi-Arch);
//   - dpkg: the installer: files placed as dpkg places them, conffiles,
//     whiteouts, the dpkg database;
//   - maintscript: maintainer scripts and triggers: judged, reproduced
//     natively, or run in the sandbox.
package apt

import "github.com/drydock-project/drydock/internal/patch/apt/archive"

// DebianArchiveKeyring is where Debian's archive keyring lives on a
// Debian host (package debian-archive-keyring), for
// Repositories.HostKeyring.
const DebianArchiveKeyring = archive.DebianArchiveKeyring
