// Package sources lists drydock's feed importers, one package per feed
// format:
//
//   - osv: OSV bulk exports (Debian, Ubuntu, Alpine all.zip)
//   - debiantracker: the Debian security tracker's JSON export and its
//     DSA/DLA/DTSA lists
//   - alpinesecdb: the Alpine secdb
//   - distroinfo: distro-info-data's debian.csv and ubuntu.csv
//   - securitysupport: debian-security-support's lists
package sources

import (
	"fmt"

	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/sources/alpinesecdb"
	"github.com/drydock-project/drydock/internal/vulndb/sources/debiantracker"
	"github.com/drydock-project/drydock/internal/vulndb/sources/distroinfo"
	"github.com/drydock-project/drydock/internal/vulndb/sources/osv"
	"github.com/drydock-project/drydock/internal/vulndb/sources/securitysupport"
)

// Defaults returns fresh instances of every Source with default settings,
// in a fixed order: release data first (distro-info, debian-security-support),
// then the vulnerability feeds (debian-tracker, alpine-secdb, osv).
func Defaults() []vulndb.Source {
	tracker, err := debiantracker.New()
	must(err)
	secdb, err := alpinesecdb.New()
	must(err)
	osvSrc, err := osv.New()
	must(err)
	return []vulndb.Source{
		distroinfo.New(),
		securitysupport.New(),
		tracker,
		secdb,
		osvSrc,
	}
}

// must panics on an error of a constructor called without options, which
// cannot fail: that would be a bug in this package, not bad input.
func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("sources: default constructor failed: %v", err))
	}
}
