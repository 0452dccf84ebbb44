package dpkg

import (
	"os"
	"time"

	"github.com/drydock-project/drydock/internal/patch/deb"
)

// DebMtime returns the build time of the .deb file name: the newest
// modification time of its ar members, as dpkg-deb stamps them (see
// deb.BuildTime).
func DebMtime(name string) (time.Time, error) {
	f, err := os.Open(name)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	return deb.BuildTime(f)
}
