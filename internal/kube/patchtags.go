package kube

import (
	"regexp"
	"slices"
	"strconv"
)

// The patch tag grammar of continuous patching (ACR's, which drydock's
// workflows follow): a patched image of the original tag T is T-N with N
// from 1 to 999 (incremental) or T-patched (floating). These functions are
// the kube package's one reading of it; internal/workflow has the
// selection of tags to patch.

var (
	incrementalRE = regexp.MustCompile(`^(.+)-([1-9][0-9]{0,2})$`)
	floatingRE    = regexp.MustCompile(`^(.+)-patched$`)
)

// PatchTag is a tag of a patched image.
type PatchTag struct {
	Tag string
	// N is the incremental number, 0 for the floating T-patched.
	N int
}

// OriginalTag returns the original tag a tag was patched from, or the tag
// itself when it is not a patch tag ("1.27.1-2" -> "1.27.1").
func OriginalTag(tag string) string {
	if m := incrementalRE.FindStringSubmatch(tag); m != nil {
		return m[1]
	}
	if m := floatingRE.FindStringSubmatch(tag); m != nil {
		return m[1]
	}
	return tag
}

// PatchTagsOf returns the patch tags of original among tags, newest first:
// the incremental ones by number, highest first, then the floating one.
func PatchTagsOf(original string, tags []string) []PatchTag {
	var out []PatchTag
	for _, t := range tags {
		if m := incrementalRE.FindStringSubmatch(t); m != nil && m[1] == original {
			n, _ := strconv.Atoi(m[2])
			out = append(out, PatchTag{Tag: t, N: n})
		} else if m := floatingRE.FindStringSubmatch(t); m != nil && m[1] == original {
			out = append(out, PatchTag{Tag: t})
		}
	}
	slices.SortFunc(out, func(a, b PatchTag) int {
		switch {
		case a.N == b.N:
			return 0
		case a.N == 0:
			return 1
		case b.N == 0:
			return -1
		}
		return b.N - a.N
	})
	return out
}
