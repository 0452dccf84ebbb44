package apt

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// DebMtime returns the newest modification time of the members of the
// .deb's ar archive (dpkg-deb stamps them with the package's build time),
// reading only the archive headers.
func DebMtime(name string) (time.Time, error) {
	f, err := os.Open(name)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != "!<arch>\n" {
		return time.Time{}, fmt.Errorf("%s: not a .deb (ar) archive", name)
	}
	var newest int64
	for i := 0; i < 8; i++ {
		hdr := make([]byte, 60)
		if _, err := io.ReadFull(br, hdr); err != nil {
			if errors.Is(err, io.EOF) && i > 0 {
				break
			}
			return time.Time{}, fmt.Errorf("%s: ar header: %w", name, err)
		}
		mtime, err1 := strconv.ParseInt(strings.TrimSpace(string(hdr[16:28])), 10, 64)
		size, err2 := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err1 != nil || err2 != nil || size < 0 || string(hdr[58:60]) != "`\n" {
			return time.Time{}, fmt.Errorf("%s: malformed ar header", name)
		}
		if mtime > newest {
			newest = mtime
		}
		if _, err := br.Discard(int(size + size%2)); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return time.Time{}, fmt.Errorf("%s: %w", name, err)
		}
	}
	return time.Unix(newest, 0).UTC(), nil
}
