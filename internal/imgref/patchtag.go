package imgref

import (
	"regexp"
	"strconv"
)

// The tag grammar of continuous patching: the patches of TAG are tagged
// TAG-1 ... TAG-999 (incremental) or TAG-patched (floating). The workflow
// engine writes them; retention keeps the newest per original and the
// original while a patch remains. This is the one place that reads it.
var (
	incrementalPatchRE = regexp.MustCompile(`^(.+)-([1-9][0-9]{0,2})$`)
	floatingPatchRE    = regexp.MustCompile(`^(.+)-patched$`)
)

// PatchTag reports whether tag is a patch tag and of which original tag;
// n is the patch's number, 0 for TAG-patched.
func PatchTag(tag string) (original string, n int, ok bool) {
	if m := incrementalPatchRE.FindStringSubmatch(tag); m != nil {
		n, _ = strconv.Atoi(m[2])
		return m[1], n, true
	}
	if m := floatingPatchRE.FindStringSubmatch(tag); m != nil {
		return m[1], 0, true
	}
	return "", 0, false
}
